/*
 * test_job_errors.c - how a job's request and errors read, against the
 * real luapoold over HTTP (tests/support/apitest.h): chunk names (each
 * request's own, whatever ran before on the worker; a stored script's
 * name), table error values (error_value, their message as the detail),
 * and unknown request fields (400 unknown_field).  Never tests the
 * captured logs (test_logs.c) nor the other error codes (test_exec.c).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

/* POSTs body to path and expects a 422 script_error whose message is
 * `message`; returns the problem (cJSON_Delete it). */
static cJSON *
expect_script_error_at(int line, const char *path, const char *body, const char *message)
{
	struct httpc_response r;
	apitest_ask_at(line, "POST", path, JSON_HEADERS, body, &r);
	cJSON *doc = apitest_problem_at(line, &r, 422, "script_error");
	const char *got = apitest_string_member(doc, "message");
	ck_assert_msg(got && strcmp(got, message) == 0, "line %d: message \"%s\", expected \"%s\"",
	    line, got ? got : "(none)", message);
	ck_assert_str_eq(apitest_string_member(doc, "detail"), message);
	httpc_response_free(&r);
	return doc;
}
#define expect_script_error(p, b, m) \
	cJSON_Delete(expect_script_error_at(__LINE__, p, b, m))

/* Chunk names -------------------------------------------------------------- */

START_TEST(the_same_source_under_two_names_should_show_each_its_own_name)
{
	/* One worker: the second request meets the first one's cached chunk. */
	static const char *const options[] = { "--workers", "1", NULL };
	apitest_start(options);
	expect_script_error("/v1/exec", "{\"source\":\"error('boom')\",\"name\":\"first.lua\"}",
	    "first.lua:1: boom");
	expect_script_error("/v1/exec", "{\"source\":\"error('boom')\",\"name\":\"checkout.lua\"}",
	    "checkout.lua:1: boom");
	expect_script_error("/v1/exec", "{\"source\":\"error('boom')\"}", "job:1: boom");
	expect_script_error("/v1/exec", "{\"source\":\"error('boom')\",\"name\":\"first.lua\"}",
	    "first.lua:1: boom");
}
END_TEST

START_TEST(stripped_bytecode_under_two_names_should_show_each_its_own_name)
{
	static const char *const options[] = { "--workers", "1", NULL };
	apitest_start(options);
	/* luajit -b output keeps no name: LuaJIT uses the one it is given. */
	char *b64 = apitest_fixture_base64(HELLO_FIXTURE);
	char body[1024];
	snprintf(body, sizeof(body), "{\"bytecode\":\"%s\",\"name\":\"one\"}", b64);
	expect_script_error("/v1/exec", body,
	    "one:0: attempt to concatenate field 'message' (a nil value)");
	snprintf(body, sizeof(body), "{\"bytecode\":\"%s\",\"name\":\"two\"}", b64);
	expect_script_error("/v1/exec", body,
	    "two:0: attempt to concatenate field 'message' (a nil value)");
	free(b64);
}
END_TEST

START_TEST(a_stored_script_should_run_under_its_own_name)
{
	struct httpc_response r;
	ask("PUT", "/v1/scripts/checkout", JSON_HEADERS, "{\"source\":\"error('boom')\"}", &r);
	ck_assert_int_eq(r.status, 201);
	httpc_response_free(&r);
	/* The same source sent directly first, on both workers. */
	for (int i = 0; i < 4; i++)
		expect_script_error("/v1/exec", "{\"source\":\"error('boom')\"}", "job:1: boom");
	for (int i = 0; i < 4; i++)
		expect_script_error("/v1/scripts/checkout", "{}", "checkout:1: boom");
	post_json("/v1/scripts/checkout", NULL, &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "message"), "checkout:1: boom");
	ck_assert_ptr_nonnull(strstr(apitest_string_member(doc, "traceback"), "checkout:1:"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	/* A name in the body still wins, as for /v1/exec. */
	expect_script_error("/v1/scripts/checkout", "{\"name\":\"mine\"}", "mine:1: boom");
}
END_TEST

/* Error values ------------------------------------------------------------- */

START_TEST(a_table_error_value_should_be_answered_as_error_value)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"error({code = 'E42', message = 'card declined', "
	    "retry = false, items = {1, 2}})\"}", &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "detail"), "card declined");
	ck_assert_str_eq(apitest_string_member(doc, "message"), "card declined");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(doc, "error_value");
	ck_assert(cJSON_IsObject(value));
	ck_assert_str_eq(apitest_string_member(value, "code"), "E42");
	ck_assert_str_eq(apitest_string_member(value, "message"), "card declined");
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(value, "retry")));
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(value, "items")), 2);
	ck_assert_int_eq(cJSON_GetArraySize(value), 4);
	cJSON_Delete(doc);
	httpc_response_free(&r);

	/* A number code, no message: the type is described. */
	post_json("/v1/exec", "{\"source\":\"error({code = 1})\"}", &r);
	doc = parse_problem(&r, 422, "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "detail"), "(error object is a table value)");
	value = cJSON_GetObjectItemCaseSensitive(doc, "error_value");
	ck_assert_int_eq((int)apitest_number_member(value, "code"), 1);
	cJSON_Delete(doc);
	httpc_response_free(&r);
}
END_TEST

