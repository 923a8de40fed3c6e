/*
 * config.c - luapoold's configuration.  One table of keys drives the file
 * parser, the long options, --help and config_print, so a key cannot exist
 * in one of them and be missing from another, and the defaults that --help
 * shows are read from config_init itself.  This file only turns text into a
 * struct config and checks it; it must never start anything, and it knows
 * nothing of Lua, JSON or HTTP.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luapool.h"
#include "daemon/config.h"

#define PROGRAM			"luapoold"
#define DEFAULT_LISTEN		"127.0.0.1:8080"
#define DEFAULT_MAX_BODY	((size_t)8 * 1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS	1024u
#define DEFAULT_CONN_TIMEOUT_S	30u
#define DEFAULT_MAX_SCRIPTS	1024u
#define DEFAULT_LOG_LEVEL	"info"

/* Lower bounds enforced by config_validate. */
#define MIN_MAX_BODY		64u
#define MIN_MEMORY_MB		4u
#define MIN_MAX_RESULT		16u

#define MAX_HOST		255	/* longest host name or address in listen */

enum key_type {
	TYPE_UNSIGNED,		/* unsigned: decimal, 0..UINT_MAX */
	TYPE_SIZE,		/* size_t: bytes, or with a k/M/G suffix (KiB...) */
	TYPE_BOOL,		/* int 0/1: yes/no, true/false, on/off, 1/0 */
	TYPE_PATH,		/* char *: a file or directory; empty: unset */
	TYPE_LISTEN,		/* char *: host:port, [v6]:port or :port */
	TYPE_LOG_LEVEL		/* char *: error warn info debug */
};

static const char *const metavars[] = {
	[TYPE_UNSIGNED] = "N",
	[TYPE_SIZE] = "SIZE",
	[TYPE_BOOL] = "BOOL",
	[TYPE_PATH] = "PATH",
	[TYPE_LISTEN] = "ADDRESS",
	[TYPE_LOG_LEVEL] = "LEVEL"
};

struct key {
	const char *name;	/* the file's spelling; options use '-' for '_' */
	enum key_type type;
	size_t offset;		/* of the field in struct config */
	const char *help;	/* one line for --help */
};

/* offsetof(struct config, field), and a compile error when the field is
 * not of C type `ctype` (the _Generic has no other association). */
#define FIELD(field, ctype) _Generic(((struct config *)0)->field, \
	ctype: offsetof(struct config, field))

#define UNSIGNED_KEY(f, help)	{ #f, TYPE_UNSIGNED, FIELD(f, unsigned), help }
#define SIZE_KEY(f, help)	{ #f, TYPE_SIZE, FIELD(f, size_t), help }
#define BOOL_KEY(f, help)	{ #f, TYPE_BOOL, FIELD(f, int), help }
#define PATH_KEY(f, help)	{ #f, TYPE_PATH, FIELD(f, char *), help }

