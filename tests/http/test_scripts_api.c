/*
 * test_scripts_api.c - the integration suite for the named-script routes:
 * PUT, GET, POST (run) and DELETE /v1/scripts/{name} and the list, against
 * the real luapoold (tests/support/apitest.h), and the store on disk kept
 * across restarts.  The store's own unit tests are tests/daemon/
 * test_scripts.c; the error codes PUT shares with exec are in test_exec.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

/* Scripts over HTTP -------------------------------------------------------- */

/* The names in GET /v1/scripts, comma-separated, into out. */
static void
list_script_names(char *out, size_t len)
{
	struct httpc_response r;
	get_path("/v1/scripts", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	const cJSON *scripts = cJSON_GetObjectItemCaseSensitive(doc, "scripts"), *item;
	ck_assert(cJSON_IsArray(scripts));
	out[0] = '\0';
	cJSON_ArrayForEach(item, scripts) {
		const char *name = apitest_string_member(item, "name");
		ck_assert_ptr_nonnull(name);
		size_t used = strlen(out);
		snprintf(out + used, len - used, "%s%s", used ? "," : "", name);
	}
	cJSON_Delete(doc);
	httpc_response_free(&r);
}

START_TEST(scripts_should_be_stored_listed_described_run_and_deleted)
{
	struct httpc_response r;
	char names[256];
	char *source = apitest_source_request(HELLO_SOURCE, 0);
	ask("PUT", "/v1/scripts/greeting", JSON_HEADERS, source, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);
	ask("PUT", "/v1/scripts/greeting", JSON_HEADERS, source, &r);
	expect_json(&r, 200, NULL);
	httpc_response_free(&r);
	char *b64 = apitest_fixture_base64(HELLO_FIXTURE);
	char *bytecode = apitest_hello_request("bytecode", b64);
	ask("PUT", "/v1/scripts/greeting.bc", JSON_HEADERS, bytecode, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);

	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "greeting,greeting.bc");

	get_path("/v1/scripts/greeting", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	ck_assert_str_eq(apitest_string_member(doc, "name"), "greeting");
	ck_assert_str_eq(apitest_string_member(doc, "kind"), "source");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	get_path("/v1/scripts/greeting.bc", &r);
	doc = parse(&r);
	ck_assert_str_eq(apitest_string_member(doc, "kind"), "bytecode");
	cJSON_Delete(doc);
	httpc_response_free(&r);

	post_json("/v1/scripts/greeting", "{\"context\":{\"message\":\"Hello\"}}", &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	post_json("/v1/scripts/greeting.bc", "{\"context\":{\"message\":\"Hello\"},"
	    "\"timeout_ms\":2000}", &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);

	ask("DELETE", "/v1/scripts/greeting", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	ck_assert_uint_eq(r.body_len, 0);
	httpc_response_free(&r);
	get_path("/v1/scripts/greeting", &r);
	expect_problem(&r, 404, "unknown_script");
	httpc_response_free(&r);
	expect_post_problem("/v1/scripts/greeting", "{}", 404, "unknown_script");
	ask("DELETE", "/v1/scripts/greeting", NULL, NULL, &r);
	expect_problem(&r, 404, "unknown_script");
	httpc_response_free(&r);
	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "greeting.bc");

	cJSON_free(bytecode);
	free(b64);
	cJSON_free(source);
}
END_TEST

START_TEST(put_of_bytecode_the_verifier_refuses_should_answer_400_and_store_nothing)
{
	struct httpc_response r;
	char *b64 = apitest_fixture_base64(SEGFAULT_FIXTURE);
	char *request = apitest_hello_request("bytecode", b64);
	ask("PUT", "/v1/scripts/crash", JSON_HEADERS, request, &r);
	cJSON *problem = parse_problem(&r, 400, "invalid_bytecode");
	const char *detail = apitest_string_member(problem, "detail");
	ck_assert_msg(strncmp(detail, "bytecode rejected: ", 19) == 0 &&
	    strstr(detail, "pc ") != NULL, "detail: %s", detail);
	cJSON_Delete(problem);
	httpc_response_free(&r);
	char names[256];
	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "");
	get_path("/v1/scripts/crash", &r);
	expect_problem(&r, 404, "unknown_script");
	httpc_response_free(&r);
	cJSON_free(request);
	free(b64);
}
END_TEST

/* The script store on disk ------------------------------------------------- */

START_TEST(a_bytecode_file_the_verifier_refuses_should_be_skipped_with_a_warning)
{
	char path[128];
	size_t len;
	apitest_make_scratch_dir();
	char *crash = support_read_file(SEGFAULT_FIXTURE, &len);
	ck_assert_ptr_nonnull(crash);
	snprintf(path, sizeof(path), "%s/crash.luac", apitest_scratch);
	ck_assert_int_eq(support_write_file(path, crash, len), 0);
	snprintf(path, sizeof(path), "%s/fine.lua", apitest_scratch);
	ck_assert_int_eq(support_write_file(path, "return 1", 8), 0);
	const char *const options[] = { "--workers", "1", "--scripts-dir", apitest_scratch, NULL };
	apitest_start(options);
	char names[256], expected[256];
	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "fine");
	char *log = server_log(&apitest_server);
	snprintf(expected, sizeof(expected), "skipping %s/crash.luac: bytecode rejected: ",
	    apitest_scratch);
	ck_assert_msg(strstr(log, expected) != NULL, "log lacks \"%s\": %s", expected, log);
	free(log);
	free(crash);
}
END_TEST

