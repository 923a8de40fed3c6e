/*
 * test_usage.c - what a job cost, as the real luapoold tells it: the
 * Server-Timing header of every answer a job gave, the "usage" object a
 * request asks for ("usage": true) and its plausible values (CPU of a busy
 * job, the heap of a big table, cache miss then hit), the slow-job log
 * line, the job and process series of /metrics, every limit in /v1/info,
 * and the depth rule of a request's context (400 invalid_request naming
 * the path).  Bounds leave room for a loaded 2-core machine under ASan.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "luapool.h"
#include "support/apitest.h"
#include "support/httpc.h"
#include "support/server.h"
#include "support/support.h"

#define BIG_TABLE_SOURCE "local t = {} for i = 1, 200000 do t[i] = {i} end return #t"

/* Server-Timing "queue;dur=Q, run;dur=R", or fails the test. */
static void
parse_server_timing(const struct httpc_response *r, double *queue, double *run)
{
	const char *timing = httpc_header(r, "Server-Timing");
	ck_assert_msg(timing != NULL, "no Server-Timing; status %d", r->status);
	int consumed = 0;
	ck_assert_msg(sscanf(timing, "queue;dur=%lf, run;dur=%lf%n", queue, run, &consumed) == 2 &&
	    timing[consumed] == '\0', "Server-Timing: %s", timing);
	ck_assert(*queue >= 0 && *run >= 0 && *queue < 60000 && *run < 60000);
}

/* POSTs body to path and returns the parsed "usage" object's document
 * (caller frees), checking its fields and the Server-Timing header. */
static cJSON *
ask_usage(const char *path, const char *body, const cJSON **usage)
{
	struct httpc_response r;
	post_json(path, body, &r);
	expect_json(&r, 200, NULL);
	double queue, run;
	parse_server_timing(&r, &queue, &run);
	cJSON *doc = parse(&r);
	*usage = cJSON_GetObjectItemCaseSensitive(doc, "usage");
	ck_assert_msg(cJSON_IsObject(*usage), "no usage: %s", r.body);
	ck_assert_int_eq(cJSON_GetArraySize(*usage), 5);
	/* The same numbers as the header, formatted the same way. */
	ck_assert(apitest_number_member(*usage, "queued_ms") == queue);
	ck_assert(apitest_number_member(*usage, "run_ms") == run);
	double cpu = apitest_number_member(*usage, "cpu_ms");
	ck_assert_msg(cpu >= 0 && cpu <= run, "cpu %g run %g", cpu, run);
	ck_assert(apitest_number_member(*usage, "heap_peak_bytes") > 0);
	const char *cache = apitest_string_member(*usage, "cache");
	ck_assert_msg(cache && (strcmp(cache, "hit") == 0 || strcmp(cache, "miss") == 0),
	    "cache %s", cache ? cache : "(none)");
	httpc_response_free(&r);
	return doc;
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

/* {"source": HELLO_SOURCE, "context": {...}, <extra>} */
static char *
hello_with(const char *extra)
{
	char *body = malloc(strlen(HELLO_BODY) + strlen(extra) + 2);
	size_t len = strlen(HELLO_BODY) - 1;
	memcpy(body, HELLO_BODY, len);
	sprintf(body + len, ",%s}", extra);
	return body;
}

/* Server-Timing --------------------------------------------------------- */

START_TEST(every_answer_from_a_job_should_carry_server_timing)
{
	struct httpc_response r;
	double queue, run;
	post_json("/v1/exec", HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	parse_server_timing(&r, &queue, &run);
	httpc_response_free(&r);

	post_json("/v1/exec", "{\"source\":\"error('boom')\"}", &r);
	expect_problem(&r, 422, "script_error");
	parse_server_timing(&r, &queue, &run);
	httpc_response_free(&r);

	ask("PUT", "/v1/scripts/timed", JSON_HEADERS, "{\"source\":\"return 7\"}", &r);
	ck_assert_int_eq(r.status, 201);
	httpc_response_free(&r);
	post_json("/v1/scripts/timed", "{}", &r);
	expect_json(&r, 200, "{\"result\":7}");
	parse_server_timing(&r, &queue, &run);
	httpc_response_free(&r);

	/* No job, no timing. */
	get_path("/v1/info", &r);
	ck_assert_ptr_null(httpc_header(&r, "Server-Timing"));
	httpc_response_free(&r);
}
END_TEST

/* usage ------------------------------------------------------------------ */

START_TEST(usage_should_be_in_the_body_only_when_asked_for)
{
	struct httpc_response r;
	post_json("/v1/exec", HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	char *body = hello_with("\"usage\":false");
	post_json("/v1/exec", body, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	free(body);

	body = hello_with("\"usage\":true");
	const cJSON *usage;
	cJSON *doc = ask_usage("/v1/exec", body, &usage);
	ck_assert_str_eq(apitest_string_member(doc, "result"), "Hello from Lua");
	cJSON_Delete(doc);
	free(body);

	/* A stored script's run too. */
	ask("PUT", "/v1/scripts/used", JSON_HEADERS, "{\"source\":\"return {n = 1}\"}", &r);
	ck_assert_int_eq(r.status, 201);
	httpc_response_free(&r);
	doc = ask_usage("/v1/scripts/used", "{\"usage\":true}", &usage);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "result")));
	cJSON_Delete(doc);
	post_json("/v1/scripts/used", "{}", &r);
	expect_json(&r, 200, "{\"result\":{\"n\":1}}");
	httpc_response_free(&r);

	/* Not for a compile, and never on a problem. */
	post_json("/v1/compile", "{\"source\":\"return 1\",\"usage\":true}", &r);
	expect_json(&r, 200, NULL);
	ck_assert_ptr_null(strstr(r.body, "usage"));
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"error('x')\",\"usage\":true}", &r);
	expect_problem(&r, 422, "script_error");
	ck_assert_ptr_null(strstr(r.body, "usage"));
	httpc_response_free(&r);
}
END_TEST

