/*
 * test_pool.c - the engine through its public API (include/luapool.h),
 * with real worker processes: results, deadlines, crashes, heap limits,
 * isolation between jobs, the sandbox, concurrency, overload, shutdown.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luapool.h"
#include "support/support.h"

#define WORKERS 2

static struct luapool *pool;

static void
start_pool(unsigned workers, unsigned queue_depth)
{
	struct luapool_options opts;
	struct luapool_error err;
	luapool_options_init(&opts);
	opts.workers = workers;
	if (queue_depth)
		opts.queue_depth = queue_depth;
	pool = luapool_new_with(&opts, &err);
	ck_assert_msg(pool != NULL, "luapool_new_with: %s", err.message);
	ck_assert_uint_eq(luapool_active_workers(pool), workers);
}

static void
setup(void)
{
	start_pool(WORKERS, 0);
}

static void
teardown(void)
{
	if (pool) {
		ck_assert_int_eq(luapool_shutdown(pool), 0);
		luapool_free(pool);
	}
	pool = NULL;
}

/* Runs source with a JSON context; returns the result or NULL with err. */
static cJSON *
run_source(const char *source, const char *context_json, unsigned timeout_ms,
    struct luapool_error *err)
{
	struct luapool_context *ctx = luapool_context_new();
	if (context_json) {
		cJSON *obj = cJSON_Parse(context_json);
		ck_assert_ptr_nonnull(obj);
		cJSON *item;
		while ((item = obj->child) != NULL) {
			cJSON_DetachItemViaPointer(obj, item);
			char *key = item->string;
			item->string = NULL;
			luapool_context_set(ctx, key, item);
			cJSON_free(key);
		}
		cJSON_Delete(obj);
	}
	cJSON *r = luapool_submit_source(pool, source, strlen(source), ctx, timeout_ms, err);
	luapool_context_free(ctx);
	return r;
}

static void
expect_json(const char *source, const char *context, const char *expected)
{
	struct luapool_error err;
	cJSON *r = run_source(source, context, 2000, &err);
	ck_assert_msg(r != NULL, "%s: %s", source, err.message);
	char *text = cJSON_PrintUnformatted(r);
	cJSON *want = cJSON_Parse(expected);
	ck_assert_ptr_nonnull(want);
	ck_assert_msg(cJSON_Compare(r, want, 1), "%s: got %s, want %s", source, text, expected);
	cJSON_Delete(want);
	cJSON_free(text);
	cJSON_Delete(r);
}

static void
expect_status(const char *source, unsigned timeout_ms, enum luapool_status status)
{
	struct luapool_error err;
	cJSON *r = run_source(source, NULL, timeout_ms, &err);
	ck_assert_msg(r == NULL, "%s: unexpectedly succeeded", source);
	ck_assert_msg(err.status == status, "%s: status %s (%s), want %s", source,
	    luapool_status_code(err.status), err.message, luapool_status_code(status));
}

static int
wait_for_workers(unsigned n, int64_t bound_ms)
{
	int64_t end = support_now_ms() + bound_ms;
	while (luapool_active_workers(pool) != n) {
		if (support_now_ms() > end)
			return 0;
		usleep(500);
	}
	return 1;
}

START_TEST(submit_should_run_the_seed_example_from_bytecode)
{
	static const unsigned char hello[] = {
		0x1b, 0x4c, 0x4a, 0x02, 0x0a, 0x31, 0x02, 0x00, 0x02, 0x00, 0x03, 0x00,
		0x05, 0x36, 0x00, 0x00, 0x00, 0x39, 0x00, 0x01, 0x00, 0x27, 0x01, 0x02,
		0x00, 0x26, 0x00, 0x01, 0x00, 0x4c, 0x00, 0x02, 0x00, 0x0e, 0x20, 0x66,
		0x72, 0x6f, 0x6d, 0x20, 0x4c, 0x75, 0x61, 0x0c, 0x6d, 0x65, 0x73, 0x73,
		0x61, 0x67, 0x65, 0x08, 0x63, 0x74, 0x78, 0x00,
	};
	struct luapool_error err;
	struct luapool_context *ctx = luapool_context_new();
	luapool_context_set(ctx, "message", cJSON_CreateString("Hello"));
	ck_assert_str_eq(cJSON_GetStringValue(luapool_context_get(ctx, "message")), "Hello");
	cJSON *r = luapool_submit(pool, hello, sizeof(hello), ctx, &err);
	ck_assert_msg(r != NULL, "%s", err.message);
	ck_assert_str_eq(cJSON_GetStringValue(r), "Hello from Lua");
	cJSON_Delete(r);
	luapool_context_free(ctx);
}
END_TEST

