/*
 * test_modules.c - require("name") of stored scripts, against the real
 * luapoold over HTTP (tests/support/apitest.h): a library module behind a
 * stored entry script and behind /v1/exec, the module's name in its
 * errors, a missing module (422, catchable), a cycle, fresh module state
 * for every job, the per-job bound, an updated module seen by the next
 * job, a bytecode module, package.loaded.  The supervisor's side against
 * a hostile worker is in tests/pool/test_hostile.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

#define COUNTER_MODULE "local n = 0\nreturn { bump = function() n = n + 1 return n end }"

/* PUTs source as the stored script `name`. */
static void
put_source_at(int line, const char *name, const char *source)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/scripts/%s", name);
	char *body = apitest_source_request(source, 0);
	struct httpc_response r;
	apitest_ask_at(line, "PUT", path, JSON_HEADERS, body, &r);
	ck_assert_msg(r.status == 200 || r.status == 201, "line %d: PUT %s: %d %s", line, name,
	    r.status, r.body);
	httpc_response_free(&r);
	cJSON_free(body);
}
#define put_source(name, source) put_source_at(__LINE__, name, source)

/* POSTs body to path and expects this JSON answer. */
static void
expect_answer_at(int line, const char *path, const char *body, const char *expected)
{
	struct httpc_response r;
	apitest_ask_at(line, "POST", path, JSON_HEADERS, body, &r);
	apitest_expect_json_at(line, &r, 200, expected);
	httpc_response_free(&r);
}
#define expect_answer(p, b, e) expect_answer_at(__LINE__, p, b, e)

/* Runs source with /v1/exec and expects {"result": expected}. */
static void
expect_result_at(int line, const char *source, const char *expected)
{
	char *body = apitest_source_request(source, 0);
	char want[1024];
	snprintf(want, sizeof(want), "{\"result\":%s}", expected);
	expect_answer_at(line, "/v1/exec", body, want);
	cJSON_free(body);
}
#define expect_result(s, e) expect_result_at(__LINE__, s, e)

/* Runs source with /v1/exec, expects 422 script_error whose message
 * contains `text`. */
static void
expect_script_error_at(int line, const char *source, const char *text)
{
	char *body = apitest_source_request(source, 0);
	struct httpc_response r;
	apitest_ask_at(line, "POST", "/v1/exec", JSON_HEADERS, body, &r);
	cJSON *doc = apitest_problem_at(line, &r, 422, "script_error");
	const char *message = apitest_string_member(doc, "message");
	ck_assert_msg(message && strstr(message, text), "line %d: message \"%s\", expected \"%s\"",
	    line, message ? message : "(none)", text);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(body);
}
#define expect_script_error(s, t) expect_script_error_at(__LINE__, s, t)

START_TEST(a_library_module_should_serve_a_stored_entry_script_and_exec)
{
	put_source("greetings", "local M = {}\n"
	    "function M.hello(who) return 'Hello, ' .. who end\n"
	    "helper_global = 'module-only'\n"
	    "M.seen_message = ctx.message\n"
	    "return M");
	put_source("entry", "local g = require('greetings')\n"
	    "return { g.hello(ctx.name), g.seen_message, helper_global == nil,"
	    " require('greetings') == g, package.loaded.greetings == g }");
	for (int i = 0; i < 4; i++)	/* both workers, cache misses and hits */
		expect_answer("/v1/scripts/entry", "{\"context\":{\"name\":\"Ada\",\"message\":\"m\"}}",
		    "{\"result\":[\"Hello, Ada\",\"m\",true,true,true]}");
	expect_result("return require('greetings').hello('Bob')", "\"Hello, Bob\"");
}
END_TEST

START_TEST(errors_in_a_module_should_name_the_module)
{
	put_source("fragile", "local M = {}\nfunction M.fail()\n  error('broken')\nend\nreturn M");
	put_source("badload", "local x = 1\nerror('at load')");
	expect_script_error("local m = require('fragile')\nm.fail()\nreturn 1", "fragile:3: broken");
	expect_script_error("local m = require('badload')\nreturn 1", "badload:2: at load");
	/* The traceback goes from where it was raised through require. */
	char *body = apitest_source_request("local m = require('badload')\nreturn 1", 0);
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	const char *traceback = apitest_string_member(doc, "traceback");
	ck_assert_msg(traceback && strstr(traceback, "badload:2: in main chunk") &&
	    strstr(traceback, "in function 'require'") && strstr(traceback, "job:1:"),
	    "traceback: %s", traceback ? traceback : "(none)");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(body);
	/* A table a module raises is the answer's error_value, unless the
	 * job caught it and failed otherwise. */
	put_source("tabled", "error({ code = 'E42', message = 'table error' })");
	post_json("/v1/exec", "{\"source\":\"return require('tabled')\"}", &r);
	doc = parse_problem(&r, 422, "script_error");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(doc, "error_value");
	ck_assert_str_eq(apitest_string_member(value, "code"), "E42");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"pcall(require, 'tabled') error('plain', 0)\"}", &r);
	doc = parse_problem(&r, 422, "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "message"), "plain");
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "error_value"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	/* A module that failed to load is tried again, not remembered. */
	expect_result("local ok1 = pcall(require, 'badload')\n"
	    "local ok2, e = pcall(require, 'badload')\nreturn { ok1, ok2, e }",
	    "[false,false,\"badload:2: at load\"]");
}
END_TEST

