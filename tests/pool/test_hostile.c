/*
 * test_hostile.c - the supervisor facing a compromised worker.  This test
 * binary is its own hostile worker: started by the pool with
 * LUAPOOL_TEST_HOSTILE in its environment, main() speaks the frame
 * protocol on fd 3 the way native code in a worker could, instead of
 * running tests.  The pool must kill such a worker, answer the job it
 * held with worker_crashed (never with the forged answer), and not spin:
 * a reply before its job was written, a module request while idle, more
 * module requests than a job may make, a module name too long.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "luapool.h"
#include "support/support.h"

#define HOSTILE_ENV "LUAPOOL_TEST_HOSTILE"

static int
read_exactly(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* Replies to each job as soon as its header arrives, before the supervisor
 * has written the rest of it, then reads nothing more. */
static int
be_early_replier(void)
{
	struct frame_header h = { .type = FRAME_READY };
	static const char version[] = "hostile";
	if (frame_send(FRAME_WORKER_FD, &h, version, sizeof(version) - 1) == -1)
		return 1;
	if (read_exactly(FRAME_WORKER_FD, &h, sizeof(h)) == -1)
		return 0;
	static const char forged[] = "{\"result\":\"forged\"}";
	struct frame_header reply = { .type = FRAME_REPLY, .job_id = h.job_id, .length = 0 };
	if (frame_send(FRAME_WORKER_FD, &reply, forged, sizeof(forged) - 1) == -1)
		return 1;
	for (int i = 0; i < 100; i++)	/* up to 10 s, unless killed first */
		usleep(100000);
	return 0;
}

/* Reads its job whole, then answers it with a code only the supervisor
 * may give (503 overloaded, which clients would retry). */
static int
be_forger(void)
{
	struct frame_header h = { .type = FRAME_READY };
	if (frame_send(FRAME_WORKER_FD, &h, "hostile", 7) == -1 ||
	    read_exactly(FRAME_WORKER_FD, &h, sizeof(h)) == -1)
		return 1;
	char skip[4096];
	for (uint32_t left = h.length; left > 0; ) {
		uint32_t n = left < sizeof(skip) ? left : (uint32_t)sizeof(skip);
		if (read_exactly(FRAME_WORKER_FD, skip, n) == -1)
			return 1;
		left -= n;
	}
	static const char forged[] = "overloaded\0try later\0";
	struct frame_header reply = { .type = FRAME_REPLY, .job_id = h.job_id,
		.status = LUAPOOL_E_OVERLOADED };
	if (frame_send(FRAME_WORKER_FD, &reply, forged, sizeof(forged) - 1) == -1)
		return 1;
	for (int i = 0; i < 100; i++)	/* up to 10 s, unless killed first */
		usleep(100000);
	return 0;
}

/* Sends FRAME_MODULE with this name for job_id and waits for the reply. */
static int
ask_for_module(uint64_t job_id, const char *name, size_t len)
{
	struct frame_header h = { .type = FRAME_MODULE, .job_id = job_id };
	if (frame_send(FRAME_WORKER_FD, &h, name, len) == -1 ||
	    read_exactly(FRAME_WORKER_FD, &h, sizeof(h)) == -1 || h.type != FRAME_MODULE_REPLY)
		return -1;
	char skip[4096];
	return h.length <= sizeof(skip) ? read_exactly(FRAME_WORKER_FD, skip, h.length) : -1;
}

/*
 * Module requests out of protocol: "module-idle" asks while holding no job;
 * "module-flood" asks for one module more than a job may; "module-long-name"
 * sends a name longer than any module's.  Then it reads until the pool
 * closes its socket (or kills it).
 */
static int
be_module_asker(const char *role)
{
	struct frame_header h = { .type = FRAME_READY };
	static const char version[] = "hostile";
	if (frame_send(FRAME_WORKER_FD, &h, version, sizeof(version) - 1) == -1)
		return 1;
	if (strcmp(role, "module-idle") == 0) {
		ask_for_module(0, "lib", 3);
	} else if (read_exactly(FRAME_WORKER_FD, &h, sizeof(h)) == 0) {
		char *payload = malloc(h.length ? h.length : 1);
		if (payload == NULL || read_exactly(FRAME_WORKER_FD, payload, h.length) == -1)
			return 1;
		free(payload);
		if (strcmp(role, "module-flood") == 0) {
			for (unsigned i = 0; i <= LUAPOOL_MAX_MODULES; i++)
				if (ask_for_module(h.job_id, "lib", 3) == -1)
					break;
		} else {
			char name[LUAPOOL_MODULE_NAME_MAX + 1];
			memset(name, 'a', sizeof(name));
			ask_for_module(h.job_id, name, sizeof(name));
		}
	}
	char byte;
	while (read(FRAME_WORKER_FD, &byte, 1) > 0)
		;
	return 0;
}