START_TEST(submit_should_return_null_when_the_script_returns_nothing)
{
	expect_json("local x = 1", NULL, "null");
	expect_json("return {1, 2, {a = true}}", NULL, "[1,2,{\"a\":true}]");
	expect_json("return ctx.items", "{\"items\":[]}", "[]");
	expect_json("return ctx", "{\"a\":null,\"b\":[1,null,3]}", "{\"a\":null,\"b\":[1,null,3]}");
}
END_TEST

START_TEST(errors_should_carry_their_status)
{
	expect_status("error('boom')", 1000, LUAPOOL_E_SCRIPT);
	expect_status("return (", 1000, LUAPOOL_E_COMPILE);
	expect_status("return 0/0", 1000, LUAPOOL_E_RESULT);
	expect_status("return function() end", 1000, LUAPOOL_E_RESULT);
	struct luapool_error err;
	cJSON *r = luapool_submit(pool, "return 1", 8, NULL, &err);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(err.status, LUAPOOL_E_BYTECODE);
}
END_TEST

START_TEST(compile_should_give_bytecode_that_submit_runs)
{
	struct luapool_error err;
	const char *src = "return ctx.n * 3";
	size_t len = 0;
	void *bc = luapool_compile(pool, src, strlen(src), "triple", &len, &err);
	ck_assert_msg(bc != NULL, "%s", err.message);
	ck_assert_int_gt(len, 4);
	ck_assert_mem_eq(bc, "\033LJ", 3);
	struct luapool_context *ctx = luapool_context_new();
	luapool_context_set(ctx, "n", cJSON_CreateNumber(14));
	cJSON *r = luapool_submit(pool, bc, len, ctx, &err);
	ck_assert_msg(r != NULL, "%s", err.message);
	ck_assert_double_eq(r->valuedouble, 42);
	cJSON_Delete(r);
	luapool_context_free(ctx);
	free(bc);
}
END_TEST

static const char *const runaway_jobs[] = {
	"while true do end",
	"local i=0 while true do i=i+1 end",
	"local s=0 for i=1,1e15 do s=s+i%7 end return s",
	"local n=0 while true do n = n + #tostring(n) end",
	"return string.find(string.rep('a',40), string.rep('a*',30)..'b')",
	"while true do pcall(function() while true do end end) end",
};

START_TEST(runaway_jobs_should_stop_at_their_deadline)
{
	const char *src = runaway_jobs[_i];
	int64_t start = support_now_ms();
	expect_status(src, 200, LUAPOOL_E_DEADLINE);
	int64_t took = support_now_ms() - start;
	/* The bound leaves room for a loaded 2-core machine (the stop itself
	 * takes ~3 ms); the job would otherwise run for ages. */
	ck_assert_msg(took >= 195 && took < 1200, "%s: answered after %lld ms", src, (long long)took);
	ck_assert_msg(wait_for_workers(WORKERS, 2000), "%s: pool not back to %d workers in 2 s",
	    src, WORKERS);
	expect_json("return 'alive'", NULL, "\"alive\"");
}
END_TEST

/* The fixture segfaulted LuaJIT before the verifier: now it never reaches
 * LuaJIT, and no worker is lost. */
