/*
 * test_containment.c - what still holds a worker that hostile bytecode has
 * taken over (docs/SECURITY.md, "Worker containment"), seen from outside on
 * the real luapoold: the workers of a root daemon run as worker_user with
 * no capabilities, no_new_privs, seccomp and an address-space limit; their
 * stderr reaches the log only through the supervisor.  A front (front
 * mode) is held the same way, with its own filter (tests/vm/test_sandbox.c
 * tries its rules).  The privilege tests need root (CI runs as root) and
 * say so when they skip.
 */
#include <check.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/apitest.h"
#include "support/server.h"
#include "support/support.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MAX_WORKERS 4

/* The text after "Key:" on its line of /proc/PID/<file>, trimmed, in out;
 * fails the test if there is none. */
static void
proc_field(pid_t pid, const char *file, const char *key, char *out, size_t outlen)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	char *text = support_read_file(path, NULL);
	ck_assert_msg(text != NULL, "cannot read %s", path);
	size_t klen = strlen(key);
	const char *line = text;
	while (line && strncmp(line, key, klen) != 0)
		line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL;
	ck_assert_msg(line != NULL, "no %s in %s", key, path);
	line += klen;
	line += strspn(line, ": \t");
	size_t len = strcspn(line, "\n");
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	snprintf(out, outlen, "%.*s", (int)len, line);
	free(text);
}

static int
skip_unless_root(const char *test)
{
	if (geteuid() == 0)
		return 0;
	printf("%s: skipped: needs root (workers only switch users when luapoold is root)\n",
	    test);
	return 1;
}

/* Starts a daemon with two workers at debug level and returns their pids. */
static int
start_and_find_workers(pid_t *workers)
{
	static const char *const options[] = { "--workers", "2", "--log-level", "debug", NULL };
	apitest_start(options);
	expect_hello_works();
	int n = support_children(apitest_server.pid, "luapool-worker", workers, MAX_WORKERS);
	ck_assert_int_eq(n, 2);
	return n;
}

