/*
 * test_hardening.c - what a hostile client tried against the real
 * luapoold and what must hold now (issue "front end and supervisor
 * hardening"): each check is one finding, sent over real HTTP to a daemon
 * on 127.0.0.1, with bounded waits only.
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
	post_json("/v1/exec", "{\"source\":\"return 1\",\"source\":\"return 2\"}", &r);
	doc = parse_problem(&r, 400, "invalid_json");
	ck_assert_ptr_nonnull(strstr(apitest_string_member(doc, "detail"), "\"source\""));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	/* Inside the context the last wins, as with json.decode (one rule for
	 * both, documented in API.md). */
	post_json("/v1/exec", "{\"source\":\"return ctx.a.b\",\"context\":{\"a\":{\"b\":1,\"b\":2}}}",
	    &r);
	expect_json(&r, 200, "{\"result\":2}");
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

/* Finding 4: Lua error messages went into problem bodies unchecked, and the
 * worker cut them at 1,023 bytes, maybe inside a character: bodies that a
 * strict JSON parser refuses. */
static int
valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t len = s[i] < 0x80 ? 1 : s[i] >= 0xC2 && s[i] <= 0xDF ? 2 :
		    s[i] >= 0xE0 && s[i] <= 0xEF ? 3 : s[i] >= 0xF0 && s[i] <= 0xF4 ? 4 : 0;
		if (len == 0 || i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

/* The message of a script_error answer, checked to be valid UTF-8 JSON;
 * caller frees. */
static char *
script_error_message(const char *body)
{
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	ck_assert_msg(valid_utf8((const unsigned char *)r.body, r.body_len), "not UTF-8: %s",
	    r.body);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	char *message = strdup(apitest_string_member(doc, "message"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	return message;
}

START_TEST(problem_bodies_should_be_utf8_json_whatever_a_script_raises)
{
	char *message = script_error_message("{\"source\":\"error(\\\"\\\\255\\\")\"}");
	ck_assert_msg(strstr(message, "\xEF\xBF\xBD") != NULL, "message: %s", message);
	free(message);
	message = script_error_message("{\"source\":\"error('x'..string.rep('\xC3\xA9',600))\"}");
	size_t len = strlen(message);
	ck_assert_uint_ge(len, 1000);
	ck_assert_ptr_null(strstr(message, "\xEF\xBF\xBD"));
	ck_assert_mem_eq(message + len - 2, "\xC3\xA9", 2);
	free(message);
}
END_TEST

/* Finding 9: strdup cut a stored source at \u0000. */
START_TEST(a_stored_source_should_keep_its_nul_bytes)
{
	static const char body[] = "{\"source\":\"return 'a\\u0000b'\"}";
	struct httpc_response r;
	ask("PUT", "/v1/scripts/nul", JSON_HEADERS, body, &r);
	ck_assert_msg(r.status == 201, "status %d: %s", r.status, r.body);
	httpc_response_free(&r);
	post_json("/v1/exec", body, &r);
	expect_json(&r, 200, "{\"result\":\"a\\u0000b\"}");
	httpc_response_free(&r);
	post_json("/v1/scripts/nul", "{}", &r);
	expect_json(&r, 200, "{\"result\":\"a\\u0000b\"}");
	httpc_response_free(&r);
}
END_TEST

/* Finding 5: a %20 in a path added a field to the access log. */
START_TEST(the_access_log_should_keep_a_path_in_one_field)
{
	static const char *const options[] = { "--workers", "1", "--access-log", "yes", NULL };
	apitest_start(options);
	struct httpc_response r;
	get_path("/v1/scripts/x%20200%20y", &r);
	httpc_response_free(&r);
	get_path("/v1/scripts/x%0aluapoold%5b1%5d:%20error:%20forged", &r);
	httpc_response_free(&r);
	char *log = NULL;
	for (int64_t end = support_now_ms() + WAIT_MS; support_now_ms() < end; usleep(POLL_STEP_US)) {
		free(log);
		log = server_log(&apitest_server);
		if (strstr(log, "forged"))
			break;
	}
	ck_assert_msg(strstr(log, " GET /v1/scripts/x%20200%20y 400 ") != NULL, "log:\n%s", log);
	ck_assert_msg(strstr(log, "\nluapoold[1]: error: forged") == NULL, "log:\n%s", log);
	/* Fronts are on by default: then the line goes on " and N front(s)". */
	ck_assert_msg(strstr(log, "), 1 worker\n") != NULL || strstr(log, "), 1 worker and ") != NULL,
	    "log:\n%s", log);
	free(log);
}
END_TEST

static void
expect_refused(const char *const *options, const char *named)
{
	char *argv[8], *out = NULL, *err = NULL;
	int argc = 0, status = 0;
	argv[argc++] = (char *)(uintptr_t)server_daemon_path();
	for (; *options; options++)
		argv[argc++] = (char *)(uintptr_t)*options;
	argv[argc] = NULL;
	ck_assert_int_eq(support_run(argv, 10000, &status, &out, &err), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "wait status 0x%x: %s",
	    status, err);
	ck_assert_msg(strstr(err, named) != NULL, "stderr lacks %s: %s", named, err);
	free(out);
	free(err);
}

/* Finding 12: --check-config took --listen 999.1.1.1:80, and a missing
 * worker was reported without its path. */
START_TEST(a_bad_address_and_a_missing_worker_should_be_named)
{
	static const char *const address[] = { "--check-config", "--listen", "999.1.1.1:80",
	    NULL };
	expect_refused(address, "999.1.1.1");
	static const char *const worker[] = { "--listen", "127.0.0.1:0", "--worker-path",
	    "/nonexistent/luapool-worker", NULL };
	expect_refused(worker, "/nonexistent/luapool-worker");
}
END_TEST

/* log_format existed in log.c without a key: now set, and reloaded. */
START_TEST(log_format_should_be_set_and_reloaded_on_sighup)
{
	char path[128];
	apitest_make_scratch_dir();
	snprintf(path, sizeof(path), "%s/luapoold.conf", apitest_scratch);
	ck_assert_int_eq(support_write_file(path, "log_format = json\n", 18), 0);
	const char *const options[] = { "--workers", "1", "-c", path, NULL };
	apitest_start(options);
	char *log = server_log(&apitest_server);
	ck_assert_msg(strstr(log, "\"func\":\"start_http\",\"message\":\"listening on ") != NULL,
	    "log:\n%s", log);
	free(log);
	ck_assert_int_eq(support_write_file(path, "log_format = text\n", 18), 0);
	ck_assert_int_eq(kill(apitest_server.pid, SIGHUP), 0);
	int found = 0;
	for (int64_t end = support_now_ms() + WAIT_MS; !found && support_now_ms() < end;
	    usleep(POLL_STEP_US)) {
		log = server_log(&apitest_server);
		found = strstr(log, ": info: reload: reloaded: log level and format") != NULL;
		free(log);
	}
	ck_assert(found);
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
	tcase_add_test(api, problem_bodies_should_be_utf8_json_whatever_a_script_raises);
	tcase_add_test(api, a_stored_source_should_keep_its_nul_bytes);
	suite_add_tcase(s, api);
	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, ctrl_c_should_reach_the_supervisor_only_and_drain);
	tcase_add_test(own, the_access_log_should_keep_a_path_in_one_field);
	tcase_add_test(own, a_bad_address_and_a_missing_worker_should_be_named);
	tcase_add_test(own, log_format_should_be_set_and_reloaded_on_sighup);
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
