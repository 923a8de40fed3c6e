/*
 * test_config_file.c - the configuration file: every value type with
 * comments, quotes and blanks, the "path:line: message" errors, and
 * config_print writing a file that loads back the same.  Temporary files go
 * to /tmp and are removed by the test that made them.
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

/* Loads text as a file; returns what config_load_file returned and leaves
 * its stderr in c->text. */
static int
load_text(struct config *cfg, const char *text, char *path,
    struct config_support_capture *c)
{
	int rc;

	config_support_write_temp_file(path, text);
	config_support_capture_start(c, stderr);
	rc = config_load_file(cfg, path);
	config_support_capture_end(c);
	return rc;
}

/* The file ---------------------------------------------------------------- */

START_TEST(load_file_should_parse_every_type_with_comments_quotes_and_blanks)
{
	struct config cfg;
	struct config_support_capture c;
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
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_OFF);
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
	struct config_support_capture c;
	char path[64];

	config_init(&cfg);
	config_init(&defaults);
	ck_assert_int_eq(load_text(&cfg, "", path, &c), 0);
	unlink(path);
	config_support_assert_same_config(&cfg, &defaults);
	config_free(&cfg);
	config_free(&defaults);
}
END_TEST

/* Loads text, expects failure and exactly "PATH:" + where_and_what + "\n". */
static void
assert_file_error(const char *text, const char *where_and_what)
{
	struct config cfg;
	struct config_support_capture c;
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
	struct config_support_capture c;
	int rc;

	config_init(&cfg);
	config_support_capture_start(&c, stderr);
	rc = config_load_file(&cfg, "/nonexistent/luapoold.conf");
	config_support_capture_end(&c);
	ck_assert_int_eq(rc, -1);
	ck_assert_str_eq(c.text,
	    "/nonexistent/luapoold.conf: No such file or directory\n");
	config_support_capture_start(&c, stderr);
	rc = config_load_file(&cfg, "/tmp");
	config_support_capture_end(&c);
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
	config_support_set_ok(&cfg, "listen", "[::1]:0");
	config_support_set_ok(&cfg, "max_body_bytes", "12345");
	config_support_set_ok(&cfg, "max_result_bytes", "3G");
	config_support_set_ok(&cfg, "auth_token_file", " spaced # path ");
	config_support_set_ok(&cfg, "scripts_dir", "/srv/scripts");
	config_support_set_ok(&cfg, "metrics_auth", "on");
	config_support_set_ok(&cfg, "log_level", "error");
	strcpy(path, "/tmp/test_config_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	f = fdopen(fd, "w");
	config_print(&cfg, f);
	fclose(f);
	config_init(&loaded);
	ck_assert_int_eq(config_load_file(&loaded, path), 0);
	unlink(path);
	config_support_assert_same_config(&loaded, &cfg);
	ck_assert_int_eq(config_validate(&loaded, err, sizeof(err)), -1);
	config_free(&cfg);
	config_free(&loaded);
}
END_TEST

/* Suite ------------------------------------------------------------------- */

static Suite *
config_file_suite(void)
{
	Suite *s = suite_create("config file");
	TCase *file = tcase_create("file");

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
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(config_file_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
