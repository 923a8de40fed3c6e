/*
 * test_config.c - the configuration: defaults, every value type, the file
 * format and its file:line errors, the command line and its precedence,
 * validation, and the shipped conf/luapoold.conf.  Run from the repository
 * root (the shipped file is read as conf/luapoold.conf).  Temporary files go
 * to /tmp and are removed by the test that made them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

#define SHIPPED_CONF "conf/luapoold.conf"

/* Helpers ----------------------------------------------------------------- */

struct capture {
	FILE *stream;
	int saved_fd;
	char path[64];
	char text[32768];
};

/* Sends everything written to `stream` (stdout or stderr) to a file until
 * capture_end, which returns it. */
static void
capture_start(struct capture *c, FILE *stream)
{
	int fd;

	c->stream = stream;
	strcpy(c->path, "/tmp/test_config_out_XXXXXX");
	fd = mkstemp(c->path);
	ck_assert_int_ne(fd, -1);
	fflush(stream);
	c->saved_fd = dup(fileno(stream));
	ck_assert_int_ne(dup2(fd, fileno(stream)), -1);
	close(fd);
}

static const char *
capture_end(struct capture *c)
{
	FILE *f;
	size_t n;

	fflush(c->stream);
	dup2(c->saved_fd, fileno(c->stream));
	close(c->saved_fd);
	f = fopen(c->path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(c->text, 1, sizeof(c->text) - 1, f);
	c->text[n] = '\0';
	fclose(f);
	unlink(c->path);
	return c->text;
}

/* Writes text to a new file in /tmp; path must hold 64 bytes. */
static void
write_temp_file(char *path, const char *text)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/test_config_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Loads text as a file; returns what config_load_file returned and leaves
 * its stderr in c->text. */
static int
load_text(struct config *cfg, const char *text, char *path, struct capture *c)
{
	int rc;

	write_temp_file(path, text);
	capture_start(c, stderr);
	rc = config_load_file(cfg, path);
	capture_end(c);
	return rc;
}

/* Runs config_from_args on a NULL-terminated list that starts with argv[0]. */
static int
from_args(struct config *cfg, const char *const *args)
{
	char *argv[64];
	int argc = 0, rc;

	for (; args[argc] != NULL; argc++)
		argv[argc] = strdup(args[argc]);
	argv[argc] = NULL;
	rc = config_from_args(cfg, argc, argv);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

#define ARGS(...) ((const char *const[]){ "luapoold", __VA_ARGS__, NULL })

/* from_args with stderr captured into c. */
static int
from_args_quiet(struct config *cfg, const char *const *args, struct capture *c)
{
	int rc;

	capture_start(c, stderr);
	rc = from_args(cfg, args);
	capture_end(c);
	return rc;
}

static void
assert_same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		ck_assert_ptr_eq(a, b);
	else
		ck_assert_str_eq(a, b);
}

/* Every key field of struct config. */
static void
assert_same_config(const struct config *a, const struct config *b)
{
	assert_same_string(a->listen, b->listen);
	ck_assert_uint_eq(a->workers, b->workers);
	ck_assert_uint_eq(a->queue_depth, b->queue_depth);
	ck_assert_uint_eq(a->default_timeout_ms, b->default_timeout_ms);
	ck_assert_uint_eq(a->max_timeout_ms, b->max_timeout_ms);
	ck_assert_uint_eq(a->max_body_bytes, b->max_body_bytes);
	ck_assert_uint_eq(a->memory_limit_mb, b->memory_limit_mb);
	ck_assert_uint_eq(a->max_result_bytes, b->max_result_bytes);
	ck_assert_uint_eq(a->max_json_depth, b->max_json_depth);
	ck_assert_uint_eq(a->max_connections, b->max_connections);
	ck_assert_uint_eq(a->connection_timeout_s, b->connection_timeout_s);
	assert_same_string(a->auth_token_file, b->auth_token_file);
	ck_assert_int_eq(a->metrics_auth, b->metrics_auth);
	ck_assert_int_eq(a->allow_bytecode, b->allow_bytecode);
	assert_same_string(a->scripts_dir, b->scripts_dir);
	ck_assert_uint_eq(a->max_scripts, b->max_scripts);
	ck_assert_uint_eq(a->max_jobs_per_worker, b->max_jobs_per_worker);
	ck_assert_uint_eq(a->cache_entries, b->cache_entries);
	assert_same_string(a->log_level, b->log_level);
	ck_assert_int_eq(a->access_log, b->access_log);
	assert_same_string(a->worker_path, b->worker_path);
	assert_same_string(a->tls_cert_file, b->tls_cert_file);
	assert_same_string(a->tls_key_file, b->tls_key_file);
	ck_assert_uint_eq(a->http_threads, b->http_threads);
}

/* Expects config_set to succeed. */
static void
set_ok(struct config *cfg, const char *key, const char *value)
{
	char err[256] = "";

	ck_assert_msg(config_set(cfg, key, value, err, sizeof(err)) == 0,
	    "%s = \"%s\": %s", key, value, err);
}

/* Expects config_set to fail with exactly `message`. */
static void
set_fails(struct config *cfg, const char *key, const char *value,
    const char *message)
{
	char err[256] = "";

	ck_assert_int_eq(config_set(cfg, key, value, err, sizeof(err)), -1);
	ck_assert_str_eq(err, message);
}

/* Expects config_set to fail, whatever the message. */
static void
set_rejected(struct config *cfg, const char *key, const char *value)
{
	char err[256] = "";

	ck_assert_msg(config_set(cfg, key, value, err, sizeof(err)) == -1,
	    "%s = \"%s\" was accepted", key, value);
	ck_assert_str_ne(err, "");
}

/* Defaults ---------------------------------------------------------------- */

START_TEST(config_init_should_fill_the_documented_defaults)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert_str_eq(cfg.listen, "127.0.0.1:8080");
	ck_assert_uint_eq(cfg.workers, 0);
	ck_assert_uint_eq(cfg.queue_depth, 1024);
	ck_assert_uint_eq(cfg.default_timeout_ms, 1000);
	ck_assert_uint_eq(cfg.max_timeout_ms, 60000);
	ck_assert_uint_eq(cfg.max_body_bytes, 8 * 1024 * 1024);
	ck_assert_uint_eq(cfg.memory_limit_mb, 128);
	ck_assert_uint_eq(cfg.max_result_bytes, 1024 * 1024);
	ck_assert_uint_eq(cfg.max_json_depth, 256);
	ck_assert_uint_eq(cfg.max_connections, 1024);
	ck_assert_uint_eq(cfg.connection_timeout_s, 30);
	ck_assert_ptr_null(cfg.auth_token_file);
	ck_assert_int_eq(cfg.metrics_auth, 0);
	ck_assert_int_eq(cfg.allow_bytecode, 1);
	ck_assert_ptr_null(cfg.scripts_dir);
	ck_assert_uint_eq(cfg.max_scripts, 1024);
	ck_assert_uint_eq(cfg.max_jobs_per_worker, 100000);
	ck_assert_uint_eq(cfg.cache_entries, 256);
	ck_assert_str_eq(cfg.log_level, "info");
	ck_assert_int_eq(cfg.access_log, 1);
	ck_assert_ptr_null(cfg.worker_path);
	ck_assert_ptr_null(cfg.tls_cert_file);
	ck_assert_ptr_null(cfg.tls_key_file);
	ck_assert_uint_eq(cfg.http_threads, 0);
	ck_assert_ptr_null(cfg.config_file);
	ck_assert_int_eq(cfg.check_only, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(config_free_should_release_every_string_and_be_safe_to_repeat)
{
	struct config cfg;

	config_init(&cfg);
	set_ok(&cfg, "auth_token_file", "/a");
	set_ok(&cfg, "scripts_dir", "/b");
	set_ok(&cfg, "worker_path", "/c");
	set_ok(&cfg, "tls_cert_file", "/d");
	set_ok(&cfg, "tls_key_file", "/e");
	config_free(&cfg);
	ck_assert_ptr_null(cfg.listen);
	ck_assert_ptr_null(cfg.log_level);
	ck_assert_ptr_null(cfg.auth_token_file);
	ck_assert_ptr_null(cfg.tls_key_file);
	config_free(&cfg);
}
END_TEST

/* Values ------------------------------------------------------------------ */

START_TEST(config_set_should_parse_unsigned_integers_up_to_uint_max)
{
	struct config cfg;

	config_init(&cfg);
	set_ok(&cfg, "workers", "0");
	ck_assert_uint_eq(cfg.workers, 0);
	set_ok(&cfg, "workers", "16");
	ck_assert_uint_eq(cfg.workers, 16);
	set_ok(&cfg, "queue_depth", "4294967295");
	ck_assert_uint_eq(cfg.queue_depth, 4294967295u);
	set_ok(&cfg, "max_timeout_ms", "007");
	ck_assert_uint_eq(cfg.max_timeout_ms, 7);
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_reject_negative_overflowing_and_malformed_numbers)
{
	struct config cfg;

	config_init(&cfg);
	set_fails(&cfg, "workers", "x", "not a number: \"x\"");
	set_fails(&cfg, "workers", "-1", "must not be negative: \"-1\"");
	set_fails(&cfg, "workers", "4294967296",
	    "too large: \"4294967296\" (at most 4294967295)");
	set_fails(&cfg, "workers", "99999999999999999999999",
	    "too large: \"99999999999999999999999\" (at most 4294967295)");
	set_fails(&cfg, "workers", "12abc", "not a number: \"12abc\"");
	set_fails(&cfg, "workers", "+3", "not a number: \"+3\"");
	set_fails(&cfg, "workers", " 3", "not a number: \" 3\"");
	set_fails(&cfg, "workers", "3 ", "not a number: \"3 \"");
	set_fails(&cfg, "workers", "0x10", "not a number: \"0x10\"");
	set_fails(&cfg, "workers", "", "missing value");
	ck_assert_uint_eq(cfg.workers, 0);	/* failures change nothing */
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_read_sizes_in_bytes_and_with_k_m_g_suffixes)
{
	static const struct {
		const char *text;
		size_t bytes;
	} cases[] = {
		{ "0", 0 }, { "100", 100 }, { "1k", 1024 }, { "2K", 2048 },
		{ "8M", 8388608 }, { "8m", 8388608 }, { "1g", 1073741824 },
		{ "3G", (size_t)3 << 30 },
	};
	struct config cfg;

	config_init(&cfg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_ok(&cfg, "max_body_bytes", cases[i].text);
		ck_assert_uint_eq(cfg.max_body_bytes, cases[i].bytes);
	}
	set_ok(&cfg, "max_result_bytes", "64k");
	ck_assert_uint_eq(cfg.max_result_bytes, 65536);
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_reject_malformed_and_overflowing_sizes)
{
	static const char *const bad[] = {
		"M", "8MB", "8 M", "8T", "1.5M", "-1", "+1", "8Mk",
		"18446744073709551616", "17179869184G",
	};
	struct config cfg;

	config_init(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		set_rejected(&cfg, "max_body_bytes", bad[i]);
	set_fails(&cfg, "max_body_bytes", "8MB", "not a size: \"8MB\" (bytes, "
	    "or a number followed by k, M or G)");
	set_fails(&cfg, "max_body_bytes", "17179869184G",
	    "too large: \"17179869184G\"");
	ck_assert_uint_eq(cfg.max_body_bytes, 8 * 1024 * 1024);
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_accept_every_boolean_spelling)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True" };
	static const char *const no[] = { "no", "false", "off", "0", "No", "OFF" };
	struct config cfg;

	config_init(&cfg);
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		cfg.metrics_auth = 0;
		set_ok(&cfg, "metrics_auth", yes[i]);
		ck_assert_int_eq(cfg.metrics_auth, 1);
		cfg.metrics_auth = 1;
		set_ok(&cfg, "metrics_auth", no[i]);
		ck_assert_int_eq(cfg.metrics_auth, 0);
	}
	set_fails(&cfg, "access_log", "maybe", "not a boolean: \"maybe\" "
	    "(yes/no, true/false, on/off or 1/0)");
	set_rejected(&cfg, "allow_bytecode", "2");
	set_rejected(&cfg, "allow_bytecode", "y");
	set_rejected(&cfg, "allow_bytecode", "");
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_accept_listen_as_host_port_bracketed_v6_or_port)
{
	static const char *const good[] = {
		"127.0.0.1:8080", "localhost:80", ":8080", "0.0.0.0:0",
		"[::1]:8080", "[::]:65535", "[fe80::1%eth0]:80",
		"my-host.example.com:443",
	};
	struct config cfg;

	config_init(&cfg);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		set_ok(&cfg, "listen", good[i]);
		ck_assert_str_eq(cfg.listen, good[i]);
	}
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_reject_malformed_listen_addresses)
{
	static const char *const bad[] = {
		"8080", "localhost", "host:", "host:http", "host:-1", ":65536",
		":99999999999999999999", "::1:8080", "[::1]", "[::1]8080",
		"[]:80", "[nonsense]:80", "[::1:80", "a b:80", "*:80", "[::1]:",
	};
	struct config cfg;

	config_init(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		set_rejected(&cfg, "listen", bad[i]);
	set_fails(&cfg, "listen", ":65536", "port out of range: \"65536\" "
	    "(0 to 65535, 0: any free port)");
	set_fails(&cfg, "listen", "8080", "not an address: \"8080\" "
	    "(host:port, [v6]:port or :port)");
	ck_assert_str_eq(cfg.listen, "127.0.0.1:8080");
	config_free(&cfg);
}
END_TEST

START_TEST(config_parse_listen_should_split_host_and_port)
{
	char host[256], err[256];
	unsigned port = 1;

	ck_assert_int_eq(config_parse_listen("127.0.0.1:8080", host,
	    sizeof(host), &port, err, sizeof(err)), 0);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_uint_eq(port, 8080);
	ck_assert_int_eq(config_parse_listen("[::1]:9", host, sizeof(host),
	    &port, err, sizeof(err)), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 9);
	ck_assert_int_eq(config_parse_listen(":0", host, sizeof(host), &port,
	    err, sizeof(err)), 0);
	ck_assert_str_eq(host, "");
	ck_assert_uint_eq(port, 0);
	ck_assert_int_eq(config_parse_listen("localhost:1", host, 5, &port,
	    err, sizeof(err)), -1);
	ck_assert_int_eq(config_parse_listen("nope", NULL, 0, NULL, NULL, 0),
	    -1);
}
END_TEST

START_TEST(config_set_should_accept_only_known_log_levels)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	struct config cfg;

	config_init(&cfg);
	for (size_t i = 0; i < 4; i++) {
		set_ok(&cfg, "log_level", levels[i]);
		ck_assert_str_eq(cfg.log_level, levels[i]);
	}
	set_ok(&cfg, "log_level", "WARN");
	ck_assert_str_eq(cfg.log_level, "warn");
	set_fails(&cfg, "log_level", "verbose", "not a log level: \"verbose\" "
	    "(error, warn, info or debug)");
	set_fails(&cfg, "log_level", "", "missing value");
	ck_assert_str_eq(cfg.log_level, "warn");
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_store_paths_and_unset_them_given_an_empty_value)
{
	struct config cfg;

	config_init(&cfg);
	set_ok(&cfg, "scripts_dir", "/var/lib/luapoold");
	ck_assert_str_eq(cfg.scripts_dir, "/var/lib/luapoold");
	set_ok(&cfg, "scripts_dir", "/srv/x");
	ck_assert_str_eq(cfg.scripts_dir, "/srv/x");
	set_ok(&cfg, "scripts_dir", "");
	ck_assert_ptr_null(cfg.scripts_dir);
	set_ok(&cfg, "worker_path", "build/luapool-worker");
	ck_assert_str_eq(cfg.worker_path, "build/luapool-worker");
	config_free(&cfg);
}
END_TEST

