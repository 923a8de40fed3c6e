/*
 * test_trust.c - client bytecode against the real luapoold over HTTP: the
 * attacks docs/SECURITY.md lists, each as a request a hostile client can
 * send.  A chunk reading constants past its prototype, a dumped closure
 * carrying state from one client to the next, a storm of mutated chunks
 * beside correct requests, addresses leaking through tostring and
 * string.format, and a worker that must be replaced (with its reason in
 * /metrics).  Chunks are made at test time with the machine's luajit.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

/* Chunks made with luajit -b ---------------------------------------------- */


/* string.dump of the function `expression` evaluates to, by luajit itself. */
static unsigned char *
luajit_dump(const char *expression, size_t *len)
{
	char path[96], program[1024];
	snprintf(path, sizeof(path), "%s/dump.luac", apitest_scratch);
	snprintf(program, sizeof(program), "local f = (function() %s end)() "
	    "local o = assert(io.open('%s', 'wb')) o:write(string.dump(f)) o:close()",
	    expression, path);
	char luajit[] = "/usr/bin/luajit", option[] = "-e";
	char *argv[] = { luajit, option, program, NULL };
	int status;
	char *o, *e;
	ck_assert_int_eq(support_run(argv, 10000, &status, &o, &e), 0);
	ck_assert_msg(status == 0, "luajit -e failed: %s", e ? e : "");
	free(o);
	free(e);
	unsigned char *bc = (unsigned char *)support_read_file(path, len);
	ck_assert_ptr_nonnull(bc);
	return bc;
}


/* {"bytecode": b64, "context": context, "timeout_ms": timeout_ms (if not 0)} */
static char *
timed_bytecode_request(const unsigned char *bc, size_t len, const char *context_json,
    unsigned timeout_ms)
{
	char *b64 = apitest_encode_base64(bc, len, 0, 1, 0);
	size_t size = strlen(b64) + (context_json ? strlen(context_json) : 0) + 96;
	char *body = malloc(size);
	int n = snprintf(body, size, "{\"bytecode\":\"%s\",\"context\":%s", b64,
	    context_json ? context_json : "{}");
	if (timeout_ms)
		n += snprintf(body + n, size - (size_t)n, ",\"timeout_ms\":%u", timeout_ms);
	snprintf(body + n, size - (size_t)n, "}");
	free(b64);
	return body;
}

static char *
bytecode_request(const unsigned char *bc, size_t len, const char *context_json)
{
	return timed_bytecode_request(bc, len, context_json, 0);
}

static void
setup_one_worker(void)
{
	apitest_setup();
	apitest_make_scratch_dir();
	static const char *const options[] = { "--workers", "1", NULL };
	apitest_start(options);
}

/* 1. Constants read past the prototype ------------------------------------ */

START_TEST(a_knum_index_past_the_constants_should_get_400_invalid_bytecode)
{
	size_t len;
	unsigned char *bc = apitest_luajit_compile("local x = 0.123456 return x", "-b", &len);
	struct httpc_response r;
	char *body = bytecode_request(bc, len, NULL);
	post_json("/v1/exec", body, &r);
	expect_json(&r, 200, "{\"result\":0.123456}");
	httpc_response_free(&r);
	free(body);

	/* KNUM 0 0 then RET1 0 2: point KNUM at constant 6001 of 1. */
	int knum = apitest_opcode_named("KNUM"), ret1 = apitest_opcode_named("RET1");
	size_t at = 0;
	for (size_t i = 0; i + 8 <= len; i++)
		if (bc[i] == knum && bc[i + 1] == 0 && bc[i + 2] == 0 && bc[i + 3] == 0 &&
		    bc[i + 4] == ret1 && bc[i + 5] == 0 && bc[i + 6] == 2 && bc[i + 7] == 0)
			at = i;
	ck_assert_msg(at > 0, "KNUM not found");
	bc[at + 2] = 6001 & 0xff;
	bc[at + 3] = 6001 >> 8;
	body = bytecode_request(bc, len, NULL);
	post_json("/v1/exec", body, &r);
	cJSON *doc = parse_problem(&r, 400, "invalid_bytecode");
	const char *detail = apitest_string_member(doc, "detail");
	ck_assert_msg(detail && strstr(detail, "pc") && strstr(detail, "6001"), "detail: %s", detail);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	free(body);
	free(bc);
	expect_hello_works();
}
END_TEST

