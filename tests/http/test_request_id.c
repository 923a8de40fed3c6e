/*
 * test_request_id.c - request ids against the real luapoold: a usable
 * X-Request-Id comes back in the response header, in the problem body
 * (request_id) and in the access-log line; without one the server makes
 * one up (16 hex digits); an unusable one (too long, a space, non-ASCII)
 * is replaced; early answers (404, 405, 413) carry one too; a well-formed
 * traceparent is logged, a malformed one is not.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/server.h"
#include "support/support.h"

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
/* The longest X-Request-Id kept (HTTP_REQUEST_ID_MAX in the server). */
#define HTTP_ID_MAX_FOR_TEST 128

static const char *const access_log_options[] = { "--workers", "1", "--access-log", "yes",
	NULL };

static int
is_generated_id(const char *id)
{
	if (id == NULL || strlen(id) != 16)
		return 0;
	return strspn(id, "0123456789abcdef") == 16;
}

/* The daemon's log once it holds needle (at most WAIT_MS); caller frees. */
static char *
log_with(const char *needle)
{
	char *log = NULL;
	for (int64_t end = support_now_ms() + WAIT_MS; support_now_ms() < end; usleep(POLL_STEP_US)) {
		free(log);
		log = server_log(&apitest_server);
		if (strstr(log, needle))
			return log;
	}
	ck_abort_msg("no \"%s\" in the log:\n%s", needle, log);
	return NULL;
}

/* The access-log line that holds needle (a copy, caller frees). */
static char *
log_line_with(const char *needle)
{
	char *log = log_with(needle);
	char *at = strstr(log, needle), *start = at, *end = strchr(at, '\n');
	while (start > log && start[-1] != '\n')
		start--;
	char *line = strndup(start, end ? (size_t)(end - start) : strlen(start));
	free(log);
	return line;
}

/* Asks with an X-Request-Id header line (or none) and returns the id the
 * answer's header carries; the problem body, when there is one, must
 * carry the same.  Caller frees. */
static char *
echoed_id(const char *method, const char *path, const char *id_header, const char *body)
{
	char headers[512];
	snprintf(headers, sizeof(headers), JSON_HEADERS "%s", id_header ? id_header : "");
	struct httpc_response r;
	ask(method, path, headers, body, &r);
	const char *id = httpc_header(&r, "X-Request-Id");
	ck_assert_msg(id != NULL, "%s %s: no X-Request-Id (status %d)", method, path, r.status);
	const char *type = httpc_header(&r, "Content-Type");
	if (type && strcmp(type, "application/problem+json") == 0) {
		cJSON *doc = parse(&r);
		const char *in_body = apitest_string_member(doc, "request_id");
		ck_assert_msg(in_body && strcmp(in_body, id) == 0, "body %s, header %s", r.body, id);
		cJSON_Delete(doc);
	}
	char *copy = strdup(id);
	httpc_response_free(&r);
	return copy;
}

START_TEST(a_given_request_id_should_be_echoed_in_header_problem_and_log)
{
	apitest_start(access_log_options);
	char *id = echoed_id("POST", "/v1/exec", "X-Request-Id: order-42.retry_1\r\n",
	    "{\"source\":\"error('boom')\"}");
	ck_assert_str_eq(id, "order-42.retry_1");
	free(id);
	char *line = log_line_with("id=order-42.retry_1 ");
	ck_assert_msg(strstr(line, "POST /v1/exec 422 ") && strstr(line, " code=script_error ") &&
	    strstr(line, " script=- ") && strstr(line, " queue="), "line: %s", line);
	free(line);

	/* On a success too, and the log line names a stored script. */
	struct httpc_response r;
	ask("PUT", "/v1/scripts/named", JSON_HEADERS, "{\"source\":\"return 1\"}", &r);
	httpc_response_free(&r);
	id = echoed_id("POST", "/v1/scripts/named", "X-Request-Id: run-named\r\n", "{}");
	ck_assert_str_eq(id, "run-named");
	free(id);
	line = log_line_with("id=run-named ");
	ck_assert_msg(strstr(line, " 200 ") && strstr(line, " script=named code=- queue="),
	    "line: %s", line);
	free(line);
}
END_TEST