START_TEST(config_set_should_reject_unknown_keys)
{
	struct config cfg;

	config_init(&cfg);
	set_fails(&cfg, "wrokers", "4", "unknown key \"wrokers\"");
	set_fails(&cfg, "queue-depth", "4", "unknown key \"queue-depth\"");
	set_fails(&cfg, "config_file", "x", "unknown key \"config_file\"");
	set_fails(&cfg, "check_only", "1", "unknown key \"check_only\"");
	set_fails(&cfg, "", "1", "unknown key \"\"");
	config_free(&cfg);
}
END_TEST

/* The file ---------------------------------------------------------------- */

START_TEST(load_file_should_parse_every_type_with_comments_quotes_and_blanks)
{
	struct config cfg;
	struct capture c;
	char path[64];

	config_init(&cfg);
	ck_assert_int_eq(load_text(&cfg,
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "listen = [::1]:9000\n"
	    "  workers=3  \n"
	    "queue_depth\t=\t7 # trailing comment\n"
	    "max_body_bytes = 2M\n"
	    "max_result_bytes = \"512k\"\n"
	    "metrics_auth = yes\n"
	    "allow_bytecode = off\r\n"
	    "auth_token_file = \"/etc/with space/#token\"  # comment\n"
	    "scripts_dir = /srv/a#b\n"
	    "log_level = debug\n"
	    "http_threads = 2\n"
	    "    # indented comment\n"
	    "tls_cert_file = \"\"\n",
	    path, &c), 0);
	unlink(path);
	ck_assert_str_eq(c.text, "");
	ck_assert_str_eq(cfg.listen, "[::1]:9000");
	ck_assert_uint_eq(cfg.workers, 3);
	ck_assert_uint_eq(cfg.queue_depth, 7);
	ck_assert_uint_eq(cfg.max_body_bytes, 2 * 1024 * 1024);
	ck_assert_uint_eq(cfg.max_result_bytes, 512 * 1024);
	ck_assert_int_eq(cfg.metrics_auth, 1);
	ck_assert_int_eq(cfg.allow_bytecode, 0);
	ck_assert_str_eq(cfg.auth_token_file, "/etc/with space/#token");
	ck_assert_str_eq(cfg.scripts_dir, "/srv/a#b");
	ck_assert_str_eq(cfg.log_level, "debug");
	ck_assert_uint_eq(cfg.http_threads, 2);
	ck_assert_ptr_null(cfg.tls_cert_file);
	ck_assert_uint_eq(cfg.default_timeout_ms, 1000);	/* untouched */
	config_free(&cfg);
}
END_TEST