/* A pool of one hostile worker playing `role`. */
static struct luapool *
hostile_pool(const char *role)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	setenv(HOSTILE_ENV, role, 1);
	struct luapool_options opts;
	struct luapool_error err;
	luapool_options_init(&opts);
	opts.workers = 1;
	opts.worker_path = self;
	struct luapool *pool = luapool_new_with(&opts, &err);
	ck_assert_msg(pool != NULL, "%s", err.message);
	return pool;
}

START_TEST(a_module_request_from_an_idle_worker_should_kill_it)
{
	struct luapool *pool = hostile_pool("module-idle");
	struct luapool_stats stats;
	int64_t end = support_now_ms() + 5000;
	do {
		usleep(5000);
		luapool_stats(pool, &stats);
	} while (stats.respawns == 0 && support_now_ms() < end);
	ck_assert_msg(stats.respawns > 0, "the worker was not replaced");
	luapool_shutdown(pool);
	luapool_free(pool);
	unsetenv(HOSTILE_ENV);
}
END_TEST

/* Each role asks out of bounds while running a job, or answers with a
 * code that is not a worker's to give: the job is answered worker_crashed,
 * never left waiting nor given the forged answer. */
START_TEST(module_requests_out_of_bounds_should_kill_the_worker)
{
	static const char *const roles[] = { "module-flood", "module-long-name", "forged-code" };
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		struct luapool *pool = hostile_pool(roles[i]);
		struct luapool_error err;
		cJSON *r = luapool_submit_source(pool, "return 1", 8, NULL, 5000, &err);
		ck_assert_msg(r == NULL, "%s: the job succeeded", roles[i]);
		ck_assert_msg(err.status == LUAPOOL_E_CRASHED, "%s: status %s: %s", roles[i],
		    luapool_status_code(err.status), err.message);
		luapool_shutdown(pool);
		luapool_free(pool);
	}
	unsetenv(HOSTILE_ENV);
}
END_TEST

static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

START_TEST(a_reply_before_the_job_was_written_should_kill_the_worker_without_spinning)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	setenv(HOSTILE_ENV, "early-reply", 1);
	struct luapool_options opts;
	struct luapool_error err;
	luapool_options_init(&opts);
	opts.workers = 1;
	opts.worker_path = self;
	struct luapool *pool = luapool_new_with(&opts, &err);
	ck_assert_msg(pool != NULL, "%s", err.message);

	/* Far larger than a socket buffer: the write has to wait for EPOLLOUT. */
	size_t len = 8u << 20;
	char *request = malloc(len);
	memset(request, ' ', len);
	memcpy(request, "return 1", 8);
	cJSON *r = luapool_submit_source(pool, request, len, NULL, 5000, &err);
	ck_assert_msg(r == NULL, "the forged answer was accepted");
	ck_assert_msg(err.status == LUAPOOL_E_CRASHED, "status %s: %s",
	    luapool_status_code(err.status), err.message);
	free(request);

	/* The dispatcher thread lives in this process: it must be idle now. */
	double before = cpu_seconds();
	usleep(500000);
	double used = cpu_seconds() - before;
	ck_assert_msg(used < 0.2, "the pool used %.0f ms of CPU in 500 ms idle", used * 1000);
	ck_assert_int_eq(luapool_shutdown(pool), 0);
	luapool_free(pool);
	unsetenv(HOSTILE_ENV);
}
END_TEST

int
main(void)
{
	const char *role = getenv(HOSTILE_ENV);
	if (role && strcmp(role, "early-reply") == 0)
		return be_early_replier();
	if (role && strcmp(role, "forged-code") == 0)
		return be_forger();
	if (role && strncmp(role, "module-", 7) == 0)
		return be_module_asker(role);
	Suite *s = suite_create("hostile worker");
	TCase *tc = tcase_create("frames");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_reply_before_the_job_was_written_should_kill_the_worker_without_spinning);
	tcase_add_test(tc, a_module_request_from_an_idle_worker_should_kill_it);
	tcase_add_test(tc, module_requests_out_of_bounds_should_kill_the_worker);
	suite_add_tcase(s, tc);
	SRunner *runner = srunner_create(s);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