START_TEST(workers_of_a_root_daemon_should_run_as_nobody_without_privileges)
{
	if (skip_unless_root(__func__))
		return;
	const struct passwd *pw = getpwnam("nobody");
	ck_assert_ptr_nonnull(pw);
	char uids[64], gids[64], value[128];
	snprintf(uids, sizeof(uids), "%u\t%u\t%u\t%u", (unsigned)pw->pw_uid, (unsigned)pw->pw_uid,
	    (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
	snprintf(gids, sizeof(gids), "%u\t%u\t%u\t%u", (unsigned)pw->pw_gid, (unsigned)pw->pw_gid,
	    (unsigned)pw->pw_gid, (unsigned)pw->pw_gid);
	pid_t workers[MAX_WORKERS];
	int n = start_and_find_workers(workers);
	static const char *const no_capabilities[] = { "CapInh", "CapPrm", "CapEff", "CapBnd",
	    "CapAmb" };
	for (int i = 0; i < n; i++) {
		proc_field(workers[i], "status", "Uid", value, sizeof(value));
		ck_assert_str_eq(value, uids);
		proc_field(workers[i], "status", "Gid", value, sizeof(value));
		ck_assert_str_eq(value, gids);
		proc_field(workers[i], "status", "Groups", value, sizeof(value));
		ck_assert_str_eq(value, "");
		for (size_t c = 0; c < sizeof(no_capabilities) / sizeof(no_capabilities[0]); c++) {
			proc_field(workers[i], "status", no_capabilities[c], value, sizeof(value));
			ck_assert_msg(strtoull(value, NULL, 16) == 0, "worker %d %s: %s",
			    (int)workers[i], no_capabilities[c], value);
		}
		proc_field(workers[i], "status", "NoNewPrivs", value, sizeof(value));
		ck_assert_str_eq(value, "1");
		proc_field(workers[i], "status", "Seccomp", value, sizeof(value));
		ck_assert_str_eq(value, "2");
	}
	/* The supervisor itself stays root: it must be able to kill and renice. */
	proc_field(apitest_server.pid, "status", "Uid", value, sizeof(value));
	ck_assert_str_eq(value, "0\t0\t0\t0");
}
END_TEST

START_TEST(workers_should_have_an_address_space_limit)
{
	pid_t workers[MAX_WORKERS];
	char value[128];
	int n = start_and_find_workers(workers);
	for (int i = 0; i < n; i++) {
		proc_field(workers[i], "limits", "Max address space", value, sizeof(value));
		if (UNDER_ASAN) {
			ck_assert_msg(strncmp(value, "unlimited", 9) == 0, "%s", value);
			continue;
		}
		/* 2 x 128 MiB heap + 2 x 1 MiB result + 2 x 64 KiB log + 2 x 256 MiB
		 * request + 256 MiB */
		unsigned long long expected = ((2ULL * 128 + 2 + 2 * 256 + 256) << 20) +
		    2 * 65536;
		ck_assert_msg(strtoull(value, NULL, 10) == expected, "worker %d: %s",
		    (int)workers[i], value);
	}
}
END_TEST

START_TEST(a_workers_own_log_line_should_reach_the_log_through_the_supervisor)
{
	pid_t workers[MAX_WORKERS];
	int n = start_and_find_workers(workers);
	for (int i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof(want), ": debug: emit_line: worker %d: main: sandboxed as uid",
		    (int)workers[i]);
		int64_t deadline = support_now_ms() + WAIT_MS;
		char *log = server_log(&apitest_server);
		while (strstr(log, want) == NULL && support_now_ms() < deadline) {
			free(log);
			usleep(POLL_STEP_US);
			log = server_log(&apitest_server);
		}
		ck_assert_msg(strstr(log, want) != NULL, "no \"%s\" in the log:\n%s", want, log);
		/* Nothing in the log comes from a worker directly. */
		for (const char *line = log; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "")
			ck_assert_msg(strncmp(line, "luapool-worker[", 15) != 0,
			    "a worker wrote to the log directly:\n%s", log);
		free(log);
	}
}
END_TEST

START_TEST(a_front_should_be_sandboxed_and_logged_through_the_supervisor)
{
	static const char *const options[] = { "--workers", "1", "--front-workers", "1",
	    "--log-level", "debug", NULL };
	apitest_start(options);
	expect_hello_works();
	pid_t fronts[MAX_WORKERS];
	int64_t deadline = support_now_ms() + WAIT_MS;
	int n;
	while ((n = support_children(apitest_server.pid, "luapool-front", fronts,
	    MAX_WORKERS)) == 0 && support_now_ms() < deadline)
		usleep(POLL_STEP_US);
	ck_assert_int_eq(n, 1);
	/* Its own line, at the level it claims, named as a front's. */
	char want[80];
	snprintf(want, sizeof(want),
	    ": debug: emit_line: front %d: enter_sandbox: sandboxed as uid", (int)fronts[0]);
	char *log = server_log(&apitest_server);
	while (strstr(log, want) == NULL && support_now_ms() < deadline) {
		free(log);
		usleep(POLL_STEP_US);
		log = server_log(&apitest_server);
	}
	ck_assert_msg(strstr(log, want) != NULL, "no \"%s\" in the log:\n%s", want, log);
	free(log);
	char value[128];
	proc_field(fronts[0], "status", "NoNewPrivs", value, sizeof(value));
	ck_assert_str_eq(value, "1");
	proc_field(fronts[0], "status", "Seccomp", value, sizeof(value));
	ck_assert_str_eq(value, "2");
	proc_field(fronts[0], "status", "CapEff", value, sizeof(value));
	ck_assert_msg(strtoull(value, NULL, 16) == 0, "front CapEff: %s", value);
	proc_field(fronts[0], "limits", "Max address space", value, sizeof(value));
	ck_assert_msg((strncmp(value, "unlimited", 9) == 0) == UNDER_ASAN, "%s", value);
	if (geteuid() == 0) {
		const struct passwd *pw = getpwnam("nobody");
		ck_assert_ptr_nonnull(pw);
		proc_field(fronts[0], "status", "Uid", value, sizeof(value));
		ck_assert_uint_eq(strtoul(value, NULL, 10), (unsigned long)pw->pw_uid);
	}
}
END_TEST

START_TEST(a_missing_worker_user_should_stop_a_root_daemon_at_start_up)
{
	if (skip_unless_root(__func__))
		return;
	static const char *const options[] = { "--worker-user", "no-such-user-luapoold", NULL };
	char err[8192] = "";
	ck_assert_int_eq(server_start(&apitest_server, options, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "worker_user \"no-such-user-luapoold\": no such user") != NULL ||
	    strstr(err, "worker_user \\\"no-such-user-luapoold\\\": no such user") != NULL,
	    "%s", err);
}
END_TEST

static Suite *
containment_suite(void)
{
	Suite *s = suite_create("containment");
	TCase *t = tcase_create("own server");
	tcase_set_timeout(t, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(t, apitest_setup, apitest_teardown);
	tcase_add_test(t, workers_of_a_root_daemon_should_run_as_nobody_without_privileges);
	tcase_add_test(t, workers_should_have_an_address_space_limit);
	tcase_add_test(t, a_workers_own_log_line_should_reach_the_log_through_the_supervisor);
	tcase_add_test(t, a_front_should_be_sandboxed_and_logged_through_the_supervisor);
	tcase_add_test(t, a_missing_worker_user_should_stop_a_root_daemon_at_start_up);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(containment_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