START_TEST(load_file_should_accept_an_empty_file)
{
	struct config cfg, defaults;
	struct capture c;
	char path[64];

	config_init(&cfg);
	config_init(&defaults);
	ck_assert_int_eq(load_text(&cfg, "", path, &c), 0);
	unlink(path);
	assert_same_config(&cfg, &defaults);
	config_free(&cfg);
	config_free(&defaults);
}
END_TEST

/* Loads text, expects failure and exactly "PATH:" + where_and_what + "\n". */
static void
assert_file_error(const char *text, const char *where_and_what)
{
	struct config cfg;
	struct capture c;
	char path[64], expected[512];

	config_init(&cfg);
	ck_assert_int_eq(load_text(&cfg, text, path, &c), -1);
	unlink(path);
	snprintf(expected, sizeof(expected), "%s:%s\n", path, where_and_what);
	ck_assert_str_eq(c.text, expected);
	config_free(&cfg);
}

START_TEST(load_file_should_report_file_and_line_of_an_unknown_key)
{
	assert_file_error("# comment\n\nworkers = 2\n\n\n\nwrokers = 4\n",
	    "7: unknown key \"wrokers\"");
	assert_file_error("queue-depth = 4\n",
	    "1: unknown key \"queue-depth\" (keys use '_': \"queue_depth\")");
}
END_TEST