/* In the order of struct config; conf/luapoold.conf follows it too. */
static const struct key keys[] = {
	{ "listen", TYPE_LISTEN, FIELD(listen, char *),
	    "address to serve HTTP on: host:port, [v6]:port or :port (all "
	    "interfaces); port 0 picks any free port" },
	UNSIGNED_KEY(workers, "worker processes; 0 starts one per online CPU"),
	UNSIGNED_KEY(queue_depth,
	    "jobs that may wait for a free worker; more are refused with 503"),
	UNSIGNED_KEY(default_timeout_ms,
	    "deadline of a job that asks for none, time in the queue included"),
	UNSIGNED_KEY(max_timeout_ms, "largest deadline a request may ask for"),
	SIZE_KEY(max_body_bytes, "largest request body; larger ones get 413"),
	UNSIGNED_KEY(memory_limit_mb, "Lua heap limit of each worker, in MiB"),
	SIZE_KEY(max_result_bytes,
	    "largest result as JSON; larger ones get 422 result_too_large"),
	UNSIGNED_KEY(max_json_depth,
	    "deepest nesting of a context or a result"),
	UNSIGNED_KEY(max_connections, "HTTP connections open at once"),
	UNSIGNED_KEY(connection_timeout_s,
	    "seconds an idle or slow client may keep a connection"),
	PATH_KEY(auth_token_file, "file holding the bearer token every request "
	    "must send; unset: no authentication"),
	BOOL_KEY(metrics_auth, "whether GET /metrics needs the token too"),
	BOOL_KEY(allow_bytecode,
	    "whether clients may send bytecode; no: source only"),
	PATH_KEY(scripts_dir, "directory where stored scripts are kept; "
	    "unset: in memory only, lost on restart"),
	UNSIGNED_KEY(max_scripts, "scripts that may be stored at once"),
	UNSIGNED_KEY(max_jobs_per_worker,
	    "jobs after which a worker is replaced; 0: never"),
	UNSIGNED_KEY(cache_entries, "compiled chunks each worker keeps cached"),
	{ "log_level", TYPE_LOG_LEVEL, FIELD(log_level, char *),
	    "least severe event logged: error, warn, info or debug" },
	BOOL_KEY(access_log, "whether every request is logged (at info level)"),
	PATH_KEY(worker_path, "the luapool-worker executable; unset: "
	    "$LUAPOOL_WORKER, the install path, then next to luapoold"),
	PATH_KEY(tls_cert_file,
	    "PEM certificate (chain); with tls_key_file, serve HTTPS"),
	PATH_KEY(tls_key_file, "PEM private key of tls_cert_file"),
	UNSIGNED_KEY(http_threads,
	    "0: one event loop thread serves HTTP and dispatches jobs; N: N HTTP threads"),
};

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

static const char *const log_levels[] = { "error", "warn", "info", "debug" };

static const struct {
	const char *word;
	int value;
} booleans[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
	{ "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 }
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills err and returns -1, so that errors read `return fail(...)`. */
static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Start-up only: there is no sensible way to run without the defaults. */
static char *
copy_or_die(const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL) {
		fputs(PROGRAM ": out of memory\n", stderr);
		abort();
	}
	return copy;
}

/* Replaces *field with a copy of value (NULL: unset). */
static int
set_string(char **field, const char *value, char *err, size_t errlen)
{
	char *copy = NULL;

	if (value != NULL && (copy = strdup(value)) == NULL)
		return fail(err, errlen, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

/*
 * The key called `name` (len bytes, not necessarily NUL-terminated), where
 * `separator` stands for each '_' of the key: '_' in the file, '-' on the
 * command line.  NULL when there is none.
 */
static const struct key *
find_key(const char *name, size_t len, char separator)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		const char *k = keys[i].name;
		size_t j = 0;

		for (; j < len && k[j] != '\0'; j++) {
			char want = k[j] == '_' ? separator : k[j];
			if (name[j] != want)
				break;
		}
		if (j == len && k[j] == '\0')
			return &keys[i];
	}
	return NULL;
}

static void
option_name(const struct key *key, char *buf, size_t len)
{
	size_t i = 0;

	for (; key->name[i] != '\0' && i + 1 < len; i++)
		buf[i] = key->name[i] == '_' ? '-' : key->name[i];
	buf[i] = '\0';
}

/*
 * Reads the decimal digits at the start of text.  -1 if there are none;
 * *overflow is set when the number does not fit in unsigned long long.
 */
static int
read_digits(const char *text, unsigned long long *out, const char **end,
    int *overflow)
{
	unsigned long long n = 0;
	const char *p = text;

	*overflow = 0;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');
		if (n > (ULLONG_MAX - digit) / 10)
			*overflow = 1;
		else
			n = n * 10 + digit;
	}
	*out = n;
	*end = p;
	return 0;
}

static int
set_unsigned(unsigned *field, const char *value, char *err, size_t errlen)
{
	unsigned long long n;
	const char *end;
	int overflow;

	if (value[0] == '-')
		return fail(err, errlen, "must not be negative: \"%s\"", value);
	if (read_digits(value, &n, &end, &overflow) == -1 || *end != '\0')
		return fail(err, errlen, "not a number: \"%s\"", value);
	if (overflow || n > UINT_MAX)
		return fail(err, errlen, "too large: \"%s\" (at most %u)", value,
		    UINT_MAX);
	*field = (unsigned)n;
	return 0;
}