/* The attack as reported: 4,000 KNUMs each reading a constant past the end. */
START_TEST(a_chunk_reading_far_past_its_constants_should_get_400_and_steal_nothing)
{
	size_t srclen = 4000 * 16 + 64, len;
	char *source = malloc(srclen);
	strcpy(source, "local function chk(x) return x end\n");
	for (int i = 0; i < 4000; i++)
		strcat(source, "chk(0.123456)\n");
	unsigned char *bc = apitest_luajit_compile(source, "-b", &len);
	free(source);
	int knum = apitest_opcode_named("KNUM");
	int patched = 0;
	for (size_t i = 0; i + 4 <= len && patched < 4000; i++) {
		if (bc[i] == knum && bc[i + 2] == 0 && bc[i + 3] == 0 && bc[i + 1] < 8) {
			unsigned index = 6001 + (unsigned)patched * 4000u / 4000u;
			bc[i + 2] = index & 0xff;
			bc[i + 3] = (unsigned char)(index >> 8);
			patched++;
			i += 3;
		}
	}
	ck_assert_int_gt(patched, 1000);
	char *body = bytecode_request(bc, len, NULL);
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	expect_problem(&r, 400, "invalid_bytecode");
	httpc_response_free(&r);
	free(body);
	free(bc);
	/* Another client's context stays its own. */
	post_json("/v1/exec", "{\"source\":\"return ctx.card\",\"context\":{\"card\":\"4111\"}}", &r);
	expect_json(&r, 200, "{\"result\":\"4111\"}");
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"return __stolen\"}", &r);
	expect_json(&r, 200, "{\"result\":null}");
	httpc_response_free(&r);
}
END_TEST

/* 2. Nothing survives a job ----------------------------------------------- */

START_TEST(a_dumped_closure_should_give_each_client_only_its_own_value)
{
	size_t len;
	unsigned char *bc = luajit_dump("local acc return function() "
	    "acc = (acc or '') .. ctx.who .. ';' return acc end", &len);
	static const char *const who[] = { "alice", "bob", "carol", "dave" };
	for (int i = 0; i < 4; i++) {
		char context[64], expected[64];
		snprintf(context, sizeof(context), "{\"who\":\"%s\"}", who[i]);
		snprintf(expected, sizeof(expected), "{\"result\":\"%s;\"}", who[i]);
		char *body = bytecode_request(bc, len, context);
		struct httpc_response r;
		post_json("/v1/exec", body, &r);
		expect_json(&r, 200, expected);
		httpc_response_free(&r);
		free(body);
	}
	free(bc);
}
END_TEST

START_TEST(tostring_and_format_should_show_no_address)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"local t = {} return tostring(t) .. ' ' .. "
	    "tostring(pairs) .. ' ' .. tostring(t) .. ' ' .. string.format('%s', {}) .. "
	    "' ' .. ('%s'):format(coroutine.create(print or pairs))\"}", &r);
	expect_json(&r, 200, "{\"result\":\"table: 0x00000001 function: 0x00000002 "
	    "table: 0x00000001 table: 0x00000003 thread: 0x00000004\"}");
	httpc_response_free(&r);
	/* Numbers start again with the next job. */
	post_json("/v1/exec", "{\"source\":\"return tostring({})\"}", &r);
	expect_json(&r, 200, "{\"result\":\"table: 0x00000001\"}");
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"return string.format('%5p', 'x')\"}", &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	ck_assert_ptr_nonnull(strstr(apitest_string_member(doc, "detail"), "%p"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	/* __tostring still wins, and plain values print as before. */
	post_json("/v1/exec", "{\"source\":\"return tostring(setmetatable({}, {__tostring = "
	    "function() return 'mine' end})) .. tostring(1.5) .. tostring(nil)\"}", &r);
	expect_json(&r, 200, "{\"result\":\"mine1.5nil\"}");
	httpc_response_free(&r);
}
END_TEST

START_TEST(a_job_should_not_reach_the_next_jobs_environment)
{
	struct httpc_response r;
	/* Everything a job can get at through its environment. */
	post_json("/v1/exec", "{\"source\":\"_G.leak = 1 string.leak = 2 "
	    "pcall(setmetatable, _G, {__index = function() return 'x' end}) "
	    "return getmetatable(_G)\"}", &r);
	expect_json(&r, 200, "{\"result\":false}");
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"return leak == nil and string.leak == nil and "
	    "nothing == nil\"}", &r);
	expect_json(&r, 200, "{\"result\":true}");
	httpc_response_free(&r);
}
END_TEST