START_TEST(load_file_should_report_file_and_line_of_a_bad_number)
{
	assert_file_error("listen = :1\nworkers = many\n",
	    "2: workers: not a number: \"many\"");
	assert_file_error("max_body_bytes = 8X\n", "1: max_body_bytes: not a "
	    "size: \"8X\" (bytes, or a number followed by k, M or G)");
	assert_file_error("queue_depth =\n", "1: queue_depth: missing value");
	assert_file_error("queue_depth = # none\n",
	    "1: queue_depth: missing value");
}
END_TEST

START_TEST(load_file_should_report_file_and_line_of_a_duplicate_key)
{
	assert_file_error("workers = 1\nlisten = :1\nworkers = 1\n",
	    "3: duplicate key \"workers\" (first set on line 1)");
}
END_TEST

START_TEST(load_file_should_report_file_and_line_of_a_missing_equals_sign)
{
	assert_file_error("workers = 1\nqueue_depth 8\n",
	    "2: missing '=' after \"queue_depth\"");
	assert_file_error("workers\n", "1: missing '=' after \"workers\"");
	assert_file_error("workers 4 # a = b\n",
	    "1: missing '=' after \"workers\"");
	assert_file_error("= 4\n", "1: expected \"key = value\"");
}
END_TEST

START_TEST(load_file_should_report_file_and_line_of_a_bad_quote)
{
	assert_file_error("\nscripts_dir = \"/srv\n",
	    "2: missing closing '\"'");
	assert_file_error("scripts_dir = \"/srv\" x\n",
	    "1: text after the closing '\"'");
}
END_TEST

START_TEST(load_file_should_report_a_file_that_cannot_be_opened)
{
	struct config cfg;
	struct capture c;
	int rc;

	config_init(&cfg);
	capture_start(&c, stderr);
	rc = config_load_file(&cfg, "/nonexistent/luapoold.conf");
	capture_end(&c);
	ck_assert_int_eq(rc, -1);
	ck_assert_str_eq(c.text,
	    "/nonexistent/luapoold.conf: No such file or directory\n");
	capture_start(&c, stderr);
	rc = config_load_file(&cfg, "/tmp");
	capture_end(&c);
	ck_assert_int_eq(rc, -1);
	ck_assert_str_eq(c.text, "/tmp: Is a directory\n");
	config_free(&cfg);
}
END_TEST