START_TEST(crashing_bytecode_should_be_refused_without_losing_a_worker)
{
	size_t len;
	char *bc = support_read_file("tests/fixtures/segfault.luac", &len);
	ck_assert_ptr_nonnull(bc);
	for (int i = 0; i < 100; i++) {
		struct luapool_error err;
		cJSON *r = luapool_submit(pool, bc, len, NULL, &err);
		ck_assert_ptr_null(r);
		ck_assert_msg(err.status == LUAPOOL_E_BYTECODE, "run %d: %s", i, err.message);
	}
	free(bc);
	ck_assert(wait_for_workers(WORKERS, 2000));
	struct luapool_stats st;
	luapool_stats(pool, &st);
	ck_assert_uint_eq(st.crashes, 0);
	expect_json("return 6 * 7", NULL, "42");
}
END_TEST

START_TEST(heap_bombs_should_fail_with_memory_and_keep_the_worker)
{
	struct luapool_stats before, after;
	luapool_stats(pool, &before);
	expect_status("local t = {} for i = 1, 1e9 do t[i] = {i} end", 10000, LUAPOOL_E_MEMORY);
	expect_status("return #string.rep('x', 2^31)", 10000, LUAPOOL_E_MEMORY);
	expect_status("local s = 'x' while true do s = s .. s end", 10000, LUAPOOL_E_MEMORY);
	expect_json("return 'still here'", NULL, "\"still here\"");
	luapool_stats(pool, &after);
	ck_assert_uint_eq(after.respawns, before.respawns);
	ck_assert_uint_eq(after.crashes, before.crashes);
}
END_TEST

/* One worker: whatever the first job does, the second sees a clean world. */
START_TEST(a_job_should_leave_no_trace_for_the_next)
{
	teardown();
	start_pool(1, 0);
	const char *vandal =
	    "x = 1; rawset(_G, 'y', 2)\n"
	    "string.upper = function() return 'pwned' end\n"
	    "table.insert = nil; math.floor = nil; os.time = nil\n"
	    "json.encode = nil\n"
	    "pcall(function() getmetatable('').__index = {} end)\n"
	    "pcall(function() getmetatable('').__index.upper = nil end)\n"
	    "pcall(function() getfenv(0).tostring = nil end)\n"
	    "pcall(function() setfenv(print, {}) end)\n"
	    "pcall(function() getfenv(print).tostring = nil end)\n"
	    "pcall(setmetatable, _G, {})\n"
	    "pcall(function() getmetatable(_G).__index = function() return 'pwned' end end)\n"
	    "return true";
	expect_json(vandal, NULL, "true");
	expect_json("return {x = x == nil, y = y == nil, upper = string.upper('a'),"
	    " meta = ('a'):upper(), insert = table.insert ~= nil, floor = math.floor(1.5),"
	    " time = os.time ~= nil, json = json.encode ~= nil, ts = tostring(1)}", NULL,
	    "{\"x\":true,\"y\":true,\"upper\":\"A\",\"meta\":\"A\",\"insert\":true,"
	    "\"floor\":1,\"time\":true,\"json\":true,\"ts\":\"1\"}");
}
END_TEST

START_TEST(forbidden_names_should_be_absent)
{
	static const char *const names[] = {
		"io", "os.execute", "os.getenv", "os.remove", "os.rename", "os.exit",
		"os.tmpname", "dofile", "loadfile", "debug", "ffi",
		"jit", "getfenv", "setfenv", "collectgarbage", "module", "newproxy",
		"string.dump", "math.randomseed", "package.path", "package.cpath",
		"package.loaders", "package.preload", "package.loadlib", "package.seeall",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char src[128];
		snprintf(src, sizeof(src), "return %s == nil", names[i]);
		struct luapool_error err;
		cJSON *r = run_source(src, NULL, 1000, &err);
		ck_assert_msg(r != NULL && cJSON_IsTrue(r), "%s is reachable", names[i]);
		cJSON_Delete(r);
	}
	expect_json("return getmetatable('')", NULL, "false");
	expect_json("return load(string.char(27) .. 'LJ') == nil", NULL, "true");
	expect_json("local f = load('return ctx.v') return f()", "{\"v\":5}", "5");
	/* Loaded through pcall, a chunk still gets the job's environment. */
	expect_json("local ok, f = pcall(load, 'return io == nil and tostring ~= nil') return f()",
	    NULL, "true");
}
END_TEST

