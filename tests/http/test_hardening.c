/*
 * test_hardening.c - what a hostile client tried against the real
 * luapoold and what must hold now (issue "front end and supervisor
 * hardening"): each check is one finding, sent over real HTTP to a daemon
 * on 127.0.0.1, with bounded waits only.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

/* A job nesting coroutines 200,000 deep overflowed the worker's C stack
 * (500 worker_crashed); now it is a Lua error the job can catch. */
START_TEST(deep_coroutine_nesting_should_be_a_lua_error_not_a_crash)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"local function f(n) if n == 0 then return 'bottom' end "
	    "return coroutine.wrap(f)(n - 1) end "
	    "local ok, e = pcall(f, 200000) local ok2, r = pcall(f, 150) "
	    "local co = coroutine.create(function() return pcall(f, 300) end) "
	    "local _, ok3, e3 = coroutine.resume(co) "
	    "return {ok, e, ok2, r, ok3, e3}\"}", &r);
	expect_json(&r, 200, "{\"result\":[false,\"coroutines nested deeper than 200\",true,"
	    "\"bottom\",false,\"coroutines nested deeper than 200\"]}");
	httpc_response_free(&r);
	/* The count starts again with the next job, even after a deadline. */
	expect_post_problem("/v1/exec", "{\"source\":\"local function f() "
	    "coroutine.resume(coroutine.create(f)) end "
	    "local co = coroutine.wrap(function() while true do end end) f() co()\","
	    "\"timeout_ms\":100}", 504, "deadline_exceeded");
	post_json("/v1/exec", "{\"source\":\"local function f(n) if n == 0 then return 'ok' end "
	    "return coroutine.wrap(f)(n - 1) end return f(199)\"}", &r);
	expect_json(&r, 200, "{\"result\":\"ok\"}");
	httpc_response_free(&r);
}
END_TEST

/* The supervisor read the first timeout_ms, the worker the last. */
START_TEST(a_key_given_twice_should_get_400_naming_the_key)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"return 1\",\"timeout_ms\":50,\"timeout_ms\":5000}", &r);
	cJSON *doc = parse_problem(&r, 400, "invalid_json");
	const char *detail = apitest_string_member(doc, "detail");
	ck_assert_msg(strstr(detail, "duplicate key \"timeout_ms\""), "detail: %s", detail);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"return ctx\",\"context\":{\"a\":{\"b\":1,\"b\":2}}}", &r);
	doc = parse_problem(&r, 400, "invalid_json");
	ck_assert_ptr_nonnull(strstr(apitest_string_member(doc, "detail"), "\"b\""));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	/* json.decode inside a script keeps JSON.parse's rule: the last wins. */
	post_json("/v1/exec", "{\"source\":\"return json.decode('{\\\"a\\\":1,\\\"a\\\":2}').a\"}", &r);
	expect_json(&r, 200, "{\"result\":2}");
	httpc_response_free(&r);
}
END_TEST

/* Ctrl-C on `make run` sent SIGINT to the workers too (same process
 * group): a running job answered 500 instead of draining. */
START_TEST(ctrl_c_should_reach_the_supervisor_only_and_drain)
{
	static const char *const options[] = { "--workers", "1", NULL };
	apitest_start(options);
	char *slow = apitest_source_request(BUSY_SOURCE("0.3"), 5000);
	int fd = send_on_new_connection("/v1/exec", slow);
	wait_for_busy_workers(1);
	pid_t worker;
	ck_assert_int_eq(support_children(apitest_server.pid, "luapool-worker", &worker, 1), 1);
	ck_assert_int_ne(getpgid(worker), getpgid(apitest_server.pid));
	ck_assert_int_eq(getpgid(worker), worker);
	ck_assert_int_eq(kill(apitest_server.pid, SIGINT), 0);
	struct httpc_response r;
	read_answer(fd, &r);
	expect_json(&r, 200, DONE_RESULT);
	httpc_response_free(&r);
	close(fd);
	cJSON_free(slow);
	int status = 0;
	int rc = server_wait_exit(&apitest_server, SERVER_STOP_TIMEOUT_MS, &status);
	expect_clean_exit(rc, status);
}
END_TEST

static Suite *
hardening_suite(void)
{
	Suite *s = suite_create("hardening");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, deep_coroutine_nesting_should_be_a_lua_error_not_a_crash);
	tcase_add_test(api, a_key_given_twice_should_get_400_naming_the_key);
	suite_add_tcase(s, api);
	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, ctrl_c_should_reach_the_supervisor_only_and_drain);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(hardening_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