/* 3. A damaged worker never serves again ---------------------------------- */

static long
metric_value(const char *series)
{
	struct httpc_response r;
	get_path("/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	const char *at = strstr(r.body, series);
	long v = at ? strtol(at + strlen(series), NULL, 10) : -1;
	httpc_response_free(&r);
	return v;
}

START_TEST(a_request_that_fills_the_heap_should_replace_its_worker)
{
	apitest_make_scratch_dir();
	static const char *const options[] = { "--workers", "1", "--memory-limit-mb", "4",
		"--max-body-bytes", "16777216", NULL };
	apitest_start(options);
	const char *series = "luapoold_worker_replacements_total{reason=\"memory\"} ";
	ck_assert_int_eq(metric_value(series), 0);
	size_t n = 6u << 20;
	char *body = malloc(n + 64);
	int k = snprintf(body, n + 64, "{\"source\":\"return 1\",\"context\":{\"s\":\"");
	memset(body + k, 'a', n);
	strcpy(body + k + n, "\"}}");
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	expect_problem(&r, 422, "memory_limit_exceeded");
	httpc_response_free(&r);
	free(body);
	ck_assert_int_eq(metric_value(series), 1);
	expect_hello_works();
}
END_TEST

/* A cached chunk used to keep its last job's environment (globals, ctx)
 * alive until it ran again: a big global then made every later job look
 * like a high heap.  And a full collection near the heap limit, run
 * outside protected mode, could end the worker. */
START_TEST(a_jobs_globals_should_die_with_the_job)
{
	apitest_make_scratch_dir();
	static const char *const options[] = { "--workers", "1", "--memory-limit-mb", "32", NULL };
	apitest_start(options);
	struct httpc_response r;
	for (int i = 0; i < 3; i++) {	/* 16 MiB of array (8-byte slots), half the heap */
		post_json("/v1/exec", "{\"source\":\"big = {} for i = 1, 2000000 do big[i] = i end "
		    "return #big\"}", &r);
		expect_json(&r, 200, "{\"result\":2000000}");
		httpc_response_free(&r);
	}
	ck_assert_int_eq(metric_value("luapoold_worker_replacements_total{reason=\"heap_high\"} "), 0);
	post_json("/v1/exec", "{\"source\":\"local tmp = {} for i = 1, 200000 do tmp[i] = 'k' .. i end "
	    "tmp = nil big = {} pcall(function() for i = 1, 1e9 do big[i] = {i} end end) "
	    "return #big > 0\",\"timeout_ms\":30000}", &r);
	expect_json(&r, 200, "{\"result\":true}");
	httpc_response_free(&r);
	ck_assert_int_eq(metric_value("luapoold_worker_crashes_total "), 0);
	expect_hello_works();
}
END_TEST

/* With bytecode_jit = no, client bytecode stays in the interpreter, where
 * the soft stop works: a loop the JIT would compile (and only a hard stop
 * could end) is stopped softly, and its worker lives on. */
static void
expect_bytecode_loop_stopped(const char *jit, const char *stop_kind, const char *other_kind)
{
	apitest_make_scratch_dir();
	const char *const options[] = { "--workers", "1", "--bytecode-jit", jit, NULL };
	apitest_start(options);
	size_t len;
	unsigned char *bc = apitest_luajit_compile("local s = 0 for i = 1, 1e15 do s = s + i % 7 end "
	    "return s", "-b", &len);
	char *body = timed_bytecode_request(bc, len, NULL, 200);
	char series[128], other[128];
	snprintf(series, sizeof(series), "luapoold_deadline_stops_total{kind=\"%s\"} ", stop_kind);
	snprintf(other, sizeof(other), "luapoold_deadline_stops_total{kind=\"%s\"} ", other_kind);
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	expect_problem(&r, 504, "deadline_exceeded");
	httpc_response_free(&r);
	ck_assert_int_eq(metric_value(series), 1);
	ck_assert_int_eq(metric_value(other), 0);
	/* Source jobs keep the JIT either way. */
	post_json("/v1/exec", "{\"source\":\"local s = 0 for i = 1, 1e5 do s = s + i end "
	    "return s\"}", &r);
	expect_json(&r, 200, "{\"result\":5000050000}");
	httpc_response_free(&r);
	free(body);
	free(bc);
}

START_TEST(client_bytecode_should_stay_in_the_interpreter_without_bytecode_jit)
{
	expect_bytecode_loop_stopped("no", "soft", "hard");
}
END_TEST

START_TEST(client_bytecode_loops_should_need_the_hard_stop_with_bytecode_jit)
{
	expect_bytecode_loop_stopped("yes", "hard", "soft");
}
END_TEST

/* 4. A storm of mutated bytecode costs correct requests nothing ------------ */

struct storm {
	atomic_int stop;
	atomic_long correct_ok, correct_failed, mutated_sent;
	unsigned char *chunks[4];
	size_t lens[4];
	char first_failure[256];
	pthread_mutex_t lock;
};

static void *
send_mutated(void *arg)
{
	struct storm *s = arg;
	unsigned seed = (unsigned)(uintptr_t)pthread_self();
	unsigned char *copy = malloc(65536);
	while (!atomic_load(&s->stop)) {
		int c = (int)(rand_r(&seed) % 4);
		size_t len = s->lens[c];
		memcpy(copy, s->chunks[c], len);
		int edits = 1 + (int)(rand_r(&seed) % 4);
		for (int e = 0; e < edits && len > 8; e++) {
			size_t at = 5 + (size_t)rand_r(&seed) % (len - 5);
			switch (rand_r(&seed) % 3) {
			case 0: copy[at] ^= (unsigned char)(1u << (rand_r(&seed) % 8)); break;
			case 1: copy[at] = (unsigned char)rand_r(&seed); break;
			default: len = at; break;
			}
		}
		/* A mutated jump may loop until its deadline: keep it short, so
		 * what is measured is damage, not workers being busy. */
		char *body = timed_bytecode_request(copy, len, "{\"n\":3}", 50);
		struct httpc_response r;
		if (httpc_request(apitest_server.port, "POST", "/v1/exec", JSON_HEADERS, body,
		    strlen(body), &r) == 0)
			httpc_response_free(&r);
		free(body);
		atomic_fetch_add(&s->mutated_sent, 1);
	}
	free(copy);
	return NULL;
}

static void *
send_correct(void *arg)
{
	struct storm *s = arg;
	char *good = timed_bytecode_request(s->chunks[0], s->lens[0], "{\"n\":3}", 10000);
	for (int i = 0; !atomic_load(&s->stop); i++) {
		const char *body = i % 2 ? good : "{\"source\":\"return ctx.n * 2\",\"context\":{\"n\":3},"
		    "\"timeout_ms\":10000}";
		const char *expected = i % 2 ? "{\"result\":[1,3,\"x\"]}" : "{\"result\":6}";
		struct httpc_response r;
		int rc = httpc_request(apitest_server.port, "POST", "/v1/exec", JSON_HEADERS, body,
		    strlen(body), &r);
		if (rc == 0 && r.status == 200 && strcmp(r.body, expected) == 0) {
			atomic_fetch_add(&s->correct_ok, 1);
		} else {
			pthread_mutex_lock(&s->lock);
			if (s->first_failure[0] == '\0')
				snprintf(s->first_failure, sizeof(s->first_failure), "%d %s", r.status,
				    rc == 0 ? r.body : "(no answer)");
			pthread_mutex_unlock(&s->lock);
			atomic_fetch_add(&s->correct_failed, 1);
		}
		if (rc == 0)
			httpc_response_free(&r);
	}
	free(good);
	return NULL;
}

START_TEST(a_storm_of_mutated_bytecode_should_fail_no_correct_request)
{
	apitest_make_scratch_dir();
	static const char *const options[] = { "--workers", "2", NULL };
	apitest_start(options);
	struct storm s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	s.chunks[0] = apitest_luajit_compile("return {1, ctx.n, 'x'}", "-b", &s.lens[0]);
	s.chunks[1] = apitest_luajit_compile("local t = {} for i = 1, ctx.n do t[i] = i * 2 end "
	    "local s = 0 for _, v in ipairs(t) do s = s + v end return s", "-bg", &s.lens[1]);
	s.chunks[2] = luajit_dump("local up = 0 return function() up = up + 1 "
	    "local f = function(a) return a .. up end return f('x'), #ctx end", &s.lens[2]);
	s.chunks[3] = apitest_luajit_compile("local s = '' for k, v in pairs({a=1, b=2}) do "
	    "s = s .. k .. v end while #s < 10 do s = s .. '.' end repeat s = s .. '!' "
	    "until #s > 12 return s:upper()", "-b", &s.lens[3]);
	const char *env = getenv("LUAPOOL_STORM_SECONDS");
	int seconds = env ? atoi(env) : 20;
	pthread_t bad[3], good[2];
	for (int i = 0; i < 3; i++)
		pthread_create(&bad[i], NULL, send_mutated, &s);
	for (int i = 0; i < 2; i++)
		pthread_create(&good[i], NULL, send_correct, &s);
	int64_t until = support_now_ms() + seconds * 1000LL;
	while (support_now_ms() < until)
		usleep(100000);
	atomic_store(&s.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(bad[i], NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(good[i], NULL);
	printf("storm: %ld mutated chunks, %ld correct requests ok, %ld failed\n",
	    (long)s.mutated_sent, (long)s.correct_ok, (long)s.correct_failed);
	ck_assert_msg(s.correct_failed == 0, "%ld correct requests failed; first: %s",
	    (long)s.correct_failed, s.first_failure);
	ck_assert_int_gt(s.correct_ok, 10);
	ck_assert_int_gt(s.mutated_sent, 10);
	for (int i = 0; i < 4; i++)
		free(s.chunks[i]);
	expect_hello_works();
}
END_TEST

static Suite *
trust_suite(void)
{
	Suite *s = suite_create("trust");
	TCase *one = tcase_create("one worker");
	tcase_add_checked_fixture(one, setup_one_worker, apitest_teardown);
	tcase_set_timeout(one, TEST_TIMEOUT_S);
	tcase_add_test(one, a_knum_index_past_the_constants_should_get_400_invalid_bytecode);
	tcase_add_test(one, a_chunk_reading_far_past_its_constants_should_get_400_and_steal_nothing);
	tcase_add_test(one, a_dumped_closure_should_give_each_client_only_its_own_value);
	tcase_add_test(one, tostring_and_format_should_show_no_address);
	tcase_add_test(one, a_job_should_not_reach_the_next_jobs_environment);
	suite_add_tcase(s, one);
	TCase *own = tcase_create("own server");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S + 30);
	tcase_add_test(own, a_request_that_fills_the_heap_should_replace_its_worker);
	tcase_add_test(own, a_jobs_globals_should_die_with_the_job);
	tcase_add_test(own, client_bytecode_should_stay_in_the_interpreter_without_bytecode_jit);
	tcase_add_test(own, client_bytecode_loops_should_need_the_hard_stop_with_bytecode_jit);
	tcase_add_test(own, a_storm_of_mutated_bytecode_should_fail_no_correct_request);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(trust_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
