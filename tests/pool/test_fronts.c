/*
 * test_fronts.c - the set of front processes (src/pool/fronts.c): what a
 * front is started with (a SOCK_SEQPACKET control socket on fd 4, the
 * CONFIG packet with the token, the worker's arguments then its own, a
 * process group of its own), one attach per
 * front started, a dead front replaced with backoff, a reload that starts
 * a new set before the old one goes, and a stop that kills what ignores
 * SIGTERM.  This test binary is its own fake front: started with
 * LUAPOOL_TEST_FRONT in its environment, main() checks what it was given
 * and reports it as one packet on its control socket.  Every wait is
 * bounded.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/front_proto.h"
#include "luapool.h"
#include "pool/fronts.h"
#include "support/support.h"

#define FRONT_ENV	"LUAPOOL_TEST_FRONT"
#define ATTACHED_MAX	64
#define WAIT_MS		5000

/* The fake front ---------------------------------------------------------- */

static int
socket_option(int fd, int option)
{
	int value = -1;
	socklen_t len = sizeof(value);
	return getsockopt(fd, SOL_SOCKET, option, &value, &len) == 0 ? value : -1;
}

/*
 * "report": sends what it found, then waits (20 s at most) for SIGTERM;
 * "stubborn": the same, ignoring SIGTERM; "die": reads CONFIG and exits 3.
 */
static int
be_front(const char *role, int argc, char **argv)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* never outlive a failed test */
	if (strcmp(role, "stubborn") == 0)
		signal(SIGTERM, SIG_IGN);
	char packet[FRONT_PACKET_MAX];
	ssize_t n = recv(FRONT_CONTROL_FD, packet, sizeof(packet), 0);
	struct front_msg msg = { 0 };
	if (n >= (ssize_t)sizeof(msg))
		memcpy(&msg, packet, sizeof(msg));
	if (strcmp(role, "die") == 0)
		return 3;
	struct stat st;
	int stderr_pipe = fstat(STDERR_FILENO, &st) == 0 && S_ISFIFO(st.st_mode);
	char report[1024];
	snprintf(report, sizeof(report), "pid=%d seqpacket=%d stderr_pipe=%d "
	    "own_group=%d config=%d token=[%.*s] memory=%d tail=%s,%s", (int)getpid(),
	    socket_option(FRONT_CONTROL_FD, SO_TYPE) == SOCK_SEQPACKET, stderr_pipe,
	    getpgrp() == getpid(), msg.type == FRONT_MSG_CONFIG,
	    n > (ssize_t)sizeof(msg) ? (int)(n - (ssize_t)sizeof(msg)) : 0, packet + sizeof(msg),
	    argc > 2 && strcmp(argv[1], "--memory-mb") == 0, argv[argc - 2], argv[argc - 1]);
	if (send(FRONT_CONTROL_FD, report, strlen(report), 0) == -1)
		return 1;
	for (int i = 0; i < 200; i++)
		usleep(100000);
	return 0;
}

/* The supervisor's side ------------------------------------------------- */

/* What attach was given; it may run on the fronts' thread. */
static struct {
	pthread_mutex_t lock;
	int fds[ATTACHED_MAX];
	unsigned count;
} attached = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
on_attach(void *arg, int control_fd)
{
	(void)arg;
	pthread_mutex_lock(&attached.lock);
	if (attached.count < ATTACHED_MAX)
		attached.fds[attached.count++] = control_fd;
	else
		close(control_fd);
	pthread_mutex_unlock(&attached.lock);
}

static unsigned
attached_count(void)
{
	pthread_mutex_lock(&attached.lock);
	unsigned n = attached.count;
	pthread_mutex_unlock(&attached.lock);
	return n;
}

static int
attached_fd(unsigned i)
{
	pthread_mutex_lock(&attached.lock);
	int fd = attached.fds[i];
	pthread_mutex_unlock(&attached.lock);
	return fd;
}

static void
forget_attached(void)
{
	pthread_mutex_lock(&attached.lock);
	for (unsigned i = 0; i < attached.count; i++)
		close(attached.fds[i]);
	attached.count = 0;
	pthread_mutex_unlock(&attached.lock);
}

struct fixture {
	struct luapool *pool;
	struct fronts *fronts;
};