static int
set_size(size_t *field, const char *value, char *err, size_t errlen)
{
	static const char suffixes[] = "kmg";
	unsigned long long n;
	const char *end, *suffix;
	unsigned shift = 0;
	int overflow;

	if (value[0] == '-')
		return fail(err, errlen, "must not be negative: \"%s\"", value);
	if (read_digits(value, &n, &end, &overflow) == -1)
		goto not_a_size;
	if (*end != '\0') {
		suffix = strchr(suffixes, tolower((unsigned char)*end));
		if (suffix == NULL || end[1] != '\0')
			goto not_a_size;
		shift = 10 * (unsigned)(suffix - suffixes + 1);
	}
	if (overflow || n > SIZE_MAX >> shift)
		return fail(err, errlen, "too large: \"%s\"", value);
	*field = (size_t)n << shift;
	return 0;
not_a_size:
	return fail(err, errlen, "not a size: \"%s\" (bytes, or a number "
	    "followed by k, M or G)", value);
}

static int
set_bool(int *field, const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(booleans) / sizeof(booleans[0]); i++) {
		if (strcasecmp(value, booleans[i].word) == 0) {
			*field = booleans[i].value;
			return 0;
		}
	}
	return fail(err, errlen, "not a boolean: \"%s\" (yes/no, true/false, "
	    "on/off or 1/0)", value);
}

/* The lower-case spelling of a log level, or NULL. */
static const char *
canonical_log_level(const char *value)
{
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
		if (strcasecmp(value, log_levels[i]) == 0)
			return log_levels[i];
	}
	return NULL;
}

static int
set_log_level(char **field, const char *value, char *err, size_t errlen)
{
	const char *level = canonical_log_level(value);

	if (level == NULL)
		return fail(err, errlen, "not a log level: \"%s\" (error, warn, "
		    "info or debug)", value);
	return set_string(field, level, err, errlen);
}

/* A host name or IPv4 address as written before ":port". */
static int
is_host_name(const char *host)
{
	for (const char *p = host; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr(".-_", *p) == NULL)
			return 0;
	}
	return 1;
}

/* An IPv6 address, optionally with a "%interface" zone. */
static int
is_ipv6_address(const char *host)
{
	char address[INET6_ADDRSTRLEN];
	struct in6_addr unused;
	const char *zone = strchr(host, '%');
	size_t len = zone ? (size_t)(zone - host) : strlen(host);

	if (len >= sizeof(address) || (zone != NULL && zone[1] == '\0'))
		return 0;
	memcpy(address, host, len);
	address[len] = '\0';
	return inet_pton(AF_INET6, address, &unused) == 1;
}

static int
parse_port(const char *text, const char *listen, unsigned *port, char *err,
    size_t errlen)
{
	unsigned long long n;
	const char *end;
	int overflow;

	if (read_digits(text, &n, &end, &overflow) == -1 || *end != '\0')
		return fail(err, errlen, "not a port: \"%s\" in \"%s\"", text,
		    listen);
	if (overflow || n > 65535)
		return fail(err, errlen, "port out of range: \"%s\" (0 to 65535, "
		    "0: any free port)", text);
	*port = (unsigned)n;
	return 0;
}

int
config_parse_listen(const char *listen, char *host, size_t host_len,
    unsigned *port, char *err, size_t errlen)
{
	char name[MAX_HOST + 1];
	const char *start = listen, *end, *colon;
	unsigned number = 0;

	if (listen[0] == '[') {
		start = listen + 1;
		end = strchr(start, ']');
		if (end == NULL || end[1] != ':')
			goto not_an_address;
		colon = end + 1;
	} else {
		end = colon = strrchr(listen, ':');
		if (colon == NULL)
			goto not_an_address;
	}
	if ((size_t)(end - start) > MAX_HOST)
		return fail(err, errlen, "host too long in \"%s\"", listen);
	memcpy(name, start, (size_t)(end - start));
	name[end - start] = '\0';
	if (listen[0] == '[' ? !is_ipv6_address(name) : !is_host_name(name))
		goto not_an_address;
	if (parse_port(colon + 1, listen, &number, err, errlen) == -1)
		return -1;
	if (host != NULL) {
		if (strlen(name) >= host_len)
			return fail(err, errlen, "host too long in \"%s\"", listen);
		memcpy(host, name, strlen(name) + 1);
	}
	if (port != NULL)
		*port = number;
	return 0;
not_an_address:
	return fail(err, errlen, "not an address: \"%s\" (host:port, "
	    "[v6]:port or :port)", listen);
}