START_TEST(config_print_should_write_a_file_that_loads_back_the_same)
{
	struct config cfg, loaded;
	char path[64], err[256];
	FILE *f;
	int fd;

	config_init(&cfg);
	set_ok(&cfg, "listen", "[::1]:0");
	set_ok(&cfg, "max_body_bytes", "12345");
	set_ok(&cfg, "max_result_bytes", "3G");
	set_ok(&cfg, "auth_token_file", " spaced # path ");
	set_ok(&cfg, "scripts_dir", "/srv/scripts");
	set_ok(&cfg, "metrics_auth", "on");
	set_ok(&cfg, "log_level", "error");
	strcpy(path, "/tmp/test_config_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	f = fdopen(fd, "w");
	config_print(&cfg, f);
	fclose(f);
	config_init(&loaded);
	ck_assert_int_eq(config_load_file(&loaded, path), 0);
	unlink(path);
	assert_same_config(&loaded, &cfg);
	ck_assert_int_eq(config_validate(&loaded, err, sizeof(err)), -1);
	config_free(&cfg);
	config_free(&loaded);
}
END_TEST

/* The command line -------------------------------------------------------- */

START_TEST(no_options_should_keep_the_defaults_and_read_no_file)
{
	struct config cfg, defaults;

	config_init(&cfg);
	config_init(&defaults);
	ck_assert_int_eq(from_args(&cfg, (const char *const[]){ "luapoold",
	    NULL }), 0);
	assert_same_config(&cfg, &defaults);
	ck_assert_ptr_null(cfg.config_file);
	ck_assert_int_eq(cfg.check_only, 0);
	config_free(&cfg);
	config_free(&defaults);
}
END_TEST

START_TEST(every_spelling_of_the_config_option_should_load_the_file)
{
	struct config cfg;
	char path[64], joined[80], attached[80];

	write_temp_file(path, "workers = 5\n");
	snprintf(joined, sizeof(joined), "--config=%s", path);
	snprintf(attached, sizeof(attached), "-c%s", path);
	const char *const *spellings[] = {
		ARGS("-c", path), ARGS("--config", path), ARGS(joined),
		ARGS(attached),
	};
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		config_init(&cfg);
		ck_assert_int_eq(from_args(&cfg, spellings[i]), 0);
		ck_assert_uint_eq(cfg.workers, 5);
		ck_assert_str_eq(cfg.config_file, path);
		config_free(&cfg);
	}
	unlink(path);
}
END_TEST

START_TEST(options_should_override_the_file_whatever_their_order)
{
	struct config cfg;
	char path[64];

	write_temp_file(path, "workers = 5\nqueue_depth = 6\nlog_level = warn\n"
	    "allow_bytecode = yes\n");
	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS("--workers", "9", "-c", path,
	    "--allow-bytecode", "no")), 0);
	ck_assert_uint_eq(cfg.workers, 9);
	ck_assert_uint_eq(cfg.queue_depth, 6);
	ck_assert_str_eq(cfg.log_level, "warn");
	ck_assert_int_eq(cfg.allow_bytecode, 0);
	config_free(&cfg);

	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS("--log-level=debug", "--config",
	    path, "--queue-depth=1")), 0);
	ck_assert_uint_eq(cfg.workers, 5);
	ck_assert_uint_eq(cfg.queue_depth, 1);
	ck_assert_str_eq(cfg.log_level, "debug");
	config_free(&cfg);
	unlink(path);
}
END_TEST

START_TEST(the_last_of_repeated_options_should_win)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS("--workers", "1", "--workers=2")),
	    0);
	ck_assert_uint_eq(cfg.workers, 2);
	config_free(&cfg);
}
END_TEST

START_TEST(options_should_set_every_key)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS(
	    "--listen", ":9", "--workers=2", "--queue-depth", "3",
	    "--default-timeout-ms=4", "--max-timeout-ms", "5",
	    "--max-body-bytes=1k", "--memory-limit-mb", "6",
	    "--max-result-bytes=2k", "--max-json-depth", "7",
	    "--max-connections=8", "--connection-timeout-s", "9",
	    "--auth-token-file=/t", "--metrics-auth", "yes",
	    "--allow-bytecode=no", "--scripts-dir", "/s", "--max-scripts=10",
	    "--max-jobs-per-worker", "11", "--cache-entries=12",
	    "--log-level", "error", "--access-log=off", "--worker-path",
	    "/w", "--tls-cert-file=/c", "--tls-key-file", "/k",
	    "--http-threads=13")), 0);
	ck_assert_str_eq(cfg.listen, ":9");
	ck_assert_uint_eq(cfg.workers, 2);
	ck_assert_uint_eq(cfg.queue_depth, 3);
	ck_assert_uint_eq(cfg.default_timeout_ms, 4);
	ck_assert_uint_eq(cfg.max_timeout_ms, 5);
	ck_assert_uint_eq(cfg.max_body_bytes, 1024);
	ck_assert_uint_eq(cfg.memory_limit_mb, 6);
	ck_assert_uint_eq(cfg.max_result_bytes, 2048);
	ck_assert_uint_eq(cfg.max_json_depth, 7);
	ck_assert_uint_eq(cfg.max_connections, 8);
	ck_assert_uint_eq(cfg.connection_timeout_s, 9);
	ck_assert_str_eq(cfg.auth_token_file, "/t");
	ck_assert_int_eq(cfg.metrics_auth, 1);
	ck_assert_int_eq(cfg.allow_bytecode, 0);
	ck_assert_str_eq(cfg.scripts_dir, "/s");
	ck_assert_uint_eq(cfg.max_scripts, 10);
	ck_assert_uint_eq(cfg.max_jobs_per_worker, 11);
	ck_assert_uint_eq(cfg.cache_entries, 12);
	ck_assert_str_eq(cfg.log_level, "error");
	ck_assert_int_eq(cfg.access_log, 0);
	ck_assert_str_eq(cfg.worker_path, "/w");
	ck_assert_str_eq(cfg.tls_cert_file, "/c");
	ck_assert_str_eq(cfg.tls_key_file, "/k");
	ck_assert_uint_eq(cfg.http_threads, 13);
	config_free(&cfg);
}
END_TEST