START_TEST(usage_should_be_a_boolean)
{
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"usage\":1}", 400,
	    "invalid_request");
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"usage\":\"yes\"}", 400,
	    "invalid_request");
	const cJSON *usage;
	cJSON_Delete(ask_usage("/v1/exec", "{\"source\":\"return 1\",\"usage\":true}", &usage));
}
END_TEST

START_TEST(usage_should_tell_cpu_heap_and_cache_apart)
{
	static const char *const options[] = { "--workers", "1", NULL };
	apitest_start(options);
	const cJSON *usage;

	/* A job that burns 50 ms of CPU. */
	char *request = apitest_source_request(BUSY_SOURCE("0.05"), 0);
	char *busy = malloc(strlen(request) + 16);
	sprintf(busy, "%.*s,\"usage\":true}", (int)strlen(request) - 1, request);
	cJSON_free(request);
	cJSON *doc = ask_usage("/v1/exec", busy, &usage);
	double cpu = apitest_number_member(usage, "cpu_ms");
	ck_assert_msg(cpu >= 40, "cpu_ms %g", cpu);
	ck_assert(apitest_number_member(usage, "run_ms") >= cpu);
	cJSON_Delete(doc);
	free(busy);

	/* A big table peaks higher than hello; the same source again hits the
	 * worker's cache. */
	char *hello = hello_with("\"usage\":true");
	doc = ask_usage("/v1/exec", hello, &usage);
	double hello_heap = apitest_number_member(usage, "heap_peak_bytes");
	ck_assert(apitest_number_member(usage, "cpu_ms") < 40);
	cJSON_Delete(doc);
	doc = ask_usage("/v1/exec", hello, &usage);
	ck_assert_str_eq(apitest_string_member(usage, "cache"), "hit");
	cJSON_Delete(doc);
	free(hello);

	const char *big = "{\"source\":\"" BIG_TABLE_SOURCE "\",\"usage\":true}";
	doc = ask_usage("/v1/exec", big, &usage);
	ck_assert_str_eq(apitest_string_member(usage, "cache"), "miss");
	double big_heap = apitest_number_member(usage, "heap_peak_bytes");
	ck_assert_msg(big_heap > hello_heap + 4 * 1024 * 1024, "big %g hello %g", big_heap,
	    hello_heap);
	ck_assert(big_heap <= 128.0 * 1024 * 1024);
	cJSON_Delete(doc);
	doc = ask_usage("/v1/exec", big, &usage);
	ck_assert_str_eq(apitest_string_member(usage, "cache"), "hit");
	cJSON_Delete(doc);
}
END_TEST