/* Sets one key from text; err gets the problem without the key's name. */
static int
key_set(struct config *cfg, const struct key *key, const char *value,
    char *err, size_t errlen)
{
	void *field = (char *)cfg + key->offset;

	if (value[0] == '\0' && key->type != TYPE_PATH)
		return fail(err, errlen, "missing value");
	switch (key->type) {
	case TYPE_UNSIGNED:
		return set_unsigned(field, value, err, errlen);
	case TYPE_SIZE:
		return set_size(field, value, err, errlen);
	case TYPE_BOOL:
		return set_bool(field, value, err, errlen);
	case TYPE_PATH:
		return set_string(field, value[0] != '\0' ? value : NULL, err,
		    errlen);
	case TYPE_LISTEN:
		if (config_parse_listen(value, NULL, 0, NULL, err, errlen) == -1)
			return -1;
		return set_string(field, value, err, errlen);
	case TYPE_LOG_LEVEL:
		return set_log_level(field, value, err, errlen);
	}
	return fail(err, errlen, "key of unknown type");
}

static void
format_size(size_t n, char *buf, size_t len)
{
	static const char suffixes[] = "GMK";

	for (unsigned i = 0; i < 3; i++) {
		unsigned shift = 30 - 10 * i;
		if (n != 0 && (n & (((size_t)1 << shift) - 1)) == 0) {
			snprintf(buf, len, "%zu%c", n >> shift, suffixes[i]);
			return;
		}
	}
	snprintf(buf, len, "%zu", n);
}

/* The value of key in cfg as the file would spell it: either the string
 * field itself, or buf; NULL when the key is unset. */
static const char *
key_value_text(const struct config *cfg, const struct key *key, char *buf,
    size_t len)
{
	const void *field = (const char *)cfg + key->offset;
	const int *flag = field;
	const unsigned *number = field;
	const size_t *size = field;
	char *const *string = field;

	switch (key->type) {
	case TYPE_UNSIGNED:
		snprintf(buf, len, "%u", *number);
		return buf;
	case TYPE_SIZE:
		format_size(*size, buf, len);
		return buf;
	case TYPE_BOOL:
		return *flag ? "yes" : "no";
	case TYPE_PATH:
	case TYPE_LISTEN:
	case TYPE_LOG_LEVEL:
		return *string;
	}
	return NULL;
}

void
config_init(struct config *cfg)
{
	*cfg = (struct config){
		.workers = 0,
		.queue_depth = LUAPOOL_DEFAULT_QUEUE_DEPTH,
		.default_timeout_ms = LUAPOOL_DEFAULT_TIMEOUT_MS,
		.max_timeout_ms = LUAPOOL_DEFAULT_MAX_TIMEOUT_MS,
		.max_body_bytes = DEFAULT_MAX_BODY,
		.memory_limit_mb = LUAPOOL_DEFAULT_MEMORY_MB,
		.max_result_bytes = LUAPOOL_DEFAULT_MAX_RESULT,
		.max_json_depth = LUAPOOL_DEFAULT_MAX_DEPTH,
		.max_connections = DEFAULT_MAX_CONNECTIONS,
		.connection_timeout_s = DEFAULT_CONN_TIMEOUT_S,
		.metrics_auth = 0,
		.allow_bytecode = 1,
		.max_scripts = DEFAULT_MAX_SCRIPTS,
		.max_jobs_per_worker = LUAPOOL_DEFAULT_MAX_JOBS,
		.cache_entries = LUAPOOL_DEFAULT_CACHE_ENTRIES,
		.access_log = 1,
		.http_threads = 0,
	};
	cfg->listen = copy_or_die(DEFAULT_LISTEN);
	cfg->log_level = copy_or_die(DEFAULT_LOG_LEVEL);
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		char **string = (void *)((char *)cfg + keys[i].offset);

		if (keys[i].type == TYPE_PATH || keys[i].type == TYPE_LISTEN ||
		    keys[i].type == TYPE_LOG_LEVEL) {
			free(*string);
			*string = NULL;
		}
	}
	free(cfg->config_file);
	cfg->config_file = NULL;
}