START_TEST(an_option_value_may_look_like_an_option_or_contain_equals)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS("--scripts-dir", "--workers",
	    "--worker-path=/a=b")), 0);
	ck_assert_str_eq(cfg.scripts_dir, "--workers");
	ck_assert_str_eq(cfg.worker_path, "/a=b");
	ck_assert_uint_eq(cfg.workers, 0);
	ck_assert_int_eq(from_args(&cfg, ARGS("--scripts-dir=")), 0);
	ck_assert_ptr_null(cfg.scripts_dir);
	config_free(&cfg);
}
END_TEST

START_TEST(check_config_should_set_check_only_and_return_0)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS("--check-config",
	    "--workers", "2")), 0);
	ck_assert_int_eq(cfg.check_only, 1);
	ck_assert_uint_eq(cfg.workers, 2);
	config_free(&cfg);
}
END_TEST

START_TEST(help_should_list_every_option_with_its_default_and_return_1)
{
	struct config cfg;
	struct capture c;
	int rc;

	config_init(&cfg);
	capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("--workers", "x", "--help"));
	capture_end(&c);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strncmp(c.text, "usage: luapoold ", 16) == 0, "%s", c.text);
	ck_assert_ptr_nonnull(strstr(c.text, "--config FILE"));
	ck_assert_ptr_nonnull(strstr(c.text, "--check-config"));
	ck_assert_ptr_nonnull(strstr(c.text, "--version"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --listen ADDRESS  (default: 127.0.0.1:8080)\n"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --max-body-bytes SIZE  (default: 8M)\n"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --max-result-bytes SIZE  (default: 1M)\n"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --workers N  (default: 0)\n      worker processes; 0 starts "
	    "one per online CPU\n"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --allow-bytecode BOOL  (default: yes)\n"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --auth-token-file PATH  (default: unset)\n"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --worker-path PATH  (default: unset)\n"));
	ck_assert_ptr_nonnull(strstr(c.text,
	    "  --log-level LEVEL  (default: info)\n"));

	capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("-h"));
	capture_end(&c);
	ck_assert_int_eq(rc, 1);
	ck_assert_ptr_nonnull(strstr(c.text, "--http-threads N"));
	config_free(&cfg);
}
END_TEST

START_TEST(version_should_print_the_version_and_return_1)
{
	struct config cfg;
	struct capture c;
	int rc;

	config_init(&cfg);
	capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("--version"));
	capture_end(&c);
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(c.text, "luapoold 0.1.0\n");
	capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("-V"));
	capture_end(&c);
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(c.text, "luapoold 0.1.0\n");
	config_free(&cfg);
}
END_TEST

/* Expects from_args to fail with exactly `message` on stderr. */
static void
assert_args_error(const char *const *args, const char *message)
{
	struct config cfg;
	struct capture c;

	config_init(&cfg);
	ck_assert_int_eq(from_args_quiet(&cfg, args, &c), -1);
	ck_assert_str_eq(c.text, message);
	config_free(&cfg);
}

START_TEST(an_unknown_option_should_be_reported_by_name)
{
	assert_args_error(ARGS("--foo"), "luapoold: unknown option --foo\n");
	assert_args_error(ARGS("--foo=1"), "luapoold: unknown option --foo\n");
	assert_args_error(ARGS("-x"), "luapoold: unknown option -x\n");
	assert_args_error(ARGS("--"), "luapoold: unknown option --\n");
	assert_args_error(ARGS("--queue_depth", "1"), "luapoold: unknown "
	    "option --queue_depth (did you mean --queue-depth?)\n");
	assert_args_error(ARGS("--help=1"),
	    "luapoold: --help takes no value\n");
	assert_args_error(ARGS("stray"),
	    "luapoold: unexpected argument \"stray\"\n");
}
END_TEST

START_TEST(a_bad_option_value_should_name_the_option)
{
	assert_args_error(ARGS("--workers", "x"),
	    "luapoold: --workers: not a number: \"x\"\n");
	assert_args_error(ARGS("--max-body-bytes=8Q"), "luapoold: "
	    "--max-body-bytes: not a size: \"8Q\" (bytes, or a number "
	    "followed by k, M or G)\n");
	assert_args_error(ARGS("--workers="),
	    "luapoold: --workers: missing value\n");
}
END_TEST

START_TEST(an_option_without_its_value_should_be_reported)
{
	assert_args_error(ARGS("--workers"),
	    "luapoold: --workers: missing value\n");
	assert_args_error(ARGS("-c"), "luapoold: --config: missing value\n");
	assert_args_error(ARGS("--config"),
	    "luapoold: --config: missing value\n");
}
END_TEST

START_TEST(a_bad_file_should_fail_the_command_line_with_file_and_line)
{
	char path[64], expected[128];

	write_temp_file(path, "workers = 1\nwrokers = 2\n");
	snprintf(expected, sizeof(expected), "%s:2: unknown key \"wrokers\"\n",
	    path);
	assert_args_error(ARGS("--workers", "3", "-c", path), expected);
	unlink(path);
	assert_args_error(ARGS("-c", "/nonexistent.conf"),
	    "/nonexistent.conf: No such file or directory\n");
}
END_TEST

/* Validation -------------------------------------------------------------- */

/* Sets key = value over the defaults and expects validation to fail. */
static void
assert_invalid(const char *key, const char *value, const char *message)
{
	struct config cfg;
	char err[256] = "";

	config_init(&cfg);
	set_ok(&cfg, key, value);
	ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, message);
	config_free(&cfg);
}

START_TEST(validate_should_accept_the_defaults)
{
	struct config cfg;
	char err[256] = "";

	config_init(&cfg);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(&cfg);
}
END_TEST