START_TEST(require_without_a_module_lookup_should_say_modules_are_not_available)
{
	expect_json("local ok, e = pcall(require, 'lib') return {ok, e}", NULL,
	    "[false, \"modules are not available (require 'lib')\"]");
	/* package.loaded is the job's own: a value put there is what require gives. */
	expect_json("package.loaded.lib = 7 return require('lib')", NULL, "7");
	expect_json("return package.loaded.lib == nil", NULL, "true");
}
END_TEST

static int
pool_worker_pids(pid_t *pids, int max)
{
	return support_children(getpid(), "luapool-worker", pids, max);
}

START_TEST(workers_should_run_under_seccomp_without_new_privileges)
{
	pid_t pids[8];
	int n = pool_worker_pids(pids, 8);
	ck_assert_int_eq(n, WORKERS);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(support_proc_status(pids[i], "Seccomp"), 2);
		ck_assert_int_eq(support_proc_status(pids[i], "NoNewPrivs"), 1);
	}
}
END_TEST

START_TEST(workers_should_die_with_their_supervisor)
{
	teardown();	/* fork only while this process has one thread */
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t child = fork();
	if (child == 0) {
		struct luapool *p = luapool_new(2, NULL);
		pid_t pids[8];
		int n = p ? support_children(getpid(), "luapool-worker", pids, 8) : 0;
		ssize_t unused = write(fds[1], pids, sizeof(pid_t) * (size_t)n);
		(void)unused;
		pause();
		_exit(0);
	}
	close(fds[1]);
	pid_t pids[8];
	ssize_t got = read(fds[0], pids, sizeof(pids));
	close(fds[0]);
	ck_assert_int_eq(got, (ssize_t)(2 * sizeof(pid_t)));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	int64_t end = support_now_ms() + 2000;
	for (int i = 0; i < 2; i++) {
		while (support_process_alive(pids[i]) && support_now_ms() < end)
			usleep(1000);
		ck_assert_msg(!support_process_alive(pids[i]), "worker %d outlived its supervisor",
		    (int)pids[i]);
	}
}
END_TEST

struct thread_work {
	int thread;
	int failures;
};

static void *
submit_many(void *arg)
{
	struct thread_work *tw = arg;
	for (int i = 0; i < 2000; i++) {
		char ctxjson[64];
		snprintf(ctxjson, sizeof(ctxjson), "{\"t\":%d,\"i\":%d}", tw->thread, i);
		struct luapool_error err;
		cJSON *r = run_source("return ctx.t * 100000 + ctx.i", ctxjson, 5000, &err);
		if (r == NULL || r->valuedouble != tw->thread * 100000.0 + i)
			tw->failures++;
		cJSON_Delete(r);
	}
	return NULL;
}

START_TEST(concurrent_submits_should_all_get_their_own_results)
{
	pthread_t threads[8];
	struct thread_work work[8];
	for (int t = 0; t < 8; t++) {
		work[t] = (struct thread_work){ .thread = t };
		ck_assert_int_eq(pthread_create(&threads[t], NULL, submit_many, &work[t]), 0);
	}
	int failures = 0;
	for (int t = 0; t < 8; t++) {
		pthread_join(threads[t], NULL);
		failures += work[t].failures;
	}
	ck_assert_int_eq(failures, 0);
}
END_TEST

struct counter {
	pthread_mutex_t lock;
	int done;
	int ok;
};

