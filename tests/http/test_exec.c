/*
 * test_exec.c - the integration suite for the routes that run code: the
 * real luapoold on a free port of 127.0.0.1 (tests/support/apitest.h),
 * driven over real HTTP.  POST /v1/exec and /v1/compile with source,
 * bytecode and every base64 dialect; every error code they answer (400,
 * 422, 500, 504) with its body; and runaway, crashing, killed and queued
 * jobs, the other requests being served meanwhile.  Never tests the server
 * as a whole (test_server.c) nor the script store (test_scripts_api.c).
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/base64.h"
#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

/* Exec: the seed example, bytecode, base64 dialects ------------------------ */

START_TEST(exec_should_answer_the_seed_example)
{
	struct httpc_response r;
	post_json("/v1/exec", HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	ck_assert_str_eq(r.body, "{\"result\":\"Hello from Lua\"}");
	httpc_response_free(&r);
}
END_TEST

START_TEST(exec_should_run_the_bytecode_fixture)
{
	char *b64 = apitest_fixture_base64(HELLO_FIXTURE);
	char *body = apitest_hello_request("bytecode", b64);
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	cJSON_free(body);
	free(b64);
}
END_TEST

START_TEST(exec_should_accept_a_form_content_type)
{
	struct httpc_response r;
	ask("POST", "/v1/exec", "Content-Type: application/x-www-form-urlencoded\r\n",
	    HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	ask("POST", "/v1/exec", NULL, HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
}
END_TEST

/* Runs bytecode (raw bytes) sent in one base64 dialect. */
static void
expect_bytecode_dialect_runs_at(int line, const void *bc, size_t len, int url_safe, int padding,
    size_t line_len)
{
	char *b64 = apitest_encode_base64(bc, len, url_safe, padding, line_len);
	char *body = apitest_hello_request("bytecode", b64);
	struct httpc_response r;
	apitest_ask_at(line, "POST", "/v1/exec",
	    "Content-Type: application/x-www-form-urlencoded\r\n", body, &r);
	apitest_expect_json_at(line, &r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	cJSON_free(body);
	free(b64);
}
#define expect_bytecode_dialect_runs(bc, len, u, p, l) \
	expect_bytecode_dialect_runs_at(__LINE__, bc, len, u, p, l)

START_TEST(exec_should_accept_url_safe_unpadded_and_wrapped_base64)
{
	size_t len = 0;
	char *bc = support_read_file(HELLO_FIXTURE, &len);
	ck_assert_ptr_nonnull(bc);
	expect_bytecode_dialect_runs(bc, len, 1, 0, 0);
	expect_bytecode_dialect_runs(bc, len, 0, 0, 76);
	expect_bytecode_dialect_runs(bc, len, 1, 0, 76);
	free(bc);

	/* A chunk longer than one line whose encoding has '+' or '/': the
	 * 0xff bytes of its string constant guarantee "////". */
	char *request = apitest_source_request("local pad = \"\\255\\255\\255\\255\\255\\255\" "
	    HELLO_SOURCE, 0);
	struct httpc_response r;
	post_json("/v1/compile", request, &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	const char *b64 = apitest_string_member(doc, "bytecode");
	ck_assert_ptr_nonnull(b64);
	ck_assert_msg(strlen(b64) > 76 && strpbrk(b64, "+/"), "bytecode: %s", b64);
	unsigned char *raw = malloc(base64_decoded_max(strlen(b64)));
	long n = base64_decode(b64, strlen(b64), raw);
	ck_assert_int_gt(n, 0);
	expect_bytecode_dialect_runs(raw, (size_t)n, 1, 0, 76);
	expect_bytecode_dialect_runs(raw, (size_t)n, 0, 1, 76);
	expect_bytecode_dialect_runs(raw, (size_t)n, 1, 1, 0);
	free(raw);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(request);
}
END_TEST

/* Compile ------------------------------------------------------------------ */

START_TEST(compile_should_return_bytecode_that_exec_runs)
{
	struct httpc_response r;
	char *request = apitest_source_request(HELLO_SOURCE, 0);
	post_json("/v1/compile", request, &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	const char *b64 = apitest_string_member(doc, "bytecode");
	ck_assert_ptr_nonnull(b64);
	unsigned char raw[4096];
	ck_assert_uint_lt(base64_decoded_max(strlen(b64)), sizeof(raw));
	long n = base64_decode(b64, strlen(b64), raw);
	ck_assert_int_gt(n, 4);
	ck_assert_int_eq(memcmp(raw, "\033LJ", 3), 0);
	char *body = apitest_hello_request("bytecode", b64);
	struct httpc_response run;
	post_json("/v1/exec", body, &run);
	expect_json(&run, 200, HELLO_RESULT);
	httpc_response_free(&run);
	cJSON_free(body);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(request);
}
END_TEST

/* Every error code of exec, compile and PUT -------------------------------- */

START_TEST(bad_json_should_answer_400_invalid_json)
{
	expect_post_problem("/v1/exec", "{\"source\": \"return 1\"", 400, "invalid_json");
	expect_post_problem("/v1/exec", "{'source': 1}", 400, "invalid_json");
	expect_post_problem("/v1/exec", "", 400, "invalid_json");
	expect_post_problem("/v1/compile", "", 400, "invalid_json");
	struct httpc_response r;
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{", &r);
	expect_problem(&r, 400, "invalid_json");
	httpc_response_free(&r);

	size_t depth = 100000;
	char *nested = malloc(depth + 1);
	memset(nested, '[', depth);
	nested[depth] = '\0';
	expect_post_problem("/v1/exec", nested, 400, "invalid_json");
	expect_post_problem("/v1/compile", nested, 400, "invalid_json");
	free(nested);
	expect_hello_works();
}
END_TEST

START_TEST(bad_requests_should_answer_400_invalid_request)
{
	expect_post_problem("/v1/exec", "{\"source\":5}", 400, "invalid_request");
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"timeout_ms\":\"x\"}", 400,
	    "invalid_request");
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"timeout_ms\":60001}", 400,
	    "invalid_request");
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"context\":5}", 400,
	    "invalid_request");
	expect_post_problem("/v1/exec", "[1]", 400, "invalid_request");
	expect_post_problem("/v1/exec", "{}", 400, "invalid_request");
	expect_post_problem("/v1/compile", "{\"source\":false}", 400, "invalid_request");
	struct httpc_response r;
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{\"source\":5}", &r);
	expect_problem(&r, 400, "invalid_request");
	httpc_response_free(&r);
	ask("PUT", "/v1/scripts/.hidden", JSON_HEADERS, "{\"source\":\"return 1\"}", &r);
	expect_problem(&r, 400, "invalid_request");
	httpc_response_free(&r);
	expect_hello_works();
}
END_TEST

START_TEST(bad_bytecode_should_answer_400_invalid_base64_or_invalid_bytecode)
{
	struct httpc_response r;
	expect_post_problem("/v1/exec", "{\"bytecode\":\"!!!not base64!!!\"}", 400,
	    "invalid_base64");
	/* "hello world": valid base64, not bytecode. */
	expect_post_problem("/v1/exec", "{\"bytecode\":\"aGVsbG8gd29ybGQ=\"}", 400,
	    "invalid_bytecode");
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{\"bytecode\":\"@@@@\"}", &r);
	expect_problem(&r, 400, "invalid_base64");
	httpc_response_free(&r);
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{\"bytecode\":\"aGVsbG8gd29ybGQ=\"}", &r);
	expect_problem(&r, 400, "invalid_bytecode");
	httpc_response_free(&r);
	/* Truncated bytecode: the right header, a body cut short. */
	expect_post_problem("/v1/exec", "{\"bytecode\":\"G0xKAgoxAgACAAMABTYA\"}", 400,
	    "invalid_bytecode");
	expect_hello_works();
}
END_TEST

START_TEST(bad_source_should_answer_400_compile_error)
{
	struct httpc_response r;
	expect_post_problem("/v1/exec", "{\"source\":\"return +\"}", 400, "compile_error");
	expect_post_problem("/v1/compile", "{\"source\":\"local = 1\"}", 400, "compile_error");
	ask("PUT", "/v1/scripts/broken", JSON_HEADERS, "{\"source\":\"end end\"}", &r);
	expect_problem(&r, 400, "compile_error");
	httpc_response_free(&r);
	get_path("/v1/scripts/broken", &r);
	expect_problem(&r, 404, "unknown_script");
	httpc_response_free(&r);
	expect_hello_works();
}
END_TEST

START_TEST(script_failures_should_answer_422)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"local function f() error('boom') end f()\"}", &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	ck_assert_ptr_nonnull(strstr(apitest_string_member(doc, "message"), "boom"));
	const char *traceback = apitest_string_member(doc, "traceback");
	ck_assert_ptr_nonnull(traceback);
	ck_assert_ptr_nonnull(strstr(traceback, "stack traceback"));
	cJSON_Delete(doc);
	httpc_response_free(&r);

	expect_post_problem("/v1/exec", "{\"source\":\"return function() end\"}", 422,
	    "result_not_serializable");
	expect_post_problem("/v1/exec", "{\"source\":\"return 0/0\"}", 422,
	    "result_not_serializable");
	expect_post_problem("/v1/exec", "{\"source\":\"local t = {} t.self = t return t\"}", 422,
	    "result_not_serializable");
	expect_hello_works();
}
END_TEST

/* The fixture segfaulted LuaJIT before the verifier (docs/SECURITY.md). */
START_TEST(crashing_bytecode_should_answer_400_and_the_next_request_succeed)
{
	char *b64 = apitest_fixture_base64(SEGFAULT_FIXTURE);
	char *body = apitest_hello_request("bytecode", b64);
	for (int i = 0; i < 2; i++) {
		expect_post_problem("/v1/exec", body, 400, "invalid_bytecode");
		expect_hello_works();
	}
	cJSON_free(body);
	free(b64);
}
END_TEST

START_TEST(deadline_should_answer_504)
{
	expect_post_problem("/v1/exec", "{\"source\":\"local t=os.clock() "
	    "while os.clock()-t<5 do end\",\"timeout_ms\":100}", 504, "deadline_exceeded");
	/* A script that catches the soft stop is stopped again. */
	expect_post_problem("/v1/exec", "{\"source\":\"for i=1,10 do pcall(function() "
	    "local t=os.clock() while os.clock()-t<5 do end end) end\",\"timeout_ms\":100}",
	    504, "deadline_exceeded");
	expect_hello_works();
}
END_TEST

/* Runaway, crashed and killed workers -------------------------------------- */

struct hello_loop {
	unsigned port;
	atomic_int stop;
	atomic_int ok, bad;
	int last_bad_status;	/* read after the join */
};

/* Hello requests on one keep-alive connection until told to stop. */
static void *
run_hello_loop(void *arg)
{
	struct hello_loop *h = arg;
	int fd = -1;
	while (!atomic_load(&h->stop)) {
		struct httpc_response r;
		memset(&r, 0, sizeof(r));
		if (fd == -1)
			fd = httpc_connect(h->port, HTTPC_TIMEOUT_MS);
		int rc = fd == -1 ? -1 : httpc_send_request(fd, "POST", "/v1/exec", JSON_HEADERS,
		    HELLO_BODY, strlen(HELLO_BODY));
		if (rc == 0)
			rc = httpc_read_response(fd, &r);
		if (rc == 0 && r.status == 200 && strcmp(r.body, HELLO_RESULT) == 0) {
			atomic_fetch_add(&h->ok, 1);
		} else {
			atomic_fetch_add(&h->bad, 1);
			h->last_bad_status = r.status;
		}
		if ((rc == -1 || httpc_closes(&r)) && fd != -1) {
			close(fd);
			fd = -1;
		}
		httpc_response_free(&r);
	}
	if (fd != -1)
		close(fd);
	return NULL;
}

static void
wait_for_hellos_at(int line, struct hello_loop *h, int count)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (atomic_load(&h->ok) < count) {
		ck_assert_msg(support_now_ms() < deadline && atomic_load(&h->bad) == 0,
		    "line %d: hello loop: %d ok, %d failed", line, atomic_load(&h->ok),
		    atomic_load(&h->bad));
		usleep(1000);
	}
}
#define wait_for_hellos(h, n) wait_for_hellos_at(__LINE__, h, n)

START_TEST(runaway_loop_should_answer_504_in_time_while_others_are_served)
{
	struct hello_loop h = { .port = apitest_server.port };
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, run_hello_loop, &h), 0);
	wait_for_hellos(&h, 3);

	int64_t start = support_now_ms();
	int fd = send_on_new_connection("/v1/exec",
	    "{\"source\":\"while true do end\",\"timeout_ms\":200}");
	int ok_before = atomic_load(&h.ok);
	struct httpc_response r;
	read_answer(fd, &r);
	int64_t elapsed = support_now_ms() - start;
	int ok_during = atomic_load(&h.ok) - ok_before;
	/* The replacement worker takes its share too. */
	wait_for_hellos(&h, atomic_load(&h.ok) + 20);
	atomic_store(&h.stop, 1);
	pthread_join(thread, NULL);
	close(fd);

	expect_problem(&r, 504, "deadline_exceeded");
	httpc_response_free(&r);
	ck_assert_msg(elapsed < 1200, "504 after %lld ms", (long long)elapsed);
	ck_assert_msg(ok_during > 0, "no hello answered while the loop ran");
	ck_assert_msg(atomic_load(&h.bad) == 0, "%d hello requests failed (last status %d)",
	    atomic_load(&h.bad), h.last_bad_status);
	expect_hello_works();
}
END_TEST