START_TEST(an_error_value_without_json_form_should_be_left_out)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"error({message = 'm', f = print})\"}", &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "detail"), "m");
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "error_value"));
	cJSON_Delete(doc);
	httpc_response_free(&r);

	/* __tostring describes the value; the table is still answered. */
	post_json("/v1/exec", "{\"source\":\"error(setmetatable({message = 'm'}, "
	    "{__tostring = function() return 'described' end}))\"}", &r);
	doc = parse_problem(&r, 422, "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "detail"), "described");
	ck_assert_str_eq(apitest_string_member(cJSON_GetObjectItemCaseSensitive(doc,
	    "error_value"), "message"), "m");
	cJSON_Delete(doc);
	httpc_response_free(&r);

	/* A string error has no error_value. */
	post_json("/v1/exec", "{\"source\":\"error('plain')\"}", &r);
	doc = parse_problem(&r, 422, "script_error");
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "error_value"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
}
END_TEST

/* Unknown fields ----------------------------------------------------------- */

static void
expect_unknown_field_at(int line, const char *method, const char *path, const char *body,
    const char *detail)
{
	struct httpc_response r;
	apitest_ask_at(line, method, path, JSON_HEADERS, body, &r);
	cJSON *doc = apitest_problem_at(line, &r, 400, "unknown_field");
	const char *got = apitest_string_member(doc, "detail");
	ck_assert_msg(got && strcmp(got, detail) == 0, "line %d: detail %s", line, got);
	ck_assert_str_eq(apitest_string_member(doc, "title"),
	    "The request has a field the server does not know");
	cJSON_Delete(doc);
	httpc_response_free(&r);
}
#define expect_unknown_field(m, p, b, d) expect_unknown_field_at(__LINE__, m, p, b, d)

START_TEST(an_unknown_field_should_answer_400_unknown_field_naming_it)
{
	expect_unknown_field("POST", "/v1/exec",
	    "{\"source\":\"return ctx.message\",\"contxt\":{\"message\":\"hi\"}}",
	    "unknown field \"contxt\"");
	expect_unknown_field("POST", "/v1/compile", "{\"source\":\"return 1\",\"Name\":\"x\"}",
	    "unknown field \"Name\"");
	expect_unknown_field("PUT", "/v1/scripts/s", "{\"source\":\"return 1\",\"x\":1}",
	    "unknown field \"x\"");
	struct httpc_response r;
	ask("PUT", "/v1/scripts/s", JSON_HEADERS, "{\"source\":\"return 1\"}", &r);
	ck_assert_int_eq(r.status, 201);
	httpc_response_free(&r);
	expect_unknown_field("POST", "/v1/scripts/s", "{\"timeout\":100}",
	    "unknown field \"timeout\"");
	/* A long name is cut before a character, and says so. */
	char body[512];
	snprintf(body, sizeof(body), "{\"source\":\"return 1\",\"%s\":1}",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xC3\xA9zzzz");
	expect_unknown_field("POST", "/v1/exec", body, "unknown field \""
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"...");
	/* Every known field together still runs. */
	post_json("/v1/exec", "{\"source\":\"return ctx.a\",\"context\":{\"a\":1},"
	    "\"timeout_ms\":1000,\"name\":\"n\"}", &r);
	expect_json(&r, 200, "{\"result\":1}");
	httpc_response_free(&r);
	/* An escaped spelling of a known key is that key. */
	post_json("/v1/exec", "{\"sourc\\u0065\":\"return 2\"}", &r);
	expect_json(&r, 200, "{\"result\":2}");
	httpc_response_free(&r);
}
END_TEST

static Suite *
job_errors_suite(void)
{
	Suite *s = suite_create("job errors");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, a_stored_script_should_run_under_its_own_name);
	tcase_add_test(api, a_table_error_value_should_be_answered_as_error_value);
	tcase_add_test(api, an_error_value_without_json_form_should_be_left_out);
	tcase_add_test(api, an_unknown_field_should_answer_400_unknown_field_naming_it);
	suite_add_tcase(s, api);

	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, the_same_source_under_two_names_should_show_each_its_own_name);
	tcase_add_test(own, stripped_bytecode_under_two_names_should_show_each_its_own_name);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(job_errors_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