int
config_set(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	const struct key *found = find_key(key, strlen(key), '_');

	if (found == NULL)
		return fail(err, errlen, "unknown key \"%s\"", key);
	return key_set(cfg, found, value, err, errlen);
}

/* The file ---------------------------------------------------------------- */

static char *
skip_space(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void
trim_right(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
}

static int
is_key_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/*
 * Cuts the value out of the text after '=': either "quoted" (kept as is,
 * no escapes) or bare, where '#' at its start or after whitespace begins a
 * comment and surrounding whitespace is dropped.
 */
static int
split_value(char *text, char **value, char *err, size_t errlen)
{
	char *v = skip_space(text), *close, *rest;

	if (*v == '"') {
		close = strchr(v + 1, '"');
		if (close == NULL)
			return fail(err, errlen, "missing closing '\"'");
		rest = skip_space(close + 1);
		if (*rest != '\0' && *rest != '#')
			return fail(err, errlen, "text after the closing '\"'");
		*close = '\0';
		*value = v + 1;
		return 0;
	}
	for (char *p = v; *p != '\0'; p++) {
		if (*p == '#' && (p == v || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	}
	trim_right(v);
	*value = v;
	return 0;
}

static int
unknown_key(const char *name, char *err, size_t errlen)
{
	const struct key *key = find_key(name, strlen(name), '-');

	if (key != NULL)
		return fail(err, errlen, "unknown key \"%s\" (keys use '_': "
		    "\"%s\")", name, key->name);
	return fail(err, errlen, "unknown key \"%s\"", name);
}

/*
 * Applies one line.  first_line[i] remembers where keys[i] was set, so
 * that a second setting is an error rather than a silent override.
 */
static int
parse_line(struct config *cfg, char *line, unsigned long lineno,
    unsigned long *first_line, char *err, size_t errlen)
{
	char *name = skip_space(line), *end = name, *after, *value = NULL;
	char why[512];
	const struct key *key;

	if (*name == '\0' || *name == '#')
		return 0;
	while (is_key_char(*end))
		end++;
	if (end == name)
		return fail(err, errlen, "expected \"key = value\"");
	after = skip_space(end);
	if (*after != '=')
		return fail(err, errlen, "missing '=' after \"%.*s\"",
		    (int)(end - name), name);
	*end = '\0';
	if (split_value(after + 1, &value, err, errlen) == -1)
		return -1;
	if ((key = find_key(name, strlen(name), '_')) == NULL)
		return unknown_key(name, err, errlen);
	if (first_line[key - keys] != 0)
		return fail(err, errlen, "duplicate key \"%s\" (first set on line "
		    "%lu)", name, first_line[key - keys]);
	first_line[key - keys] = lineno;
	if (key_set(cfg, key, value, why, sizeof(why)) == -1)
		return fail(err, errlen, "%s: %s", key->name, why);
	return 0;
}

int
config_load_file(struct config *cfg, const char *path)
{
	unsigned long first_line[KEY_COUNT] = { 0 };
	unsigned long lineno = 0;
	char *line = NULL, err[1024];
	size_t cap = 0;
	int rc = -1;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		lineno++;
		if (parse_line(cfg, line, lineno, first_line, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "%s:%lu: %s\n", path, lineno, err);
			goto fail;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	free(line);
	fclose(f);
	return rc;
}

static int
needs_quotes(const char *value)
{
	size_t len = strlen(value);

	if (len == 0 || isspace((unsigned char)value[0]) || value[0] == '"' ||
	    isspace((unsigned char)value[len - 1]))
		return 1;
	for (size_t i = 1; i < len; i++) {
		if (value[i] == '#' && isspace((unsigned char)value[i - 1]))
			return 1;
	}
	return value[0] == '#';
}

void
config_print(const struct config *cfg, FILE *out)
{
	char buf[64];

	for (size_t i = 0; i < KEY_COUNT; i++) {
		const char *value = key_value_text(cfg, &keys[i], buf,
		    sizeof(buf));

		if (value == NULL)
			fprintf(out, "# %s =\n", keys[i].name);
		else if (needs_quotes(value))
			fprintf(out, "%s = \"%s\"\n", keys[i].name, value);
		else
			fprintf(out, "%s = %s\n", keys[i].name, value);
	}
}

/* The command line ------------------------------------------------------- */

enum option_kind {
	OPTION_KEY, OPTION_CONFIG, OPTION_CHECK, OPTION_HELP, OPTION_VERSION
};

struct option_seen {
	enum option_kind kind;
	const struct key *key;		/* OPTION_KEY */
	const char *value;		/* OPTION_KEY, OPTION_CONFIG */
};

static int
name_is(const char *name, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(name, word, len) == 0;
}

static int
unknown_option(const char *name, size_t len)
{
	const struct key *key = find_key(name, len, '_');

	if (name_is(name, len, "help") || name_is(name, len, "version") ||
	    name_is(name, len, "check-config")) {
		fprintf(stderr, PROGRAM ": --%.*s takes no value\n", (int)len,
		    name);
	} else if (key != NULL) {
		char dashed[64];
		option_name(key, dashed, sizeof(dashed));
		fprintf(stderr, PROGRAM ": unknown option --%.*s (did you mean "
		    "--%s?)\n", (int)len, name, dashed);
	} else {
		fprintf(stderr, PROGRAM ": unknown option --%.*s\n", (int)len,
		    name);
	}
	return -1;
}

/* The value of the option at argv[*i]: after '=' if inline, else the next
 * argument (consumed). */
static int
option_value(int argc, char **argv, int *i, const char *inline_value,
    const char **value)
{
	if (inline_value != NULL) {
		*value = inline_value;
		return 0;
	}
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 0;
}

/* The option without its value: --help, --version, --check-config. */
static int
read_flag(const char *arg, struct option_seen *out)
{
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		out->kind = OPTION_HELP;
	else if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0)
		out->kind = OPTION_VERSION;
	else if (strcmp(arg, "--check-config") == 0)
		out->kind = OPTION_CHECK;
	else
		return 0;
	return 1;
}

/* Reads argv[*i] (and its value), advancing *i past what it used.  Prints
 * the error and returns -1 for anything it does not know. */
static int
read_option(int argc, char **argv, int *i, struct option_seen *out)
{
	const char *arg = argv[*i], *name = arg + 2, *equals = NULL;
	size_t len;

	*out = (struct option_seen){ OPTION_KEY, NULL, NULL };
	if (read_flag(arg, out))
		return 0;
	if (strcmp(arg, "-c") == 0) {
		out->kind = OPTION_CONFIG;
		name = "config";
		len = strlen(name);
	} else if (strncmp(arg, "-c", 2) == 0) {
		out->kind = OPTION_CONFIG;
		out->value = arg + 2;
		return 0;
	} else if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
		if (arg[0] == '-')
			fprintf(stderr, PROGRAM ": unknown option %s\n", arg);
		else
			fprintf(stderr, PROGRAM ": unexpected argument \"%s\"\n",
			    arg);
		return -1;
	} else {
		equals = strchr(name, '=');
		len = equals ? (size_t)(equals - name) : strlen(name);
		if (name_is(name, len, "config"))
			out->kind = OPTION_CONFIG;
		else if ((out->key = find_key(name, len, '-')) == NULL)
			return unknown_option(name, len);
	}
	if (option_value(argc, argv, i, equals ? equals + 1 : NULL,
	    &out->value) == -1) {
		fprintf(stderr, PROGRAM ": --%.*s: missing value\n", (int)len,
		    name);
		return -1;
	}
	return 0;
}

static const char *
base_name(const char *path)
{
	const char *slash;

	if (path == NULL || path[0] == '\0')
		return PROGRAM;
	slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* First walk: checks every option's spelling, handles --help/--version and
 * finds the file.  Returns 1 to stop, 0 to go on, -1 on error. */
static int
scan_options(int argc, char **argv, const char **file, int *check_only)
{
	struct option_seen option;

	for (int i = 1; i < argc; i++) {
		if (read_option(argc, argv, &i, &option) == -1)
			return -1;
		switch (option.kind) {
		case OPTION_HELP:
			config_print_usage(base_name(argv[0]));
			return 1;
		case OPTION_VERSION:
			printf(PROGRAM " %s\n", LUAPOOL_VERSION);
			return 1;
		case OPTION_CONFIG:
			*file = option.value;
			break;
		case OPTION_CHECK:
			*check_only = 1;
			break;
		case OPTION_KEY:
			break;
		}
	}
	return 0;
}

/* Second walk, after the file: every key option, in order. */
static int
apply_options(struct config *cfg, int argc, char **argv)
{
	struct option_seen option;
	char why[512], dashed[64];

	for (int i = 1; i < argc; i++) {
		if (read_option(argc, argv, &i, &option) == -1)
			return -1;
		if (option.kind != OPTION_KEY)
			continue;
		if (key_set(cfg, option.key, option.value, why,
		    sizeof(why)) == -1) {
			option_name(option.key, dashed, sizeof(dashed));
			fprintf(stderr, PROGRAM ": --%s: %s\n", dashed, why);
			return -1;
		}
	}
	return 0;
}

int
config_from_args(struct config *cfg, int argc, char **argv)
{
	const char *file = NULL;
	char why[64];
	int check_only = 0, rc;

	if ((rc = scan_options(argc, argv, &file, &check_only)) != 0)
		return rc;
	if (file != NULL) {
		if (set_string(&cfg->config_file, file, why, sizeof(why)) == -1) {
			fprintf(stderr, PROGRAM ": %s\n", why);
			return -1;
		}
		if (config_load_file(cfg, file) == -1)
			return -1;
	}
	if (apply_options(cfg, argc, argv) == -1)
		return -1;
	if (check_only)
		cfg->check_only = 1;
	return 0;
}

/* Validation ------------------------------------------------------------- */

#define MAX_MAX_BODY (255u * 1024u * 1024u)
#define MAX_WORKERS 1024u
#define MAX_JSON_DEPTH 998u

static int
check_limits(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->max_timeout_ms < 1)
		return fail(err, errlen, "max_timeout_ms must be at least 1");
	if (cfg->default_timeout_ms < 1)
		return fail(err, errlen, "default_timeout_ms must be at least 1");
	if (cfg->default_timeout_ms > cfg->max_timeout_ms)
		return fail(err, errlen, "default_timeout_ms (%u) is larger than "
		    "max_timeout_ms (%u)", cfg->default_timeout_ms,
		    cfg->max_timeout_ms);
	if (cfg->queue_depth < 1)
		return fail(err, errlen, "queue_depth must be at least 1");
	if (cfg->max_body_bytes < MIN_MAX_BODY)
		return fail(err, errlen, "max_body_bytes must be at least %u",
		    MIN_MAX_BODY);
	if (cfg->memory_limit_mb < MIN_MEMORY_MB)
		return fail(err, errlen, "memory_limit_mb must be at least %u",
		    MIN_MEMORY_MB);
	if (cfg->max_result_bytes < MIN_MAX_RESULT)
		return fail(err, errlen, "max_result_bytes must be at least %u",
		    MIN_MAX_RESULT);
	/* The worker refuses frames above 256 MiB. */
	if (cfg->max_body_bytes > MAX_MAX_BODY)
		return fail(err, errlen, "max_body_bytes must be at most %u", MAX_MAX_BODY);
	if (cfg->workers > MAX_WORKERS)
		return fail(err, errlen, "workers must be at most %u", MAX_WORKERS);
	/* cJSON, which still parses some bodies, stops at 1000 levels. */
	if (cfg->max_json_depth < 1 || cfg->max_json_depth > MAX_JSON_DEPTH)
		return fail(err, errlen, "max_json_depth must be between 1 and %u",
		    MAX_JSON_DEPTH);
	return 0;
}

/* The token must be there now: finding out at the first request that
 * nobody can authenticate would be worse. */
static int
check_token_file(const char *path, char *err, size_t errlen)
{
	int c, found = 0, error;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return fail(err, errlen, "auth_token_file \"%s\": %s", path,
		    strerror(errno));
	while (!found && (c = getc(f)) != EOF)
		found = !isspace(c);
	error = ferror(f) ? errno : 0;
	fclose(f);
	if (error != 0)
		return fail(err, errlen, "auth_token_file \"%s\": %s", path,
		    strerror(error));
	if (!found)
		return fail(err, errlen, "auth_token_file \"%s\" is empty", path);
	return 0;
}

static int
check_readable(const char *name, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return fail(err, errlen, "%s \"%s\": %s", name, path,
		    strerror(errno));
	close(fd);
	return 0;
}

static int
check_files(const struct config *cfg, char *err, size_t errlen)
{
	struct stat st;

	if (cfg->auth_token_file != NULL &&
	    check_token_file(cfg->auth_token_file, err, errlen) == -1)
		return -1;
	if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL))
		return fail(err, errlen, "tls_cert_file and tls_key_file go "
		    "together: set both or neither");
	if (cfg->tls_cert_file != NULL &&
	    (check_readable("tls_cert_file", cfg->tls_cert_file, err,
	    errlen) == -1 ||
	    check_readable("tls_key_file", cfg->tls_key_file, err,
	    errlen) == -1))
		return -1;
	if (cfg->scripts_dir != NULL) {
		if (stat(cfg->scripts_dir, &st) == -1)
			return fail(err, errlen, "scripts_dir \"%s\": %s",
			    cfg->scripts_dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return fail(err, errlen, "scripts_dir \"%s\" is not a "
			    "directory", cfg->scripts_dir);
	}
	return 0;
}

int
config_validate(const struct config *cfg, char *err, size_t errlen)
{
	char why[512];

	if (cfg->listen == NULL || config_parse_listen(cfg->listen, NULL, 0,
	    NULL, why, sizeof(why)) == -1)
		return fail(err, errlen, "listen: %s", cfg->listen ? why :
		    "missing value");
	if (cfg->log_level == NULL || canonical_log_level(cfg->log_level) == NULL)
		return fail(err, errlen, "log_level: not a log level: \"%s\"",
		    cfg->log_level ? cfg->log_level : "");
	if (check_limits(cfg, err, errlen) == -1)
		return -1;
	return check_files(cfg, err, errlen);
}

/* --help ----------------------------------------------------------------- */

/* Prints text indented, broken at spaces so lines stay within width. */
static void
print_wrapped(const char *text, int indent, int width)
{
	while (*text != '\0') {
		int room = width - indent, len = (int)strlen(text), cut = len;

		if (len > room) {
			for (cut = room; cut > 0 && text[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = len;
		}
		printf("%*s%.*s\n", indent, "", cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

void
config_print_usage(const char *program)
{
	struct config defaults;
	char option[64], buf[64];

	config_init(&defaults);
	printf("usage: %s [-c FILE] [--check-config] [--KEY VALUE]...\n\n",
	    program ? program : PROGRAM);
	fputs("Runs LuaJIT scripts sent over HTTP in a pool of sandboxed "
	    "worker processes.\n\n"
	    "  -c, --config FILE   read FILE (key = value lines) first; "
	    "without it no file\n"
	    "                      is read (the usual one is "
	    CONFIG_DEFAULT_FILE ")\n"
	    "  --check-config      check the configuration and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "  -V, --version       print the version and exit\n\n"
	    "Every key of the file is also an option, --key-with-dashes VALUE "
	    "or\n--key-with-dashes=VALUE, and the command line wins over the "
	    "file.  SIZE is\nbytes or a number with k, M or G (KiB, MiB, GiB); "
	    "BOOL is yes/no, true/false,\non/off or 1/0; an empty PATH unsets "
	    "it.\n\n", stdout);
	for (size_t i = 0; i < KEY_COUNT; i++) {
		const char *value = key_value_text(&defaults, &keys[i], buf,
		    sizeof(buf));

		option_name(&keys[i], option, sizeof(option));
		printf("  --%s %s  (default: %s)\n", option,
		    metavars[keys[i].type], value ? value : "unset");
		print_wrapped(keys[i].help, 6, 79);
	}
	config_free(&defaults);
}
