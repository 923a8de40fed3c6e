/*
 * test_config_args.c - the command line: -c/--config, its precedence over
 * the file, every key as an option, --check-config, --help, --version and
 * their errors; and the shipped conf/luapoold.conf against --help.  Run
 * from the repository root (the shipped file is read as
 * conf/luapoold.conf).  Temporary files go to /tmp and are removed by the
 * test that made them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "support/config_support.h"

#define SHIPPED_CONF "conf/luapoold.conf"

/* Helpers ----------------------------------------------------------------- */

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
from_args_quiet(struct config *cfg, const char *const *args,
    struct config_support_capture *c)
{
	int rc;

	config_support_capture_start(c, stderr);
	rc = from_args(cfg, args);
	config_support_capture_end(c);
	return rc;
}

/* The command line -------------------------------------------------------- */

START_TEST(no_options_should_keep_the_defaults_and_read_no_file)
{
	struct config cfg, defaults;

	config_init(&cfg);
	config_init(&defaults);
	ck_assert_int_eq(from_args(&cfg, (const char *const[]){ "luapoold",
	    NULL }), 0);
	config_support_assert_same_config(&cfg, &defaults);
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

	config_support_write_temp_file(path, "workers = 5\n");
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

	config_support_write_temp_file(path, "workers = 5\nqueue_depth = 6\n"
	    "log_level = warn\nallow_bytecode = yes\n");
	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS("--workers", "9", "-c", path,
	    "--allow-bytecode", "no")), 0);
	ck_assert_uint_eq(cfg.workers, 9);
	ck_assert_uint_eq(cfg.queue_depth, 6);
	ck_assert_str_eq(cfg.log_level, "warn");
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_OFF);
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
	    "--request-read-timeout-s=14", "--max-connections-per-ip", "15",
	    "--max-inflight-bytes=1M", "--log-format", "json",
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
	ck_assert_uint_eq(cfg.request_read_timeout_s, 14);
	ck_assert_uint_eq(cfg.max_connections_per_ip, 15);
	ck_assert_uint_eq(cfg.max_inflight_bytes, 1024 * 1024);
	ck_assert_int_eq(cfg.log_format, CONFIG_LOG_JSON);
	ck_assert_str_eq(cfg.auth_token_file, "/t");
	ck_assert_int_eq(cfg.metrics_auth, 1);
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_OFF);
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

/* Each refused setting names the key at fault. */
static void
assert_refused(const struct config *cfg, const char *key)
{
	char err[256] = "";

	ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, key) != NULL, "%s: %s", key, err);
}

START_TEST(the_front_options_should_be_set_and_their_bounds_checked)
{
	struct config cfg;
	char err[256] = "", cert[64], key[64];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned per_cpu = cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus;

	config_init(&cfg);
	ck_assert_int_eq(cfg.fronts, 1);
	ck_assert_uint_eq(cfg.front_workers, 0);
	ck_assert_uint_eq(cfg.fast_lane_ms, 10);
	ck_assert_ptr_null(cfg.front_path);
	/* Fronts are the default, one per online CPU as workers = 0. */
	ck_assert_uint_eq(config_front_count(&cfg), per_cpu);
	ck_assert_ptr_null(config_fronts_off_reason(&cfg));
	ck_assert_int_eq(from_args(&cfg, ARGS("--front-workers", "64",
	    "--fast-lane-ms=1000", "--front-path", "/nonexistent/luapool-front")), 0);
	ck_assert_uint_eq(cfg.front_workers, 64);
	ck_assert_uint_eq(config_front_count(&cfg), 64);
	ck_assert_uint_eq(cfg.fast_lane_ms, 1000);
	ck_assert_str_eq(cfg.front_path, "/nonexistent/luapool-front");
	assert_refused(&cfg, "front_path");
	ck_assert_int_eq(from_args(&cfg, ARGS("--front-path=")), 0);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(from_args(&cfg, ARGS("--front-workers", "65")), 0);
	assert_refused(&cfg, "front_workers");
	ck_assert_int_eq(from_args(&cfg, ARGS("--front-workers", "2",
	    "--fast-lane-ms", "0")), 0);
	assert_refused(&cfg, "fast_lane_ms");
	ck_assert_uint_eq(config_front_count(&cfg), 2);
	ck_assert_int_eq(from_args(&cfg, ARGS("--fast-lane-ms", "1001")), 0);
	assert_refused(&cfg, "fast_lane_ms");
	/* http_threads > 0 and TLS are not refused: they start no fronts. */
	ck_assert_int_eq(from_args(&cfg, ARGS("--fast-lane-ms", "1",
	    "--http-threads", "2")), 0);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(config_front_count(&cfg), 0);
	ck_assert_str_eq(config_fronts_off_reason(&cfg), "http_threads > 0");
	config_support_write_temp_file(cert, "cert\n");
	config_support_write_temp_file(key, "key\n");
	ck_assert_int_eq(from_args(&cfg, ARGS("--http-threads", "0",
	    "--tls-cert-file", cert, "--tls-key-file", key)), 0);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(config_front_count(&cfg), 0);
	ck_assert_str_eq(config_fronts_off_reason(&cfg),
	    "TLS is served by the supervisor");
	unlink(cert);
	unlink(key);
	ck_assert_int_eq(from_args(&cfg, ARGS("--tls-cert-file=",
	    "--tls-key-file=")), 0);
	ck_assert_uint_eq(config_front_count(&cfg), 2);
	/* fronts = no is the operator's choice: no count, no reason to log. */
	ck_assert_int_eq(from_args(&cfg, ARGS("--fronts", "no")), 0);
	ck_assert_int_eq(cfg.fronts, 0);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(config_front_count(&cfg), 0);
	ck_assert_ptr_null(config_fronts_off_reason(&cfg));
	ck_assert_int_eq(from_args(&cfg, ARGS("--fronts=yes", "--front-workers", "3")), 0);
	ck_assert_uint_eq(config_front_count(&cfg), 3);
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
	struct config_support_capture c;
	int rc;

	config_init(&cfg);
	config_support_capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("--workers", "x", "--help"));
	config_support_capture_end(&c);
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

	config_support_capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("-h"));
	config_support_capture_end(&c);
	ck_assert_int_eq(rc, 1);
	ck_assert_ptr_nonnull(strstr(c.text, "--http-threads N"));
	config_free(&cfg);
}
END_TEST

