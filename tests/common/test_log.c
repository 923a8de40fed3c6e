/*
 * test_log.c - the log's escaping (log_escape) and lines as written: text
 * from outside never starts a line of its own, never carries terminal
 * escapes, and stays valid UTF-8 (and valid JSON in the json format).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static void
expect_escaped(const char *in, size_t len, int json, const char *want)
{
	char out[256];
	size_t n = log_escape(out, sizeof(out), in, len, json);
	ck_assert_msg(strcmp(out, want) == 0, "escaped to \"%s\", want \"%s\"", out, want);
	ck_assert_uint_eq(n, strlen(want));
}

START_TEST(control_bytes_and_backslashes_should_be_escaped)
{
	expect_escaped("a\nb\tc\x1b[31m\\", 11, 0, "a\\x0ab\\x09c\\x1b[31m\\\\");
	expect_escaped("q\"\n", 3, 1, "q\\\"\\u000a");
	expect_escaped("nul\0byte", 8, 0, "nul\\x00byte");
}
END_TEST

START_TEST(valid_utf8_should_pass_and_invalid_bytes_should_be_escaped)
{
	expect_escaped("caf\xc3\xa9 \xe2\x82\xac", 9, 0, "caf\xc3\xa9 \xe2\x82\xac");
	expect_escaped("\xff\xc3(\xed\xa0\x80", 6, 0, "\\xff\\xc3(\\xed\\xa0\\x80");
	expect_escaped("\xe2\x82", 2, 0, "\\xe2\\x82");
}
END_TEST

START_TEST(a_full_buffer_should_stop_on_a_character_boundary)
{
	char out[6];
	size_t n = log_escape(out, sizeof(out), "ab\xc3\xa9\xc3\xa9", 6, 0);
	ck_assert_str_eq(out, "ab\xc3\xa9");
	ck_assert_uint_eq(n, 4);
	n = log_escape(out, sizeof(out), "abcd\n", 5, 0);
	ck_assert_str_eq(out, "abcd");
}
END_TEST

/* What log_message writes to stderr, captured through a pipe. */
static char *
logged_line(enum log_format format, const char *message)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	int saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	log_set_format(format);
	log_message(LOG_WARN, "tester", "got %s", message);
	log_set_format(LOG_FORMAT_TEXT);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	static char line[4096];
	ssize_t n = read(fds[0], line, sizeof(line) - 1);
	close(fds[0]);
	line[n > 0 ? n : 0] = '\0';
	return line;
}

START_TEST(a_forged_line_should_stay_inside_its_own_line)
{
	char *line = logged_line(LOG_FORMAT_TEXT, "x\nluapoold[1]: error: forged");
	ck_assert_ptr_nonnull(strstr(line, "warn: tester: got x\\x0aluapoold[1]: error: forged\n"));
	ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
}
END_TEST

START_TEST(the_json_format_should_write_one_object_per_line)
{
	char *line = logged_line(LOG_FORMAT_JSON, "a \"quoted\"\n\xff thing");
	ck_assert_msg(line[0] == '{' && strstr(line, "\"level\":\"warn\"") &&
	    strstr(line, "\"func\":\"tester\"") &&
	    strstr(line, "\"message\":\"got a \\\"quoted\\\"\\u000a\\u00ff thing\"}\n"),
	    "line: %s", line);
	enum log_format f;
	ck_assert_int_eq(log_parse_format("json", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert_int_eq(log_parse_format("xml", &f), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("escape");
	tcase_add_test(tc, control_bytes_and_backslashes_should_be_escaped);
	tcase_add_test(tc, valid_utf8_should_pass_and_invalid_bytes_should_be_escaped);
	tcase_add_test(tc, a_full_buffer_should_stop_on_a_character_boundary);
	tcase_add_test(tc, a_forged_line_should_stay_inside_its_own_line);
	tcase_add_test(tc, the_json_format_should_write_one_object_per_line);
	suite_add_tcase(s, tc);
	SRunner *runner = srunner_create(s);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
