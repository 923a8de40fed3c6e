/*
 * test_config.c - the configuration's keys: defaults, every value type
 * through config_set, and validation.  The file format is test_config_file,
 * the command line and the shipped file test_config_args.  Temporary files
 * go to /tmp and are removed by the test that made them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "support/config_support.h"

/* Helpers ----------------------------------------------------------------- */

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
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_VERIFIED);
	ck_assert_ptr_null(cfg.scripts_dir);
	ck_assert_uint_eq(cfg.max_scripts, 1024);
	ck_assert_uint_eq(cfg.max_jobs_per_worker, 100000);
	ck_assert_uint_eq(cfg.cache_entries, 256);
	ck_assert_str_eq(cfg.log_level, "info");
	ck_assert_int_eq(cfg.access_log, 1);
	ck_assert_ptr_null(cfg.worker_path);
	ck_assert_str_eq(cfg.worker_user, "nobody");
	ck_assert_int_eq(cfg.fronts, 1);
	ck_assert_uint_eq(cfg.front_workers, 0);
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
	config_support_set_ok(&cfg, "auth_token_file", "/a");
	config_support_set_ok(&cfg, "scripts_dir", "/b");
	config_support_set_ok(&cfg, "worker_path", "/c");
	config_support_set_ok(&cfg, "tls_cert_file", "/d");
	config_support_set_ok(&cfg, "tls_key_file", "/e");
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
	config_support_set_ok(&cfg, "workers", "0");
	ck_assert_uint_eq(cfg.workers, 0);
	config_support_set_ok(&cfg, "workers", "16");
	ck_assert_uint_eq(cfg.workers, 16);
	config_support_set_ok(&cfg, "queue_depth", "4294967295");
	ck_assert_uint_eq(cfg.queue_depth, 4294967295u);
	config_support_set_ok(&cfg, "max_timeout_ms", "007");
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
		config_support_set_ok(&cfg, "max_body_bytes", cases[i].text);
		ck_assert_uint_eq(cfg.max_body_bytes, cases[i].bytes);
	}
	config_support_set_ok(&cfg, "max_result_bytes", "64k");
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
		config_support_set_ok(&cfg, "metrics_auth", yes[i]);
		ck_assert_int_eq(cfg.metrics_auth, 1);
		cfg.metrics_auth = 1;
		config_support_set_ok(&cfg, "metrics_auth", no[i]);
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
		config_support_set_ok(&cfg, "listen", good[i]);
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
		"999.1.1.1:80", "1.2.3:80", "1.2.3.4.5:80",
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
		config_support_set_ok(&cfg, "log_level", levels[i]);
		ck_assert_str_eq(cfg.log_level, levels[i]);
	}
	config_support_set_ok(&cfg, "log_level", "WARN");
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
	config_support_set_ok(&cfg, "scripts_dir", "/var/lib/luapoold");
	ck_assert_str_eq(cfg.scripts_dir, "/var/lib/luapoold");
	config_support_set_ok(&cfg, "scripts_dir", "/srv/x");
	ck_assert_str_eq(cfg.scripts_dir, "/srv/x");
	config_support_set_ok(&cfg, "scripts_dir", "");
	ck_assert_ptr_null(cfg.scripts_dir);
	config_support_set_ok(&cfg, "worker_path", "build/luapool-worker");
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

/* Validation -------------------------------------------------------------- */

/* Sets key = value over the defaults and expects validation to fail. */
static void
assert_invalid(const char *key, const char *value, const char *message)
{
	struct config cfg;
	char err[256] = "";

	config_init(&cfg);
	config_support_set_ok(&cfg, key, value);
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
	config_support_set_ok(&cfg, "default_timeout_ms", "1");
	config_support_set_ok(&cfg, "max_timeout_ms", "1");
	config_support_set_ok(&cfg, "queue_depth", "1");
	config_support_set_ok(&cfg, "max_body_bytes", "64");
	config_support_set_ok(&cfg, "memory_limit_mb", "4");
	config_support_set_ok(&cfg, "max_result_bytes", "16");
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
	config_support_write_temp_file(path, " \n\t\n");
	snprintf(message, sizeof(message), "auth_token_file \"%s\" is empty",
	    path);
	assert_invalid("auth_token_file", path, message);
	unlink(path);
	assert_invalid("auth_token_file", "/tmp",
	    "auth_token_file \"/tmp\": Is a directory");

	config_support_write_temp_file(path, "s3cret\n");
	config_init(&cfg);
	config_support_set_ok(&cfg, "auth_token_file", path);
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

	config_support_write_temp_file(cert, "cert\n");
	config_support_write_temp_file(key, "key\n");
	config_init(&cfg);
	config_support_set_ok(&cfg, "tls_cert_file", cert);
	config_support_set_ok(&cfg, "tls_key_file", "/nonexistent/key.pem");
	ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "tls_key_file \"/nonexistent/key.pem\": No such "
	    "file or directory");
	config_support_set_ok(&cfg, "tls_key_file", key);
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
	config_support_write_temp_file(path, "x");
	snprintf(message, sizeof(message), "scripts_dir \"%s\" is not a "
	    "directory", path);
	assert_invalid("scripts_dir", path, message);
	unlink(path);

	config_init(&cfg);
	config_support_set_ok(&cfg, "scripts_dir", "/tmp");
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

/* Suite ------------------------------------------------------------------- */

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *defaults = tcase_create("defaults");
	TCase *values = tcase_create("values");
	TCase *validate = tcase_create("validate");

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