/* `count` fake fronts playing `role`, with the token and one extra pair. */
static void
start_fronts(struct fixture *fx, const char *role, unsigned count, const char *token)
{
	static const char *const extra[] = { "--fast-lane-ms", "10", NULL };
	char self[4096], err[256] = "";
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	struct luapool_error pe;
	fx->pool = luapool_new(1, &pe);
	ck_assert_msg(fx->pool != NULL, "%s", pe.message);
	setenv(FRONT_ENV, role, 1);
	struct fronts_options o = {
		.count = count, .front_path = self,
		.extra_args = extra, .auth_token = token, .attach = on_attach,
	};
	fx->fronts = fronts_start(fx->pool, &o, err, sizeof(err));
	ck_assert_msg(fx->fronts != NULL, "%s", err);
}

static void
finish(struct fixture *fx)
{
	luapool_free(fx->pool);
	forget_attached();
	unsetenv(FRONT_ENV);
}

/* The report of the front attached as number i; its pid in *pid. */
static void
read_report(unsigned i, char *out, size_t len, pid_t *pid)
{
	struct pollfd pfd = { .fd = attached_fd(i), .events = POLLIN };
	ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "front %u sent no report", i);
	ssize_t n = recv(pfd.fd, out, len - 1, 0);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	int value = 0;
	ck_assert_int_eq(sscanf(out, "pid=%d", &value), 1);
	*pid = value;
}

static void
wait_until_attached(unsigned want)
{
	int64_t end = support_now_ms() + WAIT_MS;
	while (attached_count() < want && support_now_ms() < end)
		usleep(2000);
	ck_assert_uint_eq(attached_count(), want);
}

static void
wait_until_alive(const struct fronts *f, unsigned want)
{
	int64_t end = support_now_ms() + WAIT_MS;
	while (fronts_alive(f) != want && support_now_ms() < end)
		usleep(2000);
	ck_assert_uint_eq(fronts_alive(f), want);
}

static int
process_gone(pid_t pid)
{
	return kill(pid, 0) == -1 && errno == ESRCH;
}

/* Tests ------------------------------------------------------------------- */

START_TEST(every_front_should_get_the_control_socket_and_the_token)
{
	struct fixture fx;
	pid_t pids[3];
	char report[1024];
	start_fronts(&fx, "report", 3, "s3cret");
	ck_assert_uint_eq(attached_count(), 3);
	ck_assert_uint_eq(fronts_alive(fx.fronts), 3);
	for (unsigned i = 0; i < 3; i++) {
		read_report(i, report, sizeof(report), &pids[i]);
		ck_assert_msg(strstr(report, " seqpacket=1 stderr_pipe=1 own_group=1 "
		    "config=1 token=[s3cret] memory=1 tail=--fast-lane-ms,10") != NULL,
		    "front %u reported %s", i, report);
	}
	fronts_stop(fx.fronts, WAIT_MS);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_msg(process_gone(pids[i]), "front %d still runs", (int)pids[i]);
	ck_assert_uint_eq(attached_count(), 3);
	finish(&fx);
}
END_TEST

START_TEST(no_token_should_send_an_empty_config)
{
	struct fixture fx;
	pid_t pid;
	char report[1024];
	start_fronts(&fx, "report", 1, NULL);
	read_report(0, report, sizeof(report), &pid);
	ck_assert_msg(strstr(report, " config=1 token=[] ") != NULL, "%s", report);
	fronts_stop(fx.fronts, WAIT_MS);
	finish(&fx);
}
END_TEST

START_TEST(a_killed_front_should_be_replaced)
{
	struct fixture fx;
	pid_t first, other, successor;
	char report[1024];
	start_fronts(&fx, "report", 2, "t");
	read_report(0, report, sizeof(report), &first);
	read_report(1, report, sizeof(report), &other);
	ck_assert_int_eq(kill(first, SIGKILL), 0);
	wait_until_attached(3);
	wait_until_alive(fx.fronts, 2);
	read_report(2, report, sizeof(report), &successor);
	ck_assert_int_ne(successor, first);
	ck_assert_msg(strstr(report, " token=[t] ") != NULL, "%s", report);
	ck_assert(process_gone(first));
	ck_assert(!process_gone(other));
	fronts_stop(fx.fronts, WAIT_MS);
	ck_assert(process_gone(other) && process_gone(successor));
	ck_assert_uint_eq(attached_count(), 3);
	finish(&fx);
}
END_TEST

