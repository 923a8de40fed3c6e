/*
 * config_keys.c - the table of configuration keys (name, type, field,
 * one line of help) and the parsing of a value of each type.  The table
 * drives the file parser, the long options, --help and config_print, so a
 * key cannot exist in one of them and be missing from another.  This file
 * only turns text into fields of a struct config; it must never read a
 * file, print, or call into the other config files (they call into it).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/config.h"
#include "daemon/config_internal.h"

#define MAX_HOST		255	/* longest host name or address in listen */

/* offsetof(struct config, field), and a compile error when the field is
 * not of C type `ctype` (the _Generic has no other association). */
#define FIELD(field, ctype) _Generic(((struct config *)0)->field, \
	ctype: offsetof(struct config, field))

#define UNSIGNED_KEY(f, help)	{ #f, TYPE_UNSIGNED, FIELD(f, unsigned), help }
#define SIZE_KEY(f, help)	{ #f, TYPE_SIZE, FIELD(f, size_t), help }
#define BOOL_KEY(f, help)	{ #f, TYPE_BOOL, FIELD(f, int), help }
#define PATH_KEY(f, help)	{ #f, TYPE_PATH, FIELD(f, char *), help }
#define NAME_KEY(f, help)	{ #f, TYPE_NAME, FIELD(f, char *), help }

/* In the order of struct config; conf/luapoold.conf follows it too. */
const struct config_key config_keys[] = {
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
	SIZE_KEY(max_log_bytes, "what a job's print and log.* may capture (as the "
	    "JSON of its \"logs\"), then a truncation marker; 0: nothing"),
	UNSIGNED_KEY(max_connections, "HTTP connections open at once"),
	UNSIGNED_KEY(connection_timeout_s,
	    "seconds an idle or slow client may keep a connection"),
	UNSIGNED_KEY(request_read_timeout_s, "seconds a client has to send a whole "
	    "request (headers and body) once its connection waits for one"),
	UNSIGNED_KEY(max_connections_per_ip,
	    "HTTP connections open at once from one client address; 0: no limit"),
	SIZE_KEY(max_inflight_bytes, "request bytes held in memory at once, all "
	    "clients together; past it new bodies get 503 overloaded"),
	PATH_KEY(auth_token_file, "file holding the bearer token every request "
	    "must send; unset: no authentication"),
	BOOL_KEY(metrics_auth, "whether GET /metrics needs the token too"),
	{ "bytecode", TYPE_BYTECODE, FIELD(bytecode, int),
	    "what bytecode clients may send: verified (any that passes the "
	    "verifier), signed (only what this server's /v1/compile gave; needs "
	    "bytecode_key_file) or off (source only)" },
	{ "allow_bytecode", TYPE_BOOL, FIELD(bytecode, int),
	    "old spelling of bytecode: yes is verified, no is off", 1 },
	PATH_KEY(bytecode_key_file, "file of at least 32 secret bytes, not "
	    "readable by other users, keying the tags of bytecode = signed"),
	BOOL_KEY(bytecode_jit, "whether client bytecode may be JIT-compiled; no: "
	    "it runs in the interpreter only (slower loops, smaller attack surface)"),
	PATH_KEY(scripts_dir, "directory where stored scripts are kept; "
	    "unset: in memory only, lost on restart"),
	UNSIGNED_KEY(max_scripts, "scripts that may be stored at once"),
	UNSIGNED_KEY(max_jobs_per_worker,
	    "jobs after which a worker is replaced; 0: never"),
	UNSIGNED_KEY(cache_entries, "compiled chunks each worker keeps cached"),
	{ "log_level", TYPE_LOG_LEVEL, FIELD(log_level, char *),
	    "least severe event logged: error, warn, info or debug" },
	{ "log_format", TYPE_LOG_FORMAT, FIELD(log_format, int),
	    "text (one line per event) or json (one object per line)" },
	BOOL_KEY(access_log, "whether every request is logged (at info level)"),
	UNSIGNED_KEY(slow_job_ms, "a job whose queue and run time together pass "
	    "this many milliseconds is logged at warn level; 0: never"),
	PATH_KEY(worker_path, "the luapool-worker executable; unset: "
	    "$LUAPOOL_WORKER, the install path, then next to luapoold"),
	NAME_KEY(worker_user, "user the workers run as when luapoold runs as "
	    "root (never root itself); ignored otherwise"),
	BOOL_KEY(fronts, "whether front processes serve HTTP and run short jobs "
	    "in-process (docs/ARCHITECTURE.md, \"Fronts\"); no: the supervisor "
	    "serves every request; off by itself with tls_cert_file or "
	    "http_threads > 0"),
	UNSIGNED_KEY(front_workers, "front processes when fronts = yes; 0: one per "
	    "online CPU"),
	UNSIGNED_KEY(fast_lane_ms, "a job runs in a front only if its chunk's "
	    "recent runs all stayed under half of this, and is stopped and sent to "
	    "the pool if it reaches it"),
	PATH_KEY(front_path, "the luapool-front executable; unset: "
	    "$LUAPOOL_FRONT, the install path, then next to luapoold or the worker"),
	PATH_KEY(tls_cert_file,
	    "PEM certificate (chain); with tls_key_file, serve HTTPS"),
	PATH_KEY(tls_key_file, "PEM private key of tls_cert_file"),
	UNSIGNED_KEY(http_threads,
	    "0: one event loop thread serves HTTP and dispatches jobs; N: N HTTP threads"),
};

