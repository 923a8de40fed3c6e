/*
 * test_command_line.c - the integration suite for luapoold as a program
 * rather than a server: configuration errors with their file and line,
 * --check-config, --help and --version, and the shipped systemd unit
 * (systemd-analyze verify, when it is installed).  Runs the real binary
 * ($LUAPOOLD) to completion; never serves a request.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luapool.h"
#include "support/apitest.h"
#include "support/server.h"
#include "support/support.h"

/* Configuration errors ----------------------------------------------------- */

/* Runs luapoold with these arguments (NULL-terminated); fills *status and
 * the output (caller frees both). */
static void
run_daemon_command_at(int line, const char *const *args, int *status, char **out, char **err)
{
	char *argv[16];
	int argc = 0;
	argv[argc++] = strdup(server_daemon_path());
	for (int i = 0; args[i]; i++)
		argv[argc++] = strdup(args[i]);
	argv[argc] = NULL;
	int rc = support_run(argv, 10000, status, out, err);
	ck_assert_msg(rc == 0, "line %d: luapoold %s did not finish within 10 s", line, args[0]);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
}
#define run_daemon_command(a, s, o, e) run_daemon_command_at(__LINE__, a, s, o, e)

static void
write_bad_config(char *path, size_t len)
{
	static const char text[] = "# a test configuration\nworkers = 1\nno_such_key = 5\n"
	    "queue_depth = 4\n";
	apitest_make_scratch_dir();
	snprintf(path, len, "%s/bad.conf", apitest_scratch);
	ck_assert_int_eq(support_write_file(path, text, sizeof(text) - 1), 0);
}

START_TEST(unknown_config_key_should_fail_with_its_file_and_line)
{
	char path[128], where[160];
	int status;
	char *out, *err;
	write_bad_config(path, sizeof(path));
	snprintf(where, sizeof(where), "%s:3:", path);
	const char *const args[] = { "-c", path, "--listen", "127.0.0.1:0", "--worker-path",
	    server_worker_path(), NULL };
	run_daemon_command(args, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "wait status 0x%x",
	    status);
	ck_assert_msg(strstr(err, where) != NULL, "stderr lacks %s: %s", where, err);
	ck_assert_ptr_null(strstr(err, "listening on"));
	free(out);
	free(err);
}
END_TEST

START_TEST(check_config_should_accept_the_shipped_file_and_refuse_a_bad_one)
{
	char path[128], where[160];
	int status;
	char *out, *err;
	const char *const good[] = { "--check-config", "-c", "conf/luapoold.conf", NULL };
	run_daemon_command(good, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "wait status 0x%x, stderr: %s", status, err);
	free(out);
	free(err);

	write_bad_config(path, sizeof(path));
	snprintf(where, sizeof(where), "%s:3:", path);
	const char *const bad[] = { "--check-config", "-c", path, NULL };
	run_daemon_command(bad, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "wait status 0x%x",
	    status);
	ck_assert_msg(strstr(err, where) != NULL, "stderr lacks %s: %s", where, err);
	free(out);
	free(err);
}
END_TEST

START_TEST(help_and_version_should_exit_0)
{
	int status;
	char *out, *err;
	const char *const help[] = { "--help", NULL };
	run_daemon_command(help, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status 0x%x",
	    status);
	ck_assert_ptr_nonnull(strstr(out, "usage:"));
	ck_assert_ptr_nonnull(strstr(out, "--check-config"));
	ck_assert_ptr_nonnull(strstr(out, "--queue-depth"));
	free(out);
	free(err);

	const char *const version[] = { "--version", NULL };
	run_daemon_command(version, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status 0x%x",
	    status);
	ck_assert_msg(strstr(out, "luapoold " LUAPOOL_VERSION) != NULL, "--version: %s", out);
	free(out);
	free(err);
}
END_TEST

/* The systemd unit --------------------------------------------------------- */

static int
find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* text with every `from` replaced by `to` (malloc'd). */
static char *
replace_all(const char *text, const char *from, const char *to)
{
	size_t count = 0, flen = strlen(from), tlen = strlen(to);
	for (const char *p = strstr(text, from); p; p = strstr(p + flen, from))
		count++;
	char *out = malloc(strlen(text) + count * tlen + 1), *o = out;
	ck_assert_ptr_nonnull(out);
	for (const char *p = text, *hit; ; p = hit + flen) {
		hit = strstr(p, from);
		size_t keep = hit ? (size_t)(hit - p) : strlen(p);
		memcpy(o, p, keep);
		o += keep;
		if (hit == NULL)
			break;
		memcpy(o, to, tlen);
		o += tlen;
	}
	*o = '\0';
	return out;
}

START_TEST(unit_file_should_pass_systemd_analyze_verify)
{
	char analyze[512], unit_path[128], bindir[4096], libexecdir[4096];
	if (find_in_path("systemd-analyze", analyze, sizeof(analyze)) == -1) {
		printf("note: systemd-analyze not found; the unit file is not verified\n");
		return;
	}
	char *unit = support_read_file("luapoold.service", NULL);
	if (unit == NULL) {
		printf("note: no luapoold.service at the repository root; nothing to verify\n");
		return;
	}
	ck_assert_ptr_nonnull(realpath(server_daemon_path(), bindir));
	*strrchr(bindir, '/') = '\0';
	ck_assert_ptr_nonnull(realpath(server_worker_path(), libexecdir));
	*strrchr(libexecdir, '/') = '\0';
	const char *substitutions[][2] = {
		{ "@BINDIR@", bindir }, { "@LIBEXECDIR@", libexecdir },
		{ "@SYSCONFDIR@", "/etc" }, { "@PREFIX@", "/usr/local" },
	};
	for (size_t i = 0; i < sizeof(substitutions) / sizeof(substitutions[0]); i++) {
		char *next = replace_all(unit, substitutions[i][0], substitutions[i][1]);
		free(unit);
		unit = next;
	}
	apitest_make_scratch_dir();
	snprintf(unit_path, sizeof(unit_path), "%s/luapoold.service", apitest_scratch);
	ck_assert_int_eq(support_write_file(unit_path, unit, strlen(unit)), 0);
	free(unit);

	char *argv[] = { analyze, strdup("verify"), unit_path, NULL };
	int status;
	char *out, *err;
	int rc = support_run(argv, 30000, &status, &out, &err);
	free(argv[1]);
	ck_assert_msg(rc == 0, "systemd-analyze verify did not finish");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "systemd-analyze verify: wait status 0x%x\n%s%s", status, out, err);
	/* It exits 0 after "Unknown key ... ignoring": any line about the
	 * unit is a finding. */
	ck_assert_msg(strstr(out, unit_path) == NULL && strstr(err, unit_path) == NULL,
	    "systemd-analyze verify:\n%s%s", out, err);
	free(out);
	free(err);
}
END_TEST

/* Suite -------------------------------------------------------------------- */

static Suite *
command_line_suite(void)
{
	Suite *s = suite_create("command line");
	TCase *cli = tcase_create("command line");
	tcase_add_checked_fixture(cli, apitest_setup, apitest_teardown);
	tcase_set_timeout(cli, TEST_TIMEOUT_S);
	tcase_add_test(cli, unknown_config_key_should_fail_with_its_file_and_line);
	tcase_add_test(cli, check_config_should_accept_the_shipped_file_and_refuse_a_bad_one);
	tcase_add_test(cli, help_and_version_should_exit_0);
	tcase_add_test(cli, unit_file_should_pass_systemd_analyze_verify);
	suite_add_tcase(s, cli);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(command_line_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