/* The slow-job log ------------------------------------------------------- */

START_TEST(a_job_over_slow_job_ms_should_be_logged_with_its_request_id)
{
	static const char *const options[] = { "--workers", "1", "--slow-job-ms", "30", NULL };
	apitest_start(options);
	struct httpc_response r;
	ask("POST", "/v1/exec", JSON_HEADERS "X-Request-Id: quick-one\r\n", HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	char *busy = apitest_source_request(BUSY_SOURCE("0.08"), 0);
	ask("POST", "/v1/exec", JSON_HEADERS "X-Request-Id: slow-one\r\n", busy, &r);
	expect_json(&r, 200, DONE_RESULT);
	httpc_response_free(&r);
	cJSON_free(busy);

	char *log = log_with("id=slow-one");
	const char *line = strstr(log, ": warn: ");
	ck_assert_msg(line && strstr(line, "slow job: exec - queue=") && strstr(line, " run="),
	    "log:\n%s", log);
	ck_assert_msg(strstr(log, "id=quick-one") == NULL, "log:\n%s", log);
	free(log);
}
END_TEST

/* /metrics ---------------------------------------------------------------- */

static double
metric(const char *text, const char *series)
{
	char prefix[160];
	snprintf(prefix, sizeof(prefix), "\n%s ", series);
	const char *at = strstr(text, prefix);
	ck_assert_msg(at != NULL, "no %s in:\n%s", series, text);
	return strtod(at + strlen(prefix), NULL);
}

START_TEST(metrics_should_have_job_times_build_info_and_process_series)
{
	expect_hello_works();
	expect_hello_works();
	struct httpc_response r;
	get_path("/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(metric(r.body, "luapoold_job_run_seconds_count") >= 2);
	ck_assert(metric(r.body, "luapoold_job_queue_seconds_count") >= 2);
	ck_assert(metric(r.body, "luapoold_job_run_seconds_bucket{le=\"+Inf\"}") >= 2);
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE luapoold_job_run_seconds histogram\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "\nluapoold_build_info{version=\"" LUAPOOL_VERSION
	    "\",luajit=\"LuaJIT "));
	ck_assert(metric(r.body, "process_resident_memory_bytes") > 1024 * 1024);
	ck_assert(metric(r.body, "process_open_fds") >= 3);
	ck_assert(metric(r.body, "process_cpu_seconds_total") >= 0);
	double start = metric(r.body, "process_start_time_seconds");
	double now = (double)time(NULL);
	ck_assert_msg(start > now - 120 && start <= now + 1, "start %f now %f", start, now);
	httpc_response_free(&r);
}
END_TEST

/* /v1/info ---------------------------------------------------------------- */

