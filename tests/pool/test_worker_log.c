/*
 * test_worker_log.c - what a worker (or a front) writes on its stderr, as the
 * supervisor logs it (src/pool/worker_log.c): the level a line may claim,
 * one log line per worker line whatever bytes it holds (escaped by log.c),
 * the length cut and the rate limit.  The supervisor's stderr is captured
 * in a temporary file for the duration of each read.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "pool/worker_log.h"

#define PID 4242

/* Feeds `len` bytes to a worker_log fresh from `reset` as process PID's
 * stderr, until its end, and returns what the supervisor logged (caller
 * frees). */
static char *
log_of_output(void (*reset)(struct worker_log *), const char *bytes, size_t len)
{
	int pipe_fds[2];
	char path[] = "/tmp/test_worker_log-XXXXXX";
	int capture = mkstemp(path);
	ck_assert_int_ne(capture, -1);
	unlink(path);
	ck_assert_int_eq(pipe(pipe_fds), 0);
	ck_assert_int_eq(write(pipe_fds[1], bytes, len), (ssize_t)len);
	close(pipe_fds[1]);

	int saved_stderr = dup(STDERR_FILENO);
	dup2(capture, STDERR_FILENO);
	struct worker_log log;
	reset(&log);
	while (worker_log_read(&log, pipe_fds[0], PID, 1000) == 1)
		;
	worker_log_finish(&log, PID);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(pipe_fds[0]);

	off_t size = lseek(capture, 0, SEEK_END);
	char *text = calloc(1, (size_t)size + 1);
	ck_assert_int_eq(pread(capture, text, (size_t)size, 0), size);
	close(capture);
	return text;
}

static char *
log_of_worker_output(const char *bytes, size_t len)
{
	return log_of_output(worker_log_reset, bytes, len);
}

static int
count_lines(const char *text)
{
	int n = 0;
	for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	return n;
}

/* Levels ------------------------------------------------------------------ */

START_TEST(a_line_with_the_workers_own_prefix_should_keep_its_level)
{
	const char line[] = "luapool-worker[4242]: debug: main: hello";
	size_t skip;
	ck_assert_int_eq(worker_log_claimed_level(line, strlen(line), PID, &skip), LOG_DEBUG);
	ck_assert_str_eq(line + skip, "main: hello");
}
END_TEST

START_TEST(a_line_with_another_pid_or_no_level_should_be_a_warning)
{
	const char *const lines[] = {
		"luapool-worker[4243]: info: main: not mine",
		"luapool-worker[4242]: notice: main: no such level",
		"luapoold[1]: error: main: forged",
		"luapool-worker[4242]: info",
		"",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t skip = 99;
		ck_assert_int_eq(worker_log_claimed_level(lines[i], strlen(lines[i]), PID, &skip),
		    LOG_WARN);
		ck_assert_uint_eq(skip, 0);
	}
}
END_TEST

START_TEST(a_fronts_lines_should_be_named_front_and_keep_only_their_own_level)
{
	const char out[] = "luapool-front[4242]: debug: enter_sandbox: sandboxed\n"
	    "luapool-worker[4242]: error: main: not a front's prefix\n";
	char *text = log_of_output(worker_log_reset_front, out, sizeof(out) - 1);
	ck_assert_int_eq(count_lines(text), 2);
	ck_assert_msg(strstr(text, ": debug: emit_line: front 4242: enter_sandbox: sandboxed\n") !=
	    NULL, "%s", text);
	ck_assert_msg(strstr(text, ": warn: emit_line: front 4242: luapool-worker[4242]: error: "
	    "main: not a front's prefix\n") != NULL, "%s", text);
	free(text);
}
END_TEST

/* Reading ------------------------------------------------------------------ */

START_TEST(embedded_control_bytes_should_not_start_a_log_line_of_their_own)
{
	const char out[] = "luapool-worker[4242]: info: f: one\rluapoold[1]: error: main: "
	    "forged\x1b[2K\t\\\xff\nluapoold[1]: error: main: forged too\0after NUL\n";
	char *text = log_of_worker_output(out, sizeof(out) - 1);
	ck_assert_int_eq(count_lines(text), 3);
	ck_assert_msg(strstr(text, ": info: ") != NULL && strstr(text, "worker 4242: f: "
	    "one\\x0dluapoold[1]: error: main: forged\\x1b[2K\\x09\\\\\\xff\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, ": warn: ") != NULL &&
	    strstr(text, "worker 4242: luapoold[1]: error: main: forged too\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "worker 4242: after NUL\n") != NULL, "%s", text);
	/* Every line is the supervisor's. */
	for (const char *line = text; *line; line = strchr(line, '\n') + 1)
		ck_assert_msg(strncmp(line, "luapoold[", 9) == 0 && strstr(line, ": worker 4242: "),
		    "%s", text);
	free(text);
}
END_TEST

START_TEST(a_long_line_should_be_cut_and_an_unfinished_one_logged_at_the_end)
{
	char out[2000 + 16];
	memset(out, 'a', 2000);
	memcpy(out + 2000, "\nlast words", 11);
	char *text = log_of_worker_output(out, 2011);
	ck_assert_int_eq(count_lines(text), 2);
	char expected[WORKER_LOG_LINE_MAX + 32];
	memset(expected, 'a', WORKER_LOG_LINE_MAX);
	strcpy(expected + WORKER_LOG_LINE_MAX, " [line cut]\n");
	ck_assert_msg(strstr(text, expected) != NULL, "%s", text);
	ck_assert_ptr_null(strstr(text, "aaaa [line cut]aaaa"));
	ck_assert_msg(strstr(text, "worker 4242: last words\n") != NULL, "%s", text);
	free(text);
}
END_TEST

START_TEST(lines_beyond_the_rate_should_be_counted_in_one_note)
{
	enum { LINES = WORKER_LOG_LINES_PER_SECOND + 25 };
	static char out[LINES * 16];
	size_t len = 0;
	for (int i = 0; i < LINES; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "line %d\n", i);
	char *text = log_of_worker_output(out, len);
	ck_assert_int_eq(count_lines(text), WORKER_LOG_LINES_PER_SECOND + 1);
	ck_assert_msg(strstr(text, "worker 4242: 25 log lines dropped\n") != NULL, "%s", text);
	free(text);
}
END_TEST

static Suite *
worker_log_suite(void)
{
	Suite *s = suite_create("worker log");
	TCase *t = tcase_create("worker log");
	tcase_add_test(t, a_line_with_the_workers_own_prefix_should_keep_its_level);
	tcase_add_test(t, a_line_with_another_pid_or_no_level_should_be_a_warning);
	tcase_add_test(t, a_fronts_lines_should_be_named_front_and_keep_only_their_own_level);
	tcase_add_test(t, embedded_control_bytes_should_not_start_a_log_line_of_their_own);
	tcase_add_test(t, a_long_line_should_be_cut_and_an_unfinished_one_logged_at_the_end);
	tcase_add_test(t, lines_beyond_the_rate_should_be_counted_in_one_note);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	log_set_level(LOG_DEBUG);
	SRunner *runner = srunner_create(worker_log_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