START_TEST(a_missing_module_should_answer_422_naming_it_and_pcall_should_catch_it)
{
	expect_script_error("local m = require('absent')\nreturn 1", "module 'absent' not found");
	put_source("entry", "return require('absent.too')");
	struct httpc_response r;
	post_json("/v1/scripts/entry", "{}", &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "message"), "module 'absent.too' not found");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	expect_result("local ok, e = pcall(require, 'absent') return { ok, e }",
	    "[false,\"module 'absent' not found\"]");
	expect_result("local ok, e = pcall(require, '../etc/passwd') return ok", "false");
	expect_result("local ok, e = pcall(require, 'a/b') "
	    "return e:find('module names are 1 to 64 characters', 1, true) ~= nil", "true");
}
END_TEST

START_TEST(a_cycle_should_answer_a_clear_error)
{
	put_source("first", "return require('second')");
	put_source("second", "local x = require('third') return x");
	put_source("third", "return require('first')");
	expect_script_error("return require('first')",
	    "module 'first' requires itself: first -> second -> third -> first");
	put_source("self", "return require('self')");
	expect_script_error("return require('self')", "module 'self' requires itself: self -> self");
	/* After a caught cycle the job goes on, and the modules load afresh. */
	expect_result("local ok = pcall(require, 'self') return ok", "false");
}
END_TEST

START_TEST(module_state_should_not_survive_the_job)
{
	put_source("counter", COUNTER_MODULE);
	put_source("entry", "local c = require('counter') return c.bump()");
	for (int i = 0; i < 6; i++) {
		expect_answer("/v1/scripts/entry", "{}", "{\"result\":1}");
		expect_result("local c = require('counter') c.bump() return c.bump()", "2");
	}
	/* Within one job the module is one instance, however it is reached. */
	expect_result("local a = require('counter') a.bump()\n"
	    "return require('counter').bump() + package.loaded.counter.bump()", "5");
}
END_TEST

START_TEST(a_job_should_require_at_most_64_modules)
{
	put_source("lib", "return 1");
	/* Every fetch counts, found or not; the job goes on after the bound. */
	const char *source = "local last\n"
	    "for i = 1, 65 do local ok, e = pcall(require, 'lib' .. i) last = e end\n"
	    "return last";
	for (int i = 0; i < 3; i++) {
		expect_result(source, "\"module 'lib65': a job may require at most 64 modules\"");
		expect_result("return require('lib')", "1");	/* the worker lives on */
	}
	/* Modules already loaded cost nothing more. */
	expect_result("local n = 0 for i = 1, 200 do n = n + require('lib') end return n", "200");
}
END_TEST

START_TEST(an_updated_module_should_be_seen_by_the_next_job)
{
	put_source("version", "return 'one'");
	for (int i = 0; i < 4; i++)
		expect_result("return require('version')", "\"one\"");
	put_source("version", "return 'two'");
	for (int i = 0; i < 4; i++)
		expect_result("return require('version')", "\"two\"");
	struct httpc_response r;
	ask("DELETE", "/v1/scripts/version", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	httpc_response_free(&r);
	expect_script_error("return require('version')", "module 'version' not found");
}
END_TEST

START_TEST(a_bytecode_module_should_work)
{
	struct httpc_response r;
	post_json("/v1/compile", "{\"source\":\"return { twice = function(x) return 2 * x end }\"}",
	    &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	const char *b64 = apitest_string_member(doc, "bytecode");
	ck_assert_ptr_nonnull(b64);
	char body[8192];
	snprintf(body, sizeof(body), "{\"bytecode\":\"%s\"}", b64);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	ask("PUT", "/v1/scripts/twice", JSON_HEADERS, body, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);
	for (int i = 0; i < 3; i++)
		expect_result("return require('twice').twice(21)", "42");
}
END_TEST

START_TEST(package_loaded_should_be_the_jobs_own)
{
	put_source("real", "return 'real'");
	expect_result("package.loaded.real = 'stub' return require('real')", "\"stub\"");
	expect_result("return { package.loaded.real == nil, require('real') }", "[true,\"real\"]");
}
END_TEST

static Suite *
modules_suite(void)
{
	Suite *s = suite_create("modules");
	TCase *tc = tcase_create("require");
	tcase_add_checked_fixture(tc, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, a_library_module_should_serve_a_stored_entry_script_and_exec);
	tcase_add_test(tc, errors_in_a_module_should_name_the_module);
	tcase_add_test(tc, a_missing_module_should_answer_422_naming_it_and_pcall_should_catch_it);
	tcase_add_test(tc, a_cycle_should_answer_a_clear_error);
	tcase_add_test(tc, module_state_should_not_survive_the_job);
	tcase_add_test(tc, a_job_should_require_at_most_64_modules);
	tcase_add_test(tc, an_updated_module_should_be_seen_by_the_next_job);
	tcase_add_test(tc, a_bytecode_module_should_work);
	tcase_add_test(tc, package_loaded_should_be_the_jobs_own);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(modules_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
