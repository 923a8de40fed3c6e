/*
 * test_logs.c - print and log.* captured into the answer, against the real
 * luapoold over HTTP (tests/support/apitest.h): the entries, their levels
 * and text (tab-separated, address-free tostring, U+FFFD for bytes that
 * are not UTF-8), no "logs" key when nothing was written, the bound of
 * max_log_bytes with its one marker, logs on error answers, and each entry
 * in the server log at debug level.  Never tests other error bodies
 * (test_job_errors.c) nor usage or request ids.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

/* Runs source with /v1/exec; returns the parsed answer (cJSON_Delete it)
 * after checking its status. */
static cJSON *
run_at(int line, const char *source, int status)
{
	char *body = apitest_source_request(source, 0);
	struct httpc_response r;
	apitest_ask_at(line, "POST", "/v1/exec", JSON_HEADERS, body, &r);
	ck_assert_msg(r.status == status, "line %d: status %d, expected %d: %s", line, r.status,
	    status, r.body);
	cJSON *doc = apitest_parse_at(line, &r);
	httpc_response_free(&r);
	cJSON_free(body);
	return doc;
}
#define run(source, status) run_at(__LINE__, source, status)

/* Asserts that entry i of doc's "logs" has this level and text. */
static void
expect_entry_at(int line, const cJSON *doc, int i, const char *level, const char *text)
{
	const cJSON *logs = cJSON_GetObjectItemCaseSensitive(doc, "logs");
	ck_assert_msg(cJSON_IsArray(logs), "line %d: no logs array", line);
	const cJSON *entry = cJSON_GetArrayItem(logs, i);
	ck_assert_msg(entry != NULL, "line %d: no entry %d", line, i);
	const char *got_level = apitest_string_member(entry, "level");
	const char *got_text = apitest_string_member(entry, "text");
	ck_assert_msg(got_level && strcmp(got_level, level) == 0, "line %d: level %s, expected %s",
	    line, got_level ? got_level : "(none)", level);
	ck_assert_msg(got_text && strcmp(got_text, text) == 0, "line %d: text \"%s\", expected \"%s\"",
	    line, got_text ? got_text : "(none)", text);
}
#define expect_entry(doc, i, level, text) expect_entry_at(__LINE__, doc, i, level, text)

static int
log_count(const cJSON *doc)
{
	const cJSON *logs = cJSON_GetObjectItemCaseSensitive(doc, "logs");
	return cJSON_IsArray(logs) ? cJSON_GetArraySize(logs) : -1;
}

START_TEST(print_should_capture_its_arguments_tab_separated_without_addresses)
{
	cJSON *doc = run("local t = {} print('a', 1, 2.5, nil, true, t, {}, t) return 7", 200);
	ck_assert_int_eq((int)apitest_number_member(doc, "result"), 7);
	ck_assert_int_eq(log_count(doc), 1);
	expect_entry(doc, 0, "info", "a\t1\t2.5\tnil\ttrue\ttable: 0x00000001\t"
	    "table: 0x00000002\ttable: 0x00000001");
	cJSON_Delete(doc);

	doc = run("print(setmetatable({}, {__tostring = function() return 'T' end})) print()", 200);
	ck_assert_int_eq(log_count(doc), 2);
	expect_entry(doc, 0, "info", "T");
	expect_entry(doc, 1, "info", "");
	cJSON_Delete(doc);
}
END_TEST

START_TEST(log_functions_should_keep_their_levels_in_order)
{
	cJSON *doc = run("log.debug('d', 1) log.info('i') log.warn('w') log.error('e', {}) "
	    "print('p') return 'ok'", 200);
	ck_assert_int_eq(log_count(doc), 5);
	expect_entry(doc, 0, "debug", "d\t1");
	expect_entry(doc, 1, "info", "i");
	expect_entry(doc, 2, "warn", "w");
	expect_entry(doc, 3, "error", "e\ttable: 0x00000001");
	expect_entry(doc, 4, "info", "p");
	cJSON_Delete(doc);
}
END_TEST

START_TEST(an_answer_without_output_should_have_no_logs_key)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"local log, print = log, print return 1\"}", &r);
	expect_json(&r, 200, "{\"result\":1}");
	httpc_response_free(&r);
	post_json("/v1/exec", HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
}
END_TEST