START_TEST(version_should_print_the_version_and_return_1)
{
	struct config cfg;
	struct config_support_capture c;
	int rc;

	config_init(&cfg);
	config_support_capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("--version"));
	config_support_capture_end(&c);
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(c.text, "luapoold 0.1.0\n");
	config_support_capture_start(&c, stdout);
	rc = from_args(&cfg, ARGS("-V"));
	config_support_capture_end(&c);
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
	struct config_support_capture c;

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

	config_support_write_temp_file(path, "workers = 1\nwrokers = 2\n");
	snprintf(expected, sizeof(expected), "%s:2: unknown key \"wrokers\"\n",
	    path);
	assert_args_error(ARGS("--workers", "3", "-c", path), expected);
	unlink(path);
	assert_args_error(ARGS("-c", "/nonexistent.conf"),
	    "/nonexistent.conf: No such file or directory\n");
}
END_TEST

/* The shipped file -------------------------------------------------------- */

START_TEST(the_shipped_config_should_load_cleanly_and_give_exactly_the_defaults)
{
	struct config cfg, defaults;
	struct config_support_capture c;
	char err[256] = "";
	int rc;

	config_init(&cfg);
	config_init(&defaults);
	config_support_capture_start(&c, stderr);
	rc = from_args(&cfg, ARGS("-c", SHIPPED_CONF));
	config_support_capture_end(&c);
	ck_assert_msg(rc == 0, "%s", c.text);
	ck_assert_str_eq(c.text, "");
	config_support_assert_same_config(&cfg, &defaults);
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
	struct config_support_capture c;
	const char *line;
	size_t n = 0;

	config_support_capture_start(&c, stdout);
	config_print_usage("luapoold");
	config_support_capture_end(&c);
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

	ck_assert_uint_eq(help_count, 38);
	ck_assert_uint_eq(file_count, help_count);
	for (size_t i = 0; i < help_count; i++)
		ck_assert_str_eq(from_file[i], from_help[i]);
	ck_assert_str_eq(from_help[0], "listen");
	ck_assert_str_eq(from_help[help_count - 1], "http_threads");
}
END_TEST

/* Suite ------------------------------------------------------------------- */

static Suite *
config_args_suite(void)
{
	Suite *s = suite_create("config command line");
	TCase *args = tcase_create("command line");
	TCase *shipped = tcase_create("shipped file");

	tcase_add_test(args, no_options_should_keep_the_defaults_and_read_no_file);
	tcase_add_test(args,
	    every_spelling_of_the_config_option_should_load_the_file);
	tcase_add_test(args, options_should_override_the_file_whatever_their_order);
	tcase_add_test(args, the_last_of_repeated_options_should_win);
	tcase_add_test(args, options_should_set_every_key);
	tcase_add_test(args,
	    an_option_value_may_look_like_an_option_or_contain_equals);
	tcase_add_test(args, the_front_options_should_be_set_and_their_bounds_checked);
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
	SRunner *runner = srunner_create(config_args_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