START_TEST(fronts_that_keep_dying_should_be_restarted_with_backoff)
{
	struct fixture fx;
	start_fronts(&fx, "die", 1, NULL);
	/* 10, 20, 40, 80, 160, 320 ms: about 7 starts in 700 ms, not hundreds. */
	usleep(700000);
	unsigned starts = attached_count();
	ck_assert_msg(starts >= 3 && starts <= 12, "%u starts in 700 ms", starts);
	fronts_stop(fx.fronts, WAIT_MS);
	finish(&fx);
}
END_TEST

START_TEST(a_reload_should_start_a_new_set_then_stop_the_old_one)
{
	static const char *const extra[] = { "--fast-lane-ms", "20", NULL };
	struct fixture fx;
	pid_t old[2], fresh[2];
	char report[1024];
	start_fronts(&fx, "report", 2, "old");
	read_report(0, report, sizeof(report), &old[0]);
	read_report(1, report, sizeof(report), &old[1]);
	ck_assert_int_eq(fronts_reload(fx.fronts, "new", extra), 0);
	wait_until_attached(4);
	for (unsigned i = 0; i < 2; i++) {
		read_report(2 + i, report, sizeof(report), &fresh[i]);
		ck_assert_msg(strstr(report, " token=[new] memory=1 tail=--fast-lane-ms,20") != NULL,
		    "%s", report);
	}
	wait_until_alive(fx.fronts, 2);
	ck_assert(process_gone(old[0]) && process_gone(old[1]));
	ck_assert(!process_gone(fresh[0]) && !process_gone(fresh[1]));
	fronts_stop(fx.fronts, WAIT_MS);
	ck_assert(process_gone(fresh[0]) && process_gone(fresh[1]));
	finish(&fx);
}
END_TEST

START_TEST(stop_should_kill_a_front_that_ignores_sigterm_after_the_timeout)
{
	struct fixture fx;
	pid_t pid;
	char report[1024];
	start_fronts(&fx, "stubborn", 1, NULL);
	read_report(0, report, sizeof(report), &pid);
	int64_t start = support_now_ms();
	fronts_stop(fx.fronts, 300);
	int64_t took = support_now_ms() - start;
	ck_assert_msg(took >= 290 && took < WAIT_MS, "stop took %lld ms", (long long)took);
	ck_assert(process_gone(pid));
	finish(&fx);
}
END_TEST

START_TEST(begin_stop_should_let_fronts_exit_by_themselves)
{
	struct fixture fx;
	start_fronts(&fx, "report", 2, NULL);
	fronts_begin_stop(fx.fronts);
	wait_until_alive(fx.fronts, 0);
	fronts_free(fx.fronts);
	ck_assert_uint_eq(attached_count(), 2);
	finish(&fx);
}
END_TEST

START_TEST(a_missing_program_should_fail_and_leave_nothing_running)
{
	char err[256] = "";
	struct luapool_error pe;
	struct luapool *pool = luapool_new(1, &pe);
	ck_assert_msg(pool != NULL, "%s", pe.message);
	struct fronts_options o = {
		.count = 2, .front_path = "/nonexistent/luapool-front",
		.attach = on_attach,
	};
	ck_assert_ptr_null(fronts_start(pool, &o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "front_path") != NULL, "%s", err);
	ck_assert_uint_eq(attached_count(), 0);
	fronts_stop(NULL, 0);
	fronts_free(NULL);
	luapool_free(pool);
}
END_TEST

int
main(int argc, char **argv)
{
	const char *role = getenv(FRONT_ENV);
	if (role != NULL)
		return be_front(role, argc, argv);
	Suite *s = suite_create("fronts");
	TCase *tc = tcase_create("set");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_front_should_get_the_control_socket_and_the_token);
	tcase_add_test(tc, no_token_should_send_an_empty_config);
	tcase_add_test(tc, a_killed_front_should_be_replaced);
	tcase_add_test(tc, fronts_that_keep_dying_should_be_restarted_with_backoff);
	tcase_add_test(tc, a_reload_should_start_a_new_set_then_stop_the_old_one);
	tcase_add_test(tc, stop_should_kill_a_front_that_ignores_sigterm_after_the_timeout);
	tcase_add_test(tc, begin_stop_should_let_fronts_exit_by_themselves);
	tcase_add_test(tc, a_missing_program_should_fail_and_leave_nothing_running);
	suite_add_tcase(s, tc);
	SRunner *runner = srunner_create(s);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