static void
count_reply(void *arg, const struct luapool_reply *reply)
{
	struct counter *c = arg;
	pthread_mutex_lock(&c->lock);
	c->done++;
	c->ok += reply->status == LUAPOOL_OK;
	pthread_mutex_unlock(&c->lock);
}

/* A worker retired during a drain (here after every job) is replaced while
 * jobs wait: the drain runs them all instead of hanging. */
START_TEST(shutdown_should_run_queued_jobs_when_workers_retire_meanwhile)
{
	teardown();
	struct luapool_options opts;
	struct luapool_error err;
	luapool_options_init(&opts);
	opts.workers = 1;
	opts.max_jobs_per_worker = 1;
	pool = luapool_new_with(&opts, &err);
	ck_assert_msg(pool != NULL, "%s", err.message);
	struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *request = "{\"source\":\"return 1\"}";
	struct luapool_job job = {
		.kind = LUAPOOL_JOB_EXEC, .request = request, .request_len = strlen(request),
	};
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(luapool_submit_async(pool, &job, count_reply, &c, &err), 0);
	ck_assert_int_eq(luapool_shutdown(pool), 0);
	ck_assert_int_eq(c.done, 3);
	ck_assert_int_eq(c.ok, 3);
	/* Dispatching a shut-down pool does nothing. */
	ck_assert_int_eq(luapool_dispatch(pool), -1);
	luapool_free(pool);
	pool = NULL;
}
END_TEST

START_TEST(a_full_queue_should_refuse_at_once_and_shutdown_should_end_everything)
{
	teardown();
	start_pool(1, 2);
	struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *slow = "{\"source\":\"local t = os.clock() while os.clock() - t < 0.3 do end return 1\"}";
	struct luapool_job job = {
		.kind = LUAPOOL_JOB_EXEC, .request = slow, .request_len = strlen(slow),
		.timeout_ms = 5000,
	};
	struct luapool_error err;
	/* One running, two queued... */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(luapool_submit_async(pool, &job, count_reply, &c, &err), 0);
		if (i == 0) {	/* let the worker take the first */
			struct luapool_stats st;
			int64_t end = support_now_ms() + 10000;
			for (luapool_stats(pool, &st); st.workers_busy == 0 &&
			    support_now_ms() < end; luapool_stats(pool, &st))
				usleep(1000);
			ck_assert_uint_eq(st.workers_busy, 1);
		}
	}
	/* ...and the next is refused without waiting. */
	int64_t start = support_now_ms();
	ck_assert_int_eq(luapool_submit_async(pool, &job, count_reply, &c, &err), -1);
	ck_assert_int_eq(err.status, LUAPOOL_E_OVERLOADED);
	ck_assert_int_lt(support_now_ms() - start, 250);	/* not after the 0.3 s jobs */

	pid_t pids[4];
	ck_assert_int_eq(pool_worker_pids(pids, 4), 1);
	ck_assert_int_eq(luapool_shutdown(pool), 0);
	ck_assert_int_eq(c.done, 3);
	ck_assert_int_eq(c.ok, 3);
	ck_assert_ptr_null(luapool_submit(pool, "\033LJ", 3, NULL, &err));
	ck_assert_int_eq(err.status, LUAPOOL_E_SHUTDOWN);
	ck_assert_int_eq(luapool_submit_async(pool, &job, count_reply, &c, &err), -1);
	ck_assert_int_eq(err.status, LUAPOOL_E_SHUTDOWN);
	ck_assert(!support_process_alive(pids[0]));
	ck_assert_int_eq(pool_worker_pids(pids, 4), 0);
	luapool_free(pool);
	pool = NULL;
}
END_TEST