START_TEST(bytes_that_are_not_utf8_should_become_the_replacement_character)
{
	cJSON *doc = run("print('a\\255b', '\\226\\130', 'é', 'q\"\\\\\\n\\0z') return 1", 200);
	ck_assert_int_eq(log_count(doc), 1);
	/* cJSON stops a string at \u0000: the text is whole up to there. */
	expect_entry(doc, 0, "info", "a\xEF\xBF\xBD" "b\t\xEF\xBF\xBD\xEF\xBF\xBD\t\xC3\xA9\tq\"\\\n");
	cJSON_Delete(doc);
}
END_TEST

START_TEST(a_tostring_that_raises_should_leave_no_half_entry)
{
	cJSON *doc = run("print('before') "
	    "print('x', setmetatable({}, {__tostring = function() error('no', 0) end}))", 422);
	ck_assert_str_eq(apitest_string_member(doc, "code"), "script_error");
	ck_assert_str_eq(apitest_string_member(doc, "message"), "no");
	ck_assert_int_eq(log_count(doc), 1);
	expect_entry(doc, 0, "info", "before");
	cJSON_Delete(doc);
}
END_TEST

START_TEST(error_answers_should_carry_the_logs)
{
	cJSON *doc = run("print('step 1') log.warn('step 2') error('boom')", 422);
	ck_assert_str_eq(apitest_string_member(doc, "code"), "script_error");
	ck_assert_int_eq(log_count(doc), 2);
	expect_entry(doc, 0, "info", "step 1");
	expect_entry(doc, 1, "warn", "step 2");
	cJSON_Delete(doc);

	doc = run("print('almost') return print", 422);
	ck_assert_str_eq(apitest_string_member(doc, "code"), "result_not_serializable");
	expect_entry(doc, 0, "info", "almost");
	cJSON_Delete(doc);

	doc = run("error('no output')", 422);
	ck_assert_int_eq(log_count(doc), -1);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(a_soft_stopped_job_should_answer_with_its_logs)
{
	char *body = apitest_source_request("print('started') "
	    "for i = 1, 1e9 do pcall(function() end) end", 100);
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	cJSON *doc = parse_problem(&r, 504, "deadline_exceeded");
	ck_assert_int_eq(log_count(doc), 1);
	expect_entry(doc, 0, "info", "started");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(body);
}
END_TEST

START_TEST(a_stored_script_should_answer_with_its_logs)
{
	struct httpc_response r;
	ask("PUT", "/v1/scripts/greet", JSON_HEADERS,
	    "{\"source\":\"print('hello', ctx.who) return 1\"}", &r);
	ck_assert_int_eq(r.status, 201);
	httpc_response_free(&r);
	post_json("/v1/scripts/greet", "{\"context\":{\"who\":\"you\"}}", &r);
	expect_json(&r, 200, "{\"result\":1,\"logs\":[{\"level\":\"info\",\"text\":\"hello\\tyou\"}]}");
	httpc_response_free(&r);
}
END_TEST

/* The own-daemon cases ---------------------------------------------------- */

START_TEST(the_log_should_stop_at_max_log_bytes_with_one_marker)
{
	static const char *const options[] = { "--workers", "1", "--max-log-bytes", "300", NULL };
	apitest_start(options);
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"for i = 1, 100 do print(string.rep('x', 20)) end "
	    "print('after') return 1\"}", &r);
	ck_assert_int_eq(r.status, 200);
	cJSON *doc = parse(&r);
	const cJSON *logs = cJSON_GetObjectItemCaseSensitive(doc, "logs");
	int n = cJSON_GetArraySize(logs);
	ck_assert_int_gt(n, 3);
	/* Everything but the marker fits in 300 bytes of JSON: "[" and "]",
	 * the entries as written (compact) and a comma between them. */
	size_t total = 2;
	for (int i = 0; i < n - 1; i++) {
		const cJSON *entry = cJSON_GetArrayItem(logs, i);
		ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(entry, "truncated"));
		const char *text = apitest_string_member(entry, "text");
		ck_assert_str_eq(apitest_string_member(entry, "level"), "info");
		/* The last kept entry may be cut; none is empty. */
		ck_assert_uint_gt(strlen(text), 0);
		ck_assert_ptr_null(strstr(text, "after"));
		total += strlen("{\"level\":\"info\",\"text\":\"\"}") + strlen(text) + (i > 0);
	}
	ck_assert_uint_le(total, 300);
	ck_assert_uint_gt(total, 300 - 40);
	const cJSON *marker = cJSON_GetArrayItem(logs, n - 1);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(marker, "truncated")));
	ck_assert_str_eq(apitest_string_member(marker, "level"), "warn");
	ck_assert_ptr_nonnull(strstr(apitest_string_member(marker, "text"), "max_log_bytes (300)"));
	cJSON_Delete(doc);
	httpc_response_free(&r);

	/* One long entry is cut to what fits, before a character. */
	post_json("/v1/exec", "{\"source\":\"print(string.rep('\\u00e9', 400)) return 1\"}", &r);
	doc = parse(&r);
	logs = cJSON_GetObjectItemCaseSensitive(doc, "logs");
	ck_assert_int_eq(cJSON_GetArraySize(logs), 2);
	const char *text = apitest_string_member(cJSON_GetArrayItem(logs, 0), "text");
	ck_assert_uint_gt(strlen(text), 200);
	ck_assert_uint_le(strlen(text), 300);
	ck_assert_uint_eq(strlen(text) % 2, 0);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(logs, 1),
	    "truncated")));
	cJSON_Delete(doc);
	httpc_response_free(&r);

	/* The next job starts with an empty log. */
	post_json("/v1/exec", "{\"source\":\"print('fresh') return 1\"}", &r);
	expect_json(&r, 200, "{\"result\":1,\"logs\":[{\"level\":\"info\",\"text\":\"fresh\"}]}");
	httpc_response_free(&r);
}
END_TEST