_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) == CONFIG_KEY_COUNT,
    "CONFIG_KEY_COUNT in config_internal.h must count the keys");

static const char *const log_levels[] = { "error", "warn", "info", "debug" };

/* Indexed by enum config_bytecode. */
static const char *const bytecode_modes[] = { "off", "verified", "signed" };

/* Indexed by enum config_log_format. */
static const char *const log_formats[] = { "text", "json" };

static const struct {
	const char *word;
	int value;
} booleans[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
	{ "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 }
};

/* Fills err and returns -1, so that errors read
 * `return config_keys_fail(...)`. */
int
config_keys_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Replaces *field with a copy of value (NULL: unset). */
int
config_keys_set_string(char **field, const char *value, char *err,
    size_t errlen)
{
	char *copy = NULL;

	if (value != NULL && (copy = strdup(value)) == NULL)
		return config_keys_fail(err, errlen, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

/*
 * The key called `name` (len bytes, not necessarily NUL-terminated), where
 * `separator` stands for each '_' of the key: '_' in the file, '-' on the
 * command line.  NULL when there is none.
 */
const struct config_key *
config_keys_find(const char *name, size_t len, char separator)
{
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const char *k = config_keys[i].name;
		size_t j = 0;

		for (; j < len && k[j] != '\0'; j++) {
			char want = k[j] == '_' ? separator : k[j];
			if (name[j] != want)
				break;
		}
		if (j == len && k[j] == '\0')
			return &config_keys[i];
	}
	return NULL;
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
		return config_keys_fail(err, errlen,
		    "must not be negative: \"%s\"", value);
	if (read_digits(value, &n, &end, &overflow) == -1 || *end != '\0')
		return config_keys_fail(err, errlen,
		    "not a number: \"%s\"", value);
	if (overflow || n > UINT_MAX)
		return config_keys_fail(err, errlen,
		    "too large: \"%s\" (at most %u)", value,
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
		return config_keys_fail(err, errlen,
		    "must not be negative: \"%s\"", value);
	if (read_digits(value, &n, &end, &overflow) == -1)
		goto not_a_size;
	if (*end != '\0') {
		suffix = strchr(suffixes, tolower((unsigned char)*end));
		if (suffix == NULL || end[1] != '\0')
			goto not_a_size;
		shift = 10 * (unsigned)(suffix - suffixes + 1);
	}
	if (overflow || n > SIZE_MAX >> shift)
		return config_keys_fail(err, errlen,
		    "too large: \"%s\"", value);
	*field = (size_t)n << shift;
	return 0;
not_a_size:
	return config_keys_fail(err, errlen,
	    "not a size: \"%s\" (bytes, or a number "
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
	return config_keys_fail(err, errlen,
	    "not a boolean: \"%s\" (yes/no, true/false, "
	    "on/off or 1/0)", value);
}

/* The lower-case spelling of a log level, or NULL. */
const char *
config_keys_canonical_log_level(const char *value)
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
	const char *level = config_keys_canonical_log_level(value);

	if (level == NULL)
		return config_keys_fail(err, errlen,
		    "not a log level: \"%s\" (error, warn, "
		    "info or debug)", value);
	return config_keys_set_string(field, level, err, errlen);
}

static int
set_bytecode(int *field, const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(bytecode_modes) / sizeof(bytecode_modes[0]); i++) {
		if (strcasecmp(value, bytecode_modes[i]) == 0) {
			*field = (int)i;
			return 0;
		}
	}
	return config_keys_fail(err, errlen,
	    "not a bytecode mode: \"%s\" (verified, signed or off)", value);
}

static int
set_log_format(int *field, const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(log_formats) / sizeof(log_formats[0]); i++) {
		if (strcasecmp(value, log_formats[i]) == 0) {
			*field = (int)i;
			return 0;
		}
	}
	return config_keys_fail(err, errlen,
	    "not a log format: \"%s\" (text or json)", value);
}

const struct config_key *
config_keys_owner(const struct config_key *key)
{
	return key->alias ? key - 1 : key;
}

/* A host name or IPv4 address as written before ":port"; digits and dots
 * alone must be an IPv4 address (999.1.1.1 is not a name either). */
static int
is_host_name(const char *host)
{
	struct in_addr unused;

	for (const char *p = host; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr(".-_", *p) == NULL)
			return 0;
	}
	if (*host != '\0' && host[strspn(host, "0123456789.")] == '\0')
		return inet_pton(AF_INET, host, &unused) == 1;
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
		return config_keys_fail(err, errlen,
		    "not a port: \"%s\" in \"%s\"", text,
		    listen);
	if (overflow || n > 65535)
		return config_keys_fail(err, errlen,
		    "port out of range: \"%s\" (0 to 65535, "
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
		return config_keys_fail(err, errlen,
		    "host too long in \"%s\"", listen);
	memcpy(name, start, (size_t)(end - start));
	name[end - start] = '\0';
	if (listen[0] == '[' ? !is_ipv6_address(name) : !is_host_name(name))
		goto not_an_address;
	if (parse_port(colon + 1, listen, &number, err, errlen) == -1)
		return -1;
	if (host != NULL) {
		if (strlen(name) >= host_len)
			return config_keys_fail(err, errlen,
			    "host too long in \"%s\"", listen);
		memcpy(host, name, strlen(name) + 1);
	}
	if (port != NULL)
		*port = number;
	return 0;
not_an_address:
	return config_keys_fail(err, errlen,
	    "not an address: \"%s\" (host:port, "
	    "[v6]:port or :port)", listen);
}

/* Sets one key from text; err gets the problem without the key's name. */
int
config_keys_set(struct config *cfg, const struct config_key *key,
    const char *value, char *err, size_t errlen)
{
	void *field = (char *)cfg + key->offset;

	if (value[0] == '\0' && key->type != TYPE_PATH)
		return config_keys_fail(err, errlen, "missing value");
	switch (key->type) {
	case TYPE_UNSIGNED:
		return set_unsigned(field, value, err, errlen);
	case TYPE_SIZE:
		return set_size(field, value, err, errlen);
	case TYPE_BOOL:
		return set_bool(field, value, err, errlen);
	case TYPE_PATH:
		return config_keys_set_string(field,
		    value[0] != '\0' ? value : NULL, err, errlen);
	case TYPE_LISTEN:
		if (config_parse_listen(value, NULL, 0, NULL, err, errlen) == -1)
			return -1;
		return config_keys_set_string(field, value, err, errlen);
	case TYPE_LOG_LEVEL:
		return set_log_level(field, value, err, errlen);
	case TYPE_BYTECODE:
		return set_bytecode(field, value, err, errlen);
	case TYPE_LOG_FORMAT:
		return set_log_format(field, value, err, errlen);
	case TYPE_NAME:
		return config_keys_set_string(field, value, err, errlen);
	}
	return config_keys_fail(err, errlen, "key of unknown type");
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
const char *
config_keys_value_text(const struct config *cfg,
    const struct config_key *key, char *buf, size_t len)
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
	case TYPE_BYTECODE:
		return *flag >= 0 && *flag <= CONFIG_BYTECODE_SIGNED ? bytecode_modes[*flag] : NULL;
	case TYPE_LOG_FORMAT:
		return *flag >= 0 && *flag <= CONFIG_LOG_JSON ? log_formats[*flag] : NULL;
	case TYPE_PATH:
	case TYPE_LISTEN:
	case TYPE_LOG_LEVEL:
	case TYPE_NAME:
		return *string;
	}
	return NULL;
}