static int
pid_in(pid_t pid, const pid_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return 1;
	return 0;
}

/* Polls until the daemon has `count` worker children none of which is in
 * `old`, and /healthz reports them. */
static void
wait_for_fresh_workers_at(int line, int count, const pid_t *old, int old_count)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	for (;;) {
		pid_t now[16];
		int n = support_children(apitest_server.pid, "luapool-worker", now, 16), fresh = 0;
		for (int i = 0; i < n; i++)
			fresh += !pid_in(now[i], old, old_count);
		if (n == count && fresh == count) {
			struct httpc_response r;
			char expected[64];
			snprintf(expected, sizeof(expected), "{\"status\":\"ok\",\"workers\":%d}",
			    count);
			get_path("/healthz", &r);
			int ready = r.status == 200 && strcmp(r.body, expected) == 0;
			httpc_response_free(&r);
			if (ready)
				return;
		}
		ck_assert_msg(support_now_ms() < deadline, "line %d: %d fresh workers of %d after "
		    "%d ms", line, fresh, count, WAIT_MS);
		usleep(POLL_STEP_US);
	}
}

START_TEST(killed_busy_worker_should_answer_500_and_be_replaced)
{
	int fd = send_on_new_connection("/v1/exec",
	    "{\"source\":\"while true do end\",\"timeout_ms\":10000}");
	wait_for_busy_workers(1);
	pid_t killed[16];
	int n = support_children(apitest_server.pid, "luapool-worker", killed, 16);
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(kill(killed[i], SIGKILL), 0);

	int64_t start = support_now_ms();
	struct httpc_response r;
	read_answer(fd, &r);
	close(fd);
	cJSON *doc = parse_problem(&r, 500, "worker_crashed");
	ck_assert_ptr_nonnull(strstr(apitest_string_member(doc, "detail"), "SIGKILL"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	ck_assert_msg(support_now_ms() - start < 2000, "the crash was noticed after %lld ms",
	    (long long)(support_now_ms() - start));

	wait_for_fresh_workers_at(__LINE__, 2, killed, n);
	expect_hello_works();
	expect_hello_works();
}
END_TEST

/* Deadlines in the queue --------------------------------------------------- */

/* A job waiting behind a slow one is answered at its own deadline, from
 * the queue, not when the worker frees up. */
START_TEST(a_queued_request_should_get_its_504_at_its_deadline)
{
	static const char *const options[] = { "--workers", "1", NULL };
	apitest_start(options);
	char *slow = apitest_source_request(BUSY_SOURCE("0.6"), 5000);
	char *quick = apitest_source_request("return 1", 100);
	int busy = send_on_new_connection("/v1/exec", slow);
	/* Let the worker take the slow job before the quick one queues. */
	wait_for_busy_workers(1);
	int64_t start = support_now_ms();
	int waiting = send_on_new_connection("/v1/exec", quick);
	struct httpc_response r;
	read_answer(waiting, &r);
	int64_t took = support_now_ms() - start;
	expect_problem(&r, 504, "deadline_exceeded");
	/* Answered from the queue while the slow job still runs. */
	struct pollfd pfd = { .fd = busy, .events = POLLIN };
	ck_assert_msg(poll(&pfd, 1, 0) == 0, "the slow job was answered first");
	ck_assert_msg(took < 2000, "answered after %lld ms, not near its 100 ms deadline",
	    (long long)took);
	httpc_response_free(&r);
	read_answer(busy, &r);
	expect_json(&r, 200, DONE_RESULT);
	httpc_response_free(&r);
	close(waiting);
	close(busy);
	cJSON_free(slow);
	cJSON_free(quick);
}
END_TEST

/* Suite -------------------------------------------------------------------- */

static Suite *
exec_suite(void)
{
	Suite *s = suite_create("exec");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, exec_should_answer_the_seed_example);
	tcase_add_test(api, exec_should_run_the_bytecode_fixture);
	tcase_add_test(api, exec_should_accept_a_form_content_type);
	tcase_add_test(api, exec_should_accept_url_safe_unpadded_and_wrapped_base64);
	tcase_add_test(api, compile_should_return_bytecode_that_exec_runs);
	tcase_add_test(api, bad_json_should_answer_400_invalid_json);
	tcase_add_test(api, bad_requests_should_answer_400_invalid_request);
	tcase_add_test(api, bad_bytecode_should_answer_400_invalid_base64_or_invalid_bytecode);
	tcase_add_test(api, bad_source_should_answer_400_compile_error);
	tcase_add_test(api, script_failures_should_answer_422);
	tcase_add_test(api, crashing_bytecode_should_answer_400_and_the_next_request_succeed);
	tcase_add_test(api, deadline_should_answer_504);
	tcase_add_test(api, runaway_loop_should_answer_504_in_time_while_others_are_served);
	tcase_add_test(api, killed_busy_worker_should_answer_500_and_be_replaced);
	suite_add_tcase(s, api);

	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, a_queued_request_should_get_its_504_at_its_deadline);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(exec_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