START_TEST(info_should_list_every_limit)
{
	static const char *const options[] = { "--workers", "1", "--memory-limit-mb", "64",
		"--max-json-depth", "40", "--max-result-bytes", "65536", NULL };
	apitest_start(options);
	static const struct { const char *name; double value; } limits[] = {
		{ "max_body_bytes", 8388608 }, { "max_timeout_ms", 60000 },
		{ "max_connections", 1024 }, { "default_timeout_ms", 1000 },
		{ "memory_limit_mb", 64 }, { "max_result_bytes", 65536 },
		{ "max_json_depth", 40 }, { "max_inflight_bytes", 268435456 },
		{ "queue_depth", 1024 }, { "request_read_timeout_s", 10 },
		{ "max_connections_per_ip", 256 }, { "connection_timeout_s", 30 },
		{ "max_log_bytes", 65536 },
	};
	struct httpc_response r;
	get_path("/v1/info", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	const cJSON *got = cJSON_GetObjectItemCaseSensitive(doc, "limits");
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		ck_assert_msg(apitest_number_member(got, limits[i].name) == limits[i].value,
		    "%s in %s", limits[i].name, r.body);
	cJSON_Delete(doc);
	httpc_response_free(&r);
}
END_TEST

/* The depth rule ------------------------------------------------------------ */

/* {"source":"return 1","context": X} where X is `depth` objects, each
 * {"a": ...} around the next, the innermost {"a":1}. */
static char *
context_of_depth(unsigned depth)
{
	char *body = malloc(64 + 6 * (size_t)depth), *at = body;
	at += sprintf(at, "{\"source\":\"return 1\",\"context\":");
	for (unsigned i = 0; i < depth; i++)
		at += sprintf(at, "{\"a\":");
	*at++ = '1';
	for (unsigned i = 0; i <= depth; i++)
		*at++ = '}';
	*at = '\0';
	return body;
}

START_TEST(a_context_deeper_than_max_json_depth_should_get_400_naming_the_path)
{
	struct httpc_response r;
	char *body = context_of_depth(256);
	post_json("/v1/exec", body, &r);
	expect_json(&r, 200, "{\"result\":1}");
	httpc_response_free(&r);
	free(body);

	body = context_of_depth(257);
	post_json("/v1/exec", body, &r);
	cJSON *doc = parse_problem(&r, 400, "invalid_request");
	const char *detail = apitest_string_member(doc, "detail");
	ck_assert_msg(strncmp(detail, "context.a.a.a.a", 15) == 0 &&
	    strstr(detail, "...: nested deeper than max_json_depth (256)") != NULL,
	    "detail: %s", detail);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	free(body);

	/* Text that is no JSON stays invalid_json, however deep. */
	expect_post_problem("/v1/exec", "{\"context\":[[[[[[[[[[[[[[[[[[[[[[[", 400, "invalid_json");
}
END_TEST

START_TEST(the_depth_path_should_name_arrays_and_quoted_keys)
{
	static const char *const options[] = { "--workers", "1", "--max-json-depth", "3", NULL };
	apitest_start(options);
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"return 1\",\"context\":{\"x y\":[[1]]}}", &r);
	expect_json(&r, 200, "{\"result\":1}");
	httpc_response_free(&r);
	post_json("/v1/exec", "{\"source\":\"return 1\",\"context\":{\"x y\":[[[1]]]}}", &r);
	cJSON *doc = parse_problem(&r, 400, "invalid_request");
	ck_assert_str_eq(apitest_string_member(doc, "detail"),
	    "context[\"x y\"][1][1]: nested deeper than max_json_depth (3)");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	/* Results deeper than the limit are the script's: 422. */
	expect_post_problem("/v1/exec", "{\"source\":\"return {{{{1}}}}\"}", 422,
	    "result_not_serializable");
}
END_TEST

static Suite *
usage_suite(void)
{
	Suite *s = suite_create("usage");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, every_answer_from_a_job_should_carry_server_timing);
	tcase_add_test(api, usage_should_be_in_the_body_only_when_asked_for);
	tcase_add_test(api, usage_should_be_a_boolean);
	tcase_add_test(api, metrics_should_have_job_times_build_info_and_process_series);
	tcase_add_test(api, a_context_deeper_than_max_json_depth_should_get_400_naming_the_path);
	suite_add_tcase(s, api);
	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, usage_should_tell_cpu_heap_and_cache_apart);
	tcase_add_test(own, a_job_over_slow_job_ms_should_be_logged_with_its_request_id);
	tcase_add_test(own, info_should_list_every_limit);
	tcase_add_test(own, the_depth_path_should_name_arrays_and_quoted_keys);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(usage_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