START_TEST(time_spent_queued_should_count_against_the_deadline)
{
	teardown();
	start_pool(1, 0);
	struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *busy = "{\"source\":\"local t = os.clock() while os.clock() - t < 0.3 do end\"}";
	struct luapool_job job = {
		.kind = LUAPOOL_JOB_EXEC, .request = busy, .request_len = strlen(busy),
		.timeout_ms = 2000,
	};
	ck_assert_int_eq(luapool_submit_async(pool, &job, count_reply, &c, NULL), 0);
	int64_t start = support_now_ms();
	expect_status("return 1", 100, LUAPOOL_E_DEADLINE);
	/* Answered while the job ahead of it still runs, not after it. */
	pthread_mutex_lock(&c.lock);
	int ahead_done = c.done;
	pthread_mutex_unlock(&c.lock);
	ck_assert_int_eq(ahead_done, 0);
	ck_assert_int_lt(support_now_ms() - start, 1000);
	int64_t end = support_now_ms() + 3000;
	while (support_now_ms() < end) {
		pthread_mutex_lock(&c.lock);
		int done = c.done;
		pthread_mutex_unlock(&c.lock);
		if (done)
			break;
		usleep(1000);
	}
}
END_TEST

START_TEST(stats_should_count_jobs_and_cache_use)
{
	for (int i = 0; i < 10; i++)
		expect_json("return 1", NULL, "1");
	struct luapool_stats st;
	luapool_stats(pool, &st);
	ck_assert_uint_ge(st.jobs_by_status[LUAPOOL_OK], 10);
	ck_assert_uint_ge(st.cache_hits, 8);
	ck_assert_uint_le(st.cache_misses, WORKERS);
	ck_assert_uint_eq(st.workers_live, WORKERS);
	ck_assert_uint_eq(st.workers_busy, 0);
}
END_TEST

/* Cached chunks hold their constants: with a small heap, many distinct
 * large chunks leave it over half full after a GC, and the worker is
 * replaced rather than left with little room. */
START_TEST(a_worker_whose_heap_stays_high_should_be_replaced)
{
	teardown();
	struct luapool_options opts;
	struct luapool_error err;
	luapool_options_init(&opts);
	opts.workers = 1;
	opts.memory_limit_mb = 8;
	pool = luapool_new_with(&opts, &err);
	ck_assert_msg(pool != NULL, "%s", err.message);
	size_t size = 200 * 1024;
	char *source = malloc(size + 64);
	int recycled = 0;
	for (int i = 0; i < 60 && !recycled; i++) {
		int n = snprintf(source, 64, "return %d + #\"", i);
		memset(source + n, 'a' + i % 26, size);
		strcpy(source + n + size, "\"");
		cJSON *r = luapool_submit_source(pool, source, strlen(source), NULL, 5000, &err);
		ck_assert_msg(r != NULL, "job %d: %s", i, err.message);
		cJSON_Delete(r);
		struct luapool_stats st;
		luapool_stats(pool, &st);
		recycled = st.recycles > 0;
	}
	free(source);
	ck_assert_msg(recycled, "no worker was replaced");
	ck_assert(wait_for_workers(1, 2000));
	expect_json("return 'fresh'", NULL, "\"fresh\"");
}
END_TEST

static int
count_workers_at_nice(long nice)
{
	pid_t pids[8];
	int n = support_children(getpid(), "luapool-worker", pids, 8), found = 0;
	for (int i = 0; i < n; i++)
		found += support_nice(pids[i]) == nice;
	return found;
}

START_TEST(a_long_job_should_run_at_low_priority_until_it_ends)
{
	struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *slow = "{\"source\":\"local t = os.clock() while os.clock() - t < 0.3 do end\"}";
	struct luapool_job job = { .kind = LUAPOOL_JOB_EXEC, .request = slow,
		.request_len = strlen(slow), .timeout_ms = 5000 };
	ck_assert_int_eq(luapool_submit_async(pool, &job, count_reply, &c, NULL), 0);
	int64_t end = support_now_ms() + 5000;	/* the job holds nice 19 >= 0.3 s */
	while (count_workers_at_nice(19) == 0 && support_now_ms() < end)
		usleep(1000);
	ck_assert_int_eq(count_workers_at_nice(19), 1);
	end = support_now_ms() + 3000;
	for (;;) {
		pthread_mutex_lock(&c.lock);
		int done = c.done;
		pthread_mutex_unlock(&c.lock);
		if (done || support_now_ms() > end)
			break;
		usleep(1000);
	}
	ck_assert_int_eq(c.ok, 1);
	ck_assert(wait_for_workers(WORKERS, 2000));
	/* Restored, or (without the right to) replaced: none stays low. */
	end = support_now_ms() + 1000;
	while (count_workers_at_nice(19) != 0 && support_now_ms() < end)
		usleep(1000);
	ck_assert_int_eq(count_workers_at_nice(19), 0);
	expect_json("return 'normal'", NULL, "\"normal\"");
}
END_TEST