START_TEST(max_log_bytes_0_should_capture_nothing)
{
	static const char *const options[] = { "--workers", "1", "--max-log-bytes", "0", NULL };
	apitest_start(options);
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"print('x') log.error('y') return 1\"}", &r);
	expect_json(&r, 200, "{\"result\":1}");
	httpc_response_free(&r);
}
END_TEST

START_TEST(each_entry_should_reach_the_server_log_at_debug_level)
{
	static const char *const options[] = { "--workers", "1", "--log-level", "debug", NULL };
	apitest_start(options);
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"print('first-line-9731') log.warn('second', 2) "
	    "return 1\"}", &r);
	ck_assert_int_eq(r.status, 200);
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"log.error('third-line-9731') error('x')\"}", &r);
	ck_assert_int_eq(r.status, 422);
	httpc_response_free(&r);
	/* The lines are written before the answer is queued. */
	char *log = server_log(&apitest_server);
	ck_assert_msg(strstr(log, "/v1/exec: worker ") != NULL, "log:\n%s", log);
	ck_assert_msg(strstr(log, "job log: info: first-line-9731\n") != NULL, "log:\n%s", log);
	ck_assert_msg(strstr(log, "job log: warn: second\\x092\n") != NULL, "log:\n%s", log);
	ck_assert_msg(strstr(log, "job log: error: third-line-9731\n") != NULL, "log:\n%s", log);
	free(log);
}
END_TEST

static Suite *
logs_suite(void)
{
	Suite *s = suite_create("logs");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, print_should_capture_its_arguments_tab_separated_without_addresses);
	tcase_add_test(api, log_functions_should_keep_their_levels_in_order);
	tcase_add_test(api, an_answer_without_output_should_have_no_logs_key);
	tcase_add_test(api, bytes_that_are_not_utf8_should_become_the_replacement_character);
	tcase_add_test(api, a_tostring_that_raises_should_leave_no_half_entry);
	tcase_add_test(api, error_answers_should_carry_the_logs);
	tcase_add_test(api, a_soft_stopped_job_should_answer_with_its_logs);
	tcase_add_test(api, a_stored_script_should_answer_with_its_logs);
	suite_add_tcase(s, api);

	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, the_log_should_stop_at_max_log_bytes_with_one_marker);
	tcase_add_test(own, max_log_bytes_0_should_capture_nothing);
	tcase_add_test(own, each_entry_should_reach_the_server_log_at_debug_level);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(logs_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