START_TEST(validate_should_reject_limits_too_small_to_work)
{
	assert_invalid("default_timeout_ms", "60001", "default_timeout_ms "
	    "(60001) is larger than max_timeout_ms (60000)");
	assert_invalid("max_timeout_ms", "0",
	    "max_timeout_ms must be at least 1");
	assert_invalid("max_timeout_ms", "999", "default_timeout_ms (1000) is "
	    "larger than max_timeout_ms (999)");
	assert_invalid("default_timeout_ms", "0",
	    "default_timeout_ms must be at least 1");
	assert_invalid("queue_depth", "0", "queue_depth must be at least 1");
	assert_invalid("max_body_bytes", "63",
	    "max_body_bytes must be at least 64");
	assert_invalid("memory_limit_mb", "3",
	    "memory_limit_mb must be at least 4");
	assert_invalid("max_result_bytes", "15",
	    "max_result_bytes must be at least 16");
}
END_TEST

START_TEST(validate_should_accept_limits_at_their_minimum)
{
	struct config cfg;
	char err[256] = "";

	config_init(&cfg);
	set_ok(&cfg, "default_timeout_ms", "1");
	set_ok(&cfg, "max_timeout_ms", "1");
	set_ok(&cfg, "queue_depth", "1");
	set_ok(&cfg, "max_body_bytes", "64");
	set_ok(&cfg, "memory_limit_mb", "4");
	set_ok(&cfg, "max_result_bytes", "16");
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(&cfg);
}
END_TEST

START_TEST(validate_should_require_a_readable_non_empty_token_file)
{
	char path[64], message[256];
	struct config cfg;
	char err[256];

	assert_invalid("auth_token_file", "/nonexistent/token",
	    "auth_token_file \"/nonexistent/token\": No such file or directory");
	write_temp_file(path, " \n\t\n");
	snprintf(message, sizeof(message), "auth_token_file \"%s\" is empty",
	    path);
	assert_invalid("auth_token_file", path, message);
	unlink(path);
	assert_invalid("auth_token_file", "/tmp",
	    "auth_token_file \"/tmp\": Is a directory");

	write_temp_file(path, "s3cret\n");
	config_init(&cfg);
	set_ok(&cfg, "auth_token_file", path);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(&cfg);
	unlink(path);
}
END_TEST

START_TEST(validate_should_require_both_tls_files_or_neither)
{
	struct config cfg;
	char cert[64], key[64], err[256];

	assert_invalid("tls_cert_file", "/etc/hostname", "tls_cert_file and "
	    "tls_key_file go together: set both or neither");
	assert_invalid("tls_key_file", "/etc/hostname", "tls_cert_file and "
	    "tls_key_file go together: set both or neither");

	write_temp_file(cert, "cert\n");
	write_temp_file(key, "key\n");
	config_init(&cfg);
	set_ok(&cfg, "tls_cert_file", cert);
	set_ok(&cfg, "tls_key_file", "/nonexistent/key.pem");
	ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "tls_key_file \"/nonexistent/key.pem\": No such "
	    "file or directory");
	set_ok(&cfg, "tls_key_file", key);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(&cfg);
	unlink(cert);
	unlink(key);
}
END_TEST

START_TEST(validate_should_require_scripts_dir_to_be_an_existing_directory)
{
	struct config cfg;
	char path[64], message[256], err[256];

	assert_invalid("scripts_dir", "/nonexistent/scripts", "scripts_dir "
	    "\"/nonexistent/scripts\": No such file or directory");
	write_temp_file(path, "x");
	snprintf(message, sizeof(message), "scripts_dir \"%s\" is not a "
	    "directory", path);
	assert_invalid("scripts_dir", path, message);
	unlink(path);

	config_init(&cfg);
	set_ok(&cfg, "scripts_dir", "/tmp");
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(&cfg);
}
END_TEST

START_TEST(validate_should_reject_a_listen_or_log_level_set_by_hand)
{
	struct config cfg;
	char err[256];

	config_init(&cfg);
	free(cfg.listen);
	cfg.listen = NULL;
	ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: missing value");
	cfg.listen = strdup("nope");
	ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: not an address: \"nope\" (host:port, "
	    "[v6]:port or :port)");
	free(cfg.listen);
	cfg.listen = strdup(":80");
	free(cfg.log_level);
	cfg.log_level = strdup("loud");
	ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "log_level: not a log level: \"loud\"");
	config_free(&cfg);
}
END_TEST

/* The shipped file -------------------------------------------------------- */

START_TEST(the_shipped_config_should_load_cleanly_and_give_exactly_the_defaults)
{
	struct config cfg, defaults;
	struct capture c;
	char err[256] = "";
	int rc;

	config_init(&cfg);
	config_init(&defaults);
	capture_start(&c, stderr);
	rc = from_args(&cfg, ARGS("-c", SHIPPED_CONF));
	capture_end(&c);
	ck_assert_msg(rc == 0, "%s", c.text);
	ck_assert_str_eq(c.text, "");
	assert_same_config(&cfg, &defaults);
	ck_assert_str_eq(cfg.listen, "127.0.0.1:8080");
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(&cfg);
	config_free(&defaults);
}
END_TEST