START_TEST(external_dispatch_should_run_jobs_from_the_callers_loop)
{
	teardown();
	struct luapool_options opts;
	struct luapool_error err;
	luapool_options_init(&opts);
	opts.workers = 2;
	opts.external_dispatch = 1;
	pool = luapool_new_with(&opts, &err);
	ck_assert_msg(pool != NULL, "%s", err.message);
	ck_assert_uint_eq(luapool_active_workers(pool), 2);
	struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *req = "{\"source\":\"return ctx.n + 1\",\"context\":{\"n\":41}}";
	struct luapool_job job = { .kind = LUAPOOL_JOB_EXEC, .request = req,
		.request_len = strlen(req) };
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(luapool_submit_async(pool, &job, count_reply, &c, &err), 0);
	int64_t end = support_now_ms() + 5000;
	while (c.done < 50 && support_now_ms() < end) {
		struct pollfd pfd = { .fd = luapool_poll_fd(pool), .events = POLLIN };
		int timeout = luapool_dispatch(pool);
		poll(&pfd, 1, timeout < 0 || timeout > 10 ? 10 : timeout);
	}
	ck_assert_int_eq(c.done, 50);
	ck_assert_int_eq(c.ok, 50);
	/* A blocking submit from the dispatching thread runs the loop itself. */
	expect_json("return 'inline'", NULL, "\"inline\"");
	teardown();
}
END_TEST

static Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, submit_should_run_the_seed_example_from_bytecode);
	tcase_add_test(tc, submit_should_return_null_when_the_script_returns_nothing);
	tcase_add_test(tc, require_without_a_module_lookup_should_say_modules_are_not_available);
	tcase_add_test(tc, errors_should_carry_their_status);
	tcase_add_test(tc, compile_should_give_bytecode_that_submit_runs);
	tcase_add_loop_test(tc, runaway_jobs_should_stop_at_their_deadline, 0,
	    (int)(sizeof(runaway_jobs) / sizeof(runaway_jobs[0])));
	tcase_add_test(tc, crashing_bytecode_should_be_refused_without_losing_a_worker);
	tcase_add_test(tc, heap_bombs_should_fail_with_memory_and_keep_the_worker);
	tcase_add_test(tc, a_job_should_leave_no_trace_for_the_next);
	tcase_add_test(tc, forbidden_names_should_be_absent);
	tcase_add_test(tc, workers_should_run_under_seccomp_without_new_privileges);
	tcase_add_test(tc, workers_should_die_with_their_supervisor);
	tcase_add_test(tc, concurrent_submits_should_all_get_their_own_results);
	tcase_add_test(tc, a_full_queue_should_refuse_at_once_and_shutdown_should_end_everything);
	tcase_add_test(tc, time_spent_queued_should_count_against_the_deadline);
	tcase_add_test(tc, stats_should_count_jobs_and_cache_use);
	tcase_add_test(tc, external_dispatch_should_run_jobs_from_the_callers_loop);
	tcase_add_test(tc, a_worker_whose_heap_stays_high_should_be_replaced);
	tcase_add_test(tc, a_long_job_should_run_at_low_priority_until_it_ends);
	tcase_add_test(tc, shutdown_should_run_queued_jobs_when_workers_retire_meanwhile);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pool_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