START_TEST(stored_scripts_should_survive_a_restart)
{
	char path[128];
	apitest_make_scratch_dir();
	snprintf(path, sizeof(path), "%s/greet.lua", apitest_scratch);
	static const char greet[] = "return 'hi ' .. ctx.name\n";
	ck_assert_int_eq(support_write_file(path, greet, sizeof(greet) - 1), 0);
	const char *const options[] = { "--workers", "1", "--scripts-dir", apitest_scratch, NULL };
	apitest_start(options);

	struct httpc_response r;
	post_json("/v1/scripts/greet", "{\"context\":{\"name\":\"there\"}}", &r);
	expect_json(&r, 200, "{\"result\":\"hi there\"}");
	httpc_response_free(&r);
	char *source = apitest_source_request(HELLO_SOURCE, 0);
	ask("PUT", "/v1/scripts/saved", JSON_HEADERS, source, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);
	char *b64 = apitest_fixture_base64(HELLO_FIXTURE);
	char *bytecode = apitest_hello_request("bytecode", b64);
	ask("PUT", "/v1/scripts/saved-bc", JSON_HEADERS, bytecode, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);

	apitest_stop();
	apitest_start(options);

	char names[256];
	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "greet,saved,saved-bc");
	post_json("/v1/scripts/saved", "{\"context\":{\"message\":\"Hello\"}}", &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	post_json("/v1/scripts/saved-bc", "{\"context\":{\"message\":\"Hello\"}}", &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	post_json("/v1/scripts/greet", "{\"context\":{\"name\":\"again\"}}", &r);
	expect_json(&r, 200, "{\"result\":\"hi again\"}");
	httpc_response_free(&r);

	/* Deleted stays deleted. */
	ask("DELETE", "/v1/scripts/saved", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	httpc_response_free(&r);
	apitest_stop();
	apitest_start(options);
	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "greet,saved-bc");

	cJSON_free(bytecode);
	free(b64);
	cJSON_free(source);
}
END_TEST

/* Suite -------------------------------------------------------------------- */

static Suite *
scripts_api_suite(void)
{
	Suite *s = suite_create("scripts api");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, scripts_should_be_stored_listed_described_run_and_deleted);
	tcase_add_test(api, put_of_bytecode_the_verifier_refuses_should_answer_400_and_store_nothing);
	suite_add_tcase(s, api);

	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, stored_scripts_should_survive_a_restart);
	tcase_add_test(own, a_bytecode_file_the_verifier_refuses_should_be_skipped_with_a_warning);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(scripts_api_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