/* Keys named by --help, in its order, as underscored names. */
static size_t
keys_from_help(char names[][64], size_t max)
{
	struct capture c;
	const char *line;
	size_t n = 0;

	capture_start(&c, stdout);
	config_print_usage("luapoold");
	capture_end(&c);
	for (line = c.text; line != NULL && *line != '\0'; ) {
		size_t len = 0;
		if (strncmp(line, "  --", 4) == 0 &&
		    strncmp(line, "  --check-config", 16) != 0) {
			for (const char *p = line + 4; *p != ' ' && *p != '\n' &&
			    len + 1 < 64; p++)
				names[n][len++] = *p == '-' ? '_' : *p;
			names[n][len] = '\0';
			ck_assert_uint_lt(++n, max);
		}
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return n;
}

/* Keys set or shown commented out ("# key = ...") in the shipped file. */
static size_t
keys_from_shipped_file(char names[][64], size_t max)
{
	char line[1024];
	size_t n = 0;
	FILE *f = fopen(SHIPPED_CONF, "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = strncmp(line, "# ", 2) == 0 ? line + 2 : line;
		size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
		if (len == 0 || len >= 64 || strncmp(p + len, " = ", 3) != 0)
			continue;
		memcpy(names[n], p, len);
		names[n][len] = '\0';
		ck_assert_uint_lt(++n, max);
	}
	fclose(f);
	return n;
}

START_TEST(the_shipped_config_should_show_every_key_in_table_order)
{
	static char from_help[64][64], from_file[64][64];
	size_t help_count = keys_from_help(from_help, 64);
	size_t file_count = keys_from_shipped_file(from_file, 64);

	ck_assert_uint_eq(help_count, 24);
	ck_assert_uint_eq(file_count, help_count);
	for (size_t i = 0; i < help_count; i++)
		ck_assert_str_eq(from_file[i], from_help[i]);
	ck_assert_str_eq(from_help[0], "listen");
	ck_assert_str_eq(from_help[23], "http_threads");
}
END_TEST

/* Suite ------------------------------------------------------------------- */

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *defaults = tcase_create("defaults");
	TCase *values = tcase_create("values");
	TCase *file = tcase_create("file");
	TCase *args = tcase_create("command line");
	TCase *validate = tcase_create("validate");
	TCase *shipped = tcase_create("shipped file");

	tcase_add_test(defaults, config_init_should_fill_the_documented_defaults);
	tcase_add_test(defaults,
	    config_free_should_release_every_string_and_be_safe_to_repeat);
	suite_add_tcase(s, defaults);

	tcase_add_test(values,
	    config_set_should_parse_unsigned_integers_up_to_uint_max);
	tcase_add_test(values,
	    config_set_should_reject_negative_overflowing_and_malformed_numbers);
	tcase_add_test(values,
	    config_set_should_read_sizes_in_bytes_and_with_k_m_g_suffixes);
	tcase_add_test(values,
	    config_set_should_reject_malformed_and_overflowing_sizes);
	tcase_add_test(values, config_set_should_accept_every_boolean_spelling);
	tcase_add_test(values,
	    config_set_should_accept_listen_as_host_port_bracketed_v6_or_port);
	tcase_add_test(values,
	    config_set_should_reject_malformed_listen_addresses);
	tcase_add_test(values, config_parse_listen_should_split_host_and_port);
	tcase_add_test(values, config_set_should_accept_only_known_log_levels);
	tcase_add_test(values,
	    config_set_should_store_paths_and_unset_them_given_an_empty_value);
	tcase_add_test(values, config_set_should_reject_unknown_keys);
	suite_add_tcase(s, values);

	tcase_add_test(file,
	    load_file_should_parse_every_type_with_comments_quotes_and_blanks);
	tcase_add_test(file, load_file_should_accept_an_empty_file);
	tcase_add_test(file,
	    load_file_should_report_file_and_line_of_an_unknown_key);
	tcase_add_test(file, load_file_should_report_file_and_line_of_a_bad_number);
	tcase_add_test(file,
	    load_file_should_report_file_and_line_of_a_duplicate_key);
	tcase_add_test(file,
	    load_file_should_report_file_and_line_of_a_missing_equals_sign);
	tcase_add_test(file, load_file_should_report_file_and_line_of_a_bad_quote);
	tcase_add_test(file, load_file_should_report_a_file_that_cannot_be_opened);
	tcase_add_test(file,
	    config_print_should_write_a_file_that_loads_back_the_same);
	suite_add_tcase(s, file);

	tcase_add_test(args, no_options_should_keep_the_defaults_and_read_no_file);
	tcase_add_test(args,
	    every_spelling_of_the_config_option_should_load_the_file);
	tcase_add_test(args, options_should_override_the_file_whatever_their_order);
	tcase_add_test(args, the_last_of_repeated_options_should_win);
	tcase_add_test(args, options_should_set_every_key);
	tcase_add_test(args,
	    an_option_value_may_look_like_an_option_or_contain_equals);
	tcase_add_test(args, check_config_should_set_check_only_and_return_0);
	tcase_add_test(args,
	    help_should_list_every_option_with_its_default_and_return_1);
	tcase_add_test(args, version_should_print_the_version_and_return_1);
	tcase_add_test(args, an_unknown_option_should_be_reported_by_name);
	tcase_add_test(args, a_bad_option_value_should_name_the_option);
	tcase_add_test(args, an_option_without_its_value_should_be_reported);
	tcase_add_test(args,
	    a_bad_file_should_fail_the_command_line_with_file_and_line);
	suite_add_tcase(s, args);

	tcase_add_test(validate, validate_should_accept_the_defaults);
	tcase_add_test(validate, validate_should_reject_limits_too_small_to_work);
	tcase_add_test(validate, validate_should_accept_limits_at_their_minimum);
	tcase_add_test(validate,
	    validate_should_require_a_readable_non_empty_token_file);
	tcase_add_test(validate, validate_should_require_both_tls_files_or_neither);
	tcase_add_test(validate,
	    validate_should_require_scripts_dir_to_be_an_existing_directory);
	tcase_add_test(validate,
	    validate_should_reject_a_listen_or_log_level_set_by_hand);
	suite_add_tcase(s, validate);

	tcase_add_test(shipped,
	    the_shipped_config_should_load_cleanly_and_give_exactly_the_defaults);
	tcase_add_test(shipped,
	    the_shipped_config_should_show_every_key_in_table_order);
	suite_add_tcase(s, shipped);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(config_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