START_TEST(quotes_and_backslashes_in_an_id_should_stay_json)
{
	char *id = echoed_id("POST", "/v1/exec", "X-Request-Id: a\"b\\c\r\n",
	    "{\"source\":\"error('x')\"}");
	ck_assert_str_eq(id, "a\"b\\c");
	free(id);
}
END_TEST

START_TEST(without_an_id_the_server_should_make_one_up)
{
	char *first = echoed_id("POST", "/v1/exec", NULL, HELLO_BODY);
	char *second = echoed_id("POST", "/v1/exec", NULL, "{\"source\":\"error('x')\"}");
	ck_assert_msg(is_generated_id(first) && is_generated_id(second), "%s %s", first, second);
	ck_assert_str_ne(first, second);
	free(first);
	free(second);
	/* Answers decided before any job: 404, 405, 200 without a job. */
	static const struct { const char *method, *path; } early[] = {
		{ "GET", "/nothing" }, { "GET", "/v1/exec" }, { "GET", "/v1/info" },
		{ "GET", "/healthz" }, { "GET", "/v1/scripts/missing" },
	};
	for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
		char *id = echoed_id(early[i].method, early[i].path, NULL, NULL);
		ck_assert_msg(is_generated_id(id), "%s %s: %s", early[i].method, early[i].path, id);
		free(id);
		id = echoed_id(early[i].method, early[i].path, "X-Request-Id: early\r\n", NULL);
		ck_assert_str_eq(id, "early");
		free(id);
	}
}
END_TEST

START_TEST(an_unusable_id_should_be_replaced)
{
	char header[300], longest[HTTP_ID_MAX_FOR_TEST + 2];
	memset(longest, 'x', sizeof(longest));
	longest[HTTP_ID_MAX_FOR_TEST] = '\0';
	snprintf(header, sizeof(header), "X-Request-Id: %s\r\n", longest);
	char *id = echoed_id("POST", "/v1/exec", header, HELLO_BODY);
	ck_assert_str_eq(id, longest);	/* 128 bytes: kept */
	free(id);

	longest[HTTP_ID_MAX_FOR_TEST] = 'x';
	longest[HTTP_ID_MAX_FOR_TEST + 1] = '\0';
	snprintf(header, sizeof(header), "X-Request-Id: %s\r\n", longest);
	const char *const unusable[] = { header, "X-Request-Id: two words\r\n",
		"X-Request-Id: caf\xc3\xa9\r\n", "X-Request-Id: \r\n" };
	for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
		id = echoed_id("POST", "/v1/exec", unusable[i], "{\"source\":\"error('x')\"}");
		ck_assert_msg(is_generated_id(id), "%s gave %s", unusable[i], id);
		free(id);
	}
}
END_TEST

START_TEST(a_traceparent_should_be_logged_when_well_formed)
{
	apitest_start(access_log_options);
	char *id = echoed_id("POST", "/v1/exec", "X-Request-Id: traced\r\ntraceparent: "
	    TRACEPARENT "\r\n", HELLO_BODY);
	free(id);
	char *line = log_line_with("id=traced ");
	ck_assert_msg(strstr(line, " traceparent=" TRACEPARENT) != NULL, "line: %s", line);
	free(line);

	static const char *const malformed[] = {
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",	/* upper case */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",	/* zero trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",	/* zero parent */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",	/* version ff */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",	/* 00 + more */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",	/* short */
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		char headers[256], needle[32];
		snprintf(headers, sizeof(headers), "X-Request-Id: bad-trace-%zu\r\ntraceparent: "
		    "%s\r\n", i, malformed[i]);
		free(echoed_id("POST", "/v1/exec", headers, HELLO_BODY));
		snprintf(needle, sizeof(needle), "id=bad-trace-%zu ", i);
		line = log_line_with(needle);
		ck_assert_msg(strstr(line, "traceparent") == NULL, "line: %s", line);
		free(line);
	}
}
END_TEST

static Suite *
request_id_suite(void)
{
	Suite *s = suite_create("request_id");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, quotes_and_backslashes_in_an_id_should_stay_json);
	tcase_add_test(api, without_an_id_the_server_should_make_one_up);
	tcase_add_test(api, an_unusable_id_should_be_replaced);
	suite_add_tcase(s, api);
	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, a_given_request_id_should_be_echoed_in_header_problem_and_log);
	tcase_add_test(own, a_traceparent_should_be_logged_when_well_formed);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(request_id_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
