/*
 * test_server.c - the integration suite for the server as a whole: the
 * real luapoold on a free port of 127.0.0.1 (tests/support/apitest.h).
 * /healthz, /v1/info and /metrics; routing (404, 405) and body limits
 * (413); slow clients and many connections; auth (401); overload (503);
 * the SIGTERM drain.  What a route computes is for test_exec.c and
 * test_scripts_api.c; the command line for test_command_line.c.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "luapool.h"
#include "support/apitest.h"
#include "support/httpc.h"
#include "support/server.h"
#include "support/support.h"

/* Health, info and metrics ------------------------------------------------- */

START_TEST(healthz_info_and_metrics_should_describe_the_server)
{
	struct httpc_response r;
	get_path("/healthz", &r);
	expect_json(&r, 200, "{\"status\":\"ok\",\"workers\":2}");
	httpc_response_free(&r);

	get_path("/v1/info", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	ck_assert_str_eq(apitest_string_member(doc, "version"), LUAPOOL_VERSION);
	ck_assert_ptr_nonnull(strstr(apitest_string_member(doc, "engine"), "LuaJIT"));
	const cJSON *workers = cJSON_GetObjectItemCaseSensitive(doc, "workers");
	ck_assert(apitest_number_member(workers, "target") == 2);
	ck_assert(apitest_number_member(workers, "live") == 2);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "limits")));
	cJSON_Delete(doc);
	httpc_response_free(&r);

	expect_hello_works();
	get_path("/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(httpc_header(&r, "Content-Type"), "text/plain"));
	ck_assert_ptr_nonnull(strstr(r.body, "luapoold_requests_total{route=\"exec\","
	    "status=\"200\"} "));
	ck_assert_ptr_nonnull(strstr(r.body, "luapoold_workers{state=\"live\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE luapoold_workers gauge\n"));
	httpc_response_free(&r);
}
END_TEST

/* Routing and uploads: 404, 405, 413 --------------------------------------- */

START_TEST(unknown_paths_should_answer_404_not_found)
{
	struct httpc_response r;
	get_path("/nothing/here", &r);
	expect_problem(&r, 404, "not_found");
	httpc_response_free(&r);
	get_path("/v1", &r);
	expect_problem(&r, 404, "not_found");
	httpc_response_free(&r);
	expect_post_problem("/v1/exec/more", HELLO_BODY, 404, "not_found");
	expect_hello_works();
}
END_TEST

static void
expect_not_allowed_at(int line, const char *method, const char *path, const char *allow)
{
	struct httpc_response r;
	apitest_ask_at(line, method, path, NULL, strcmp(method, "POST") == 0 ? "{}" : NULL, &r);
	cJSON_Delete(apitest_problem_at(line, &r, 405, "method_not_allowed"));
	const char *got = httpc_header(&r, "Allow");
	ck_assert_msg(got && strcmp(got, allow) == 0, "line %d: Allow: %s, expected %s", line,
	    got ? got : "(none)", allow);
	httpc_response_free(&r);
}
#define expect_not_allowed(m, p, a) expect_not_allowed_at(__LINE__, m, p, a)

START_TEST(wrong_methods_should_answer_405_with_allow)
{
	expect_not_allowed("GET", "/v1/exec", "POST");
	expect_not_allowed("DELETE", "/v1/compile", "POST");
	expect_not_allowed("POST", "/healthz", "GET, HEAD");
	expect_not_allowed("PUT", "/v1/info", "GET, HEAD");
	expect_not_allowed("DELETE", "/v1/scripts", "GET, HEAD");
	expect_not_allowed("PATCH", "/v1/scripts/x", "GET, HEAD, PUT, POST, DELETE");
	expect_hello_works();
}
END_TEST

START_TEST(huge_upload_should_be_refused_with_413_before_it_is_sent)
{
	static const char head[] = "POST /v1/exec HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/json\r\nContent-Length: 67108864\r\n\r\n";
	char request[sizeof(head) - 1 + 4096];
	memcpy(request, head, sizeof(head) - 1);
	memset(request + sizeof(head) - 1, ' ', 4096);

	int fd = httpc_connect(apitest_server.port, 5000);
	ck_assert_int_ne(fd, -1);
	int64_t start = support_now_ms();
	ck_assert_int_eq(httpc_send(fd, request, sizeof(request)), 0);
	struct httpc_response r;
	read_answer(fd, &r);
	int64_t elapsed = support_now_ms() - start;
	expect_problem(&r, 413, "payload_too_large");
	ck_assert(httpc_closes(&r));
	ck_assert_msg(elapsed < 1000, "413 after %lld ms", (long long)elapsed);
	/* The server closes: the other 64 MiB are never read. */
	char byte;
	ssize_t got = recv(fd, &byte, 1, 0);
	ck_assert_msg(got == 0 || (got == -1 && errno != EAGAIN && errno != EWOULDBLOCK),
	    "the connection stayed open after the 413 (recv: %zd)", got);
	httpc_response_free(&r);
	close(fd);

	/* With Expect: 100-continue, the answer is the 413, not a 100. */
	fd = httpc_connect(apitest_server.port, 5000);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(httpc_send_request(fd, "POST", "/v1/exec", "Expect: 100-continue\r\n"
	    "Content-Length: 67108864\r\n", NULL, 0), 0);
	read_answer(fd, &r);
	expect_problem(&r, 413, "payload_too_large");
	httpc_response_free(&r);
	close(fd);
	expect_hello_works();
}
END_TEST

/* The value of an unlabelled metric, or -1. */
static long
metric_value(const char *text, const char *name)
{
	size_t len = strlen(name);
	for (const char *line = text; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, name, len) == 0 && line[len] == ' ')
			return strtol(line + len + 1, NULL, 10);
	}
	return -1;
}

/* Slow clients ------------------------------------------------------------- */

#define SLOW_CLIENTS 500

START_TEST(slow_clients_should_not_delay_other_requests)
{
	/* All from 127.0.0.1: no per-address limit here. */
	static const char *const options[] = { "--workers", "2", "--max-connections", "2000",
	    "--max-connections-per-ip", "0", NULL };
	static const char partial[] = "POST /v1/exec HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"source\":";
	ck_assert_int_ge(support_raise_file_limit(4096), SLOW_CLIENTS + 100);
	apitest_start(options);

	static int fds[SLOW_CLIENTS];
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		fds[i] = httpc_connect(apitest_server.port, 5000);
		ck_assert_msg(fds[i] != -1, "connection %d: %s", i, strerror(errno));
		ck_assert_int_eq(httpc_send(fds[i], partial, sizeof(partial) - 1), 0);
	}
	/* All of them accepted and waiting for the rest of their body. */
	int64_t deadline = support_now_ms() + WAIT_MS;
	long open = 0;
	while (open <= SLOW_CLIENTS) {
		struct httpc_response r;
		get_path("/metrics", &r);
		open = metric_value(r.body, "luapoold_connections");
		httpc_response_free(&r);
		ck_assert_msg(support_now_ms() < deadline, "only %ld connections open", open);
		if (open <= SLOW_CLIENTS)
			usleep(POLL_STEP_US);
	}
	/* The fastest of five: one slow sample on a loaded machine says
	 * nothing; all of them slow means the slow clients hold the server. */
	int64_t fastest = INT64_MAX;
	for (int i = 0; i < 5; i++) {
		int64_t start = support_now_ms();
		expect_hello_works();
		int64_t elapsed = support_now_ms() - start;
		fastest = elapsed < fastest ? elapsed : fastest;
	}
	ck_assert_msg(fastest <= 500, "hello requests took at least %lld ms beside %d slow clients",
	    (long long)fastest, SLOW_CLIENTS);
	for (int i = 0; i < SLOW_CLIENTS; i++)
		close(fds[i]);
	expect_hello_works();
}
END_TEST

/* Limits: 413 (header and chunked body) and the 422 limits ----------------- */

START_TEST(limits_should_answer_413_and_422)
{
	static const char *const options[] = { "--workers", "1", "--memory-limit-mb", "32",
	    "--max-result-bytes", "1024", "--max-body-bytes", "64k", NULL };
	apitest_start(options);

	expect_post_problem("/v1/exec", "{\"source\":\"local t={} for i=1,1e9 do t[i]={i} end\","
	    "\"timeout_ms\":20000}", 422, "memory_limit_exceeded");
	expect_hello_works();
	expect_post_problem("/v1/exec", "{\"source\":\"return string.rep('x', 5000)\"}", 422,
	    "result_too_large");
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"return #string.rep('x', 5000)\"}", &r);
	expect_json(&r, 200, "{\"result\":5000}");
	httpc_response_free(&r);

	/* Declared too large: refused on the headers. */
	int fd = httpc_connect(apitest_server.port, 5000);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(httpc_send_request(fd, "POST", "/v1/exec", "Content-Length: 65537\r\n",
	    NULL, 0), 0);
	read_answer(fd, &r);
	expect_problem(&r, 413, "payload_too_large");
	httpc_response_free(&r);
	close(fd);

	/* Chunked, so only counting tells: 80 KiB in 16 KiB chunks. */
	fd = httpc_connect(apitest_server.port, 5000);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(httpc_send_request(fd, "POST", "/v1/exec",
	    "Transfer-Encoding: chunked\r\n", NULL, 0), 0);
	static char chunk[16 * 1024 + 16];
	int head = snprintf(chunk, sizeof(chunk), "%x\r\n", 16 * 1024);
	memset(chunk + head, ' ', 16 * 1024);
	memcpy(chunk + head + 16 * 1024, "\r\n", 2);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(httpc_send(fd, chunk, (size_t)head + 16 * 1024 + 2), 0);
	ck_assert_int_eq(httpc_send(fd, "0\r\n\r\n", 5), 0);
	read_answer(fd, &r);
	expect_problem(&r, 413, "payload_too_large");
	httpc_response_free(&r);
	close(fd);

	/* A chunked body under the limit is fine. */
	fd = httpc_connect(apitest_server.port, 5000);
	ck_assert_int_ne(fd, -1);
	char small[256];
	int n = snprintf(small, sizeof(small), "POST /v1/exec HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n", strlen(HELLO_BODY),
	    HELLO_BODY);
	ck_assert_int_eq(httpc_send(fd, small, (size_t)n), 0);
	read_answer(fd, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	close(fd);
	expect_hello_works();
}
END_TEST

/* 401 ---------------------------------------------------------------------- */

START_TEST(auth_should_require_the_bearer_token)
{
	char token_path[128];
	apitest_make_scratch_dir();
	snprintf(token_path, sizeof(token_path), "%s/token", apitest_scratch);
	ck_assert_int_eq(support_write_file(token_path, "s3cret-t0ken\n", 13), 0);
	const char *const options[] = { "--workers", "1", "--auth-token-file", token_path, NULL };
	apitest_start(options);

	struct httpc_response r;
	post_json("/v1/exec", HELLO_BODY, &r);
	expect_problem(&r, 401, "unauthorized");
	const char *challenge = httpc_header(&r, "WWW-Authenticate");
	ck_assert_msg(challenge && strncmp(challenge, "Bearer", 6) == 0, "WWW-Authenticate: %s",
	    challenge ? challenge : "(none)");
	httpc_response_free(&r);
	ask("POST", "/v1/exec", JSON_HEADERS "Authorization: Bearer wrong\r\n", HELLO_BODY, &r);
	expect_problem(&r, 401, "unauthorized");
	httpc_response_free(&r);
	ask("POST", "/v1/exec", JSON_HEADERS "Authorization: Basic czNjcmV0LXQwa2Vu\r\n",
	    HELLO_BODY, &r);
	expect_problem(&r, 401, "unauthorized");
	httpc_response_free(&r);
	get_path("/v1/info", &r);
	expect_problem(&r, 401, "unauthorized");
	httpc_response_free(&r);
	get_path("/v1/scripts", &r);
	expect_problem(&r, 401, "unauthorized");
	httpc_response_free(&r);

	apitest_expect_hello_works_at(__LINE__, "Authorization: Bearer s3cret-t0ken\r\n");
	ask("GET", "/v1/info", "Authorization: Bearer s3cret-t0ken\r\n", NULL, &r);
	expect_json(&r, 200, NULL);
	httpc_response_free(&r);
	get_path("/healthz", &r);
	expect_json(&r, 200, NULL);
	httpc_response_free(&r);
	get_path("/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	httpc_response_free(&r);
}
END_TEST

/* 503 ---------------------------------------------------------------------- */

START_TEST(overload_should_answer_503_with_retry_after)
{
	static const char *const options[] = { "--workers", "1", "--queue-depth", "1", NULL };
	apitest_start(options);
	char *slow = apitest_source_request(BUSY_SOURCE("0.5"), 5000);
	int fds[4], ok = 0, overloaded = 0;
	for (int i = 0; i < 4; i++)
		fds[i] = send_on_new_connection("/v1/exec", slow);
	for (int i = 0; i < 4; i++) {
		struct httpc_response r;
		read_answer(fds[i], &r);
		close(fds[i]);
		if (r.status == 200) {
			expect_json(&r, 200, DONE_RESULT);
			ok++;
		} else {
			expect_problem(&r, 503, "overloaded");
			const char *retry = httpc_header(&r, "Retry-After");
			ck_assert_msg(retry && atoi(retry) >= 1, "Retry-After: %s",
			    retry ? retry : "(none)");
			overloaded++;
		}
		httpc_response_free(&r);
	}
	ck_assert_msg(ok >= 1 && overloaded >= 1, "%d ok, %d overloaded", ok, overloaded);
	cJSON_free(slow);
	expect_hello_works();
}
END_TEST

/* Drain -------------------------------------------------------------------- */

START_TEST(drain_should_answer_503_shutting_down_and_finish_the_running_job)
{
	static const char *const options[] = { "--workers", "2", NULL };
	apitest_start(options);
	/* A keep-alive connection opened before the drain: new ones may be
	 * refused once the daemon stops listening. */
	int idle = httpc_connect(apitest_server.port, 5000);
	ck_assert_int_ne(idle, -1);
	struct httpc_response r;
	ck_assert_int_eq(httpc_send_request(idle, "GET", "/healthz", NULL, NULL, 0), 0);
	read_answer(idle, &r);
	expect_json(&r, 200, NULL);
	ck_assert(!httpc_closes(&r));
	httpc_response_free(&r);

	char *slow = apitest_source_request(BUSY_SOURCE("1.0"), 5000);
	int job = send_on_new_connection("/v1/exec", slow);
	wait_for_busy_workers(1);
	ck_assert_int_eq(kill(apitest_server.pid, SIGTERM), 0);

	int64_t deadline = support_now_ms() + 800;
	for (;;) {
		ck_assert_int_eq(httpc_send_request(idle, "GET", "/healthz", NULL, NULL, 0), 0);
		read_answer(idle, &r);
		if (r.status != 200)
			break;
		httpc_response_free(&r);
		ck_assert_msg(support_now_ms() < deadline, "/healthz still 200 while draining");
		usleep(POLL_STEP_US);
	}
	expect_problem(&r, 503, "shutting_down");
	ck_assert_ptr_nonnull(httpc_header(&r, "Retry-After"));
	int closed = httpc_closes(&r);
	httpc_response_free(&r);
	if (!closed) {
		ck_assert_int_eq(httpc_send_request(idle, "POST", "/v1/exec", JSON_HEADERS,
		    HELLO_BODY, strlen(HELLO_BODY)), 0);
		read_answer(idle, &r);
		expect_problem(&r, 503, "shutting_down");
		ck_assert_ptr_nonnull(httpc_header(&r, "Retry-After"));
		httpc_response_free(&r);
	}
	close(idle);

	read_answer(job, &r);
	expect_json(&r, 200, DONE_RESULT);
	httpc_response_free(&r);
	close(job);
	cJSON_free(slow);
	int status = 0;
	int rc = server_wait_exit(&apitest_server, SERVER_STOP_TIMEOUT_MS, &status);
	expect_clean_exit(rc, status);
}
END_TEST

/* SIGTERM ------------------------------------------------------------------ */

START_TEST(sigterm_should_finish_in_flight_jobs_and_exit_0)
{
	static const char *const options[] = { "--workers", "2", NULL };
	apitest_start(options);
	char *slow = apitest_source_request(BUSY_SOURCE("0.3"), 5000);
	int first = send_on_new_connection("/v1/exec", slow);
	int second = send_on_new_connection("/v1/exec", slow);
	wait_for_busy_workers(2);
	pid_t workers[16];
	int n = support_children(apitest_server.pid, "luapool-worker", workers, 16);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(kill(apitest_server.pid, SIGTERM), 0);

	struct httpc_response r;
	read_answer(first, &r);
	expect_json(&r, 200, DONE_RESULT);
	httpc_response_free(&r);
	read_answer(second, &r);
	expect_json(&r, 200, DONE_RESULT);
	httpc_response_free(&r);
	close(first);
	close(second);
	cJSON_free(slow);

	pid_t daemon_pid = apitest_server.pid;
	int status = 0;
	int rc = server_wait_exit(&apitest_server, SERVER_STOP_TIMEOUT_MS, &status);
	expect_clean_exit(rc, status);
	ck_assert_int_eq(support_children(daemon_pid, "luapool-worker", workers + n, 16 - n), 0);
	int64_t deadline = support_now_ms() + 2000;
	for (int i = 0; i < n; i++) {
		while (support_process_alive(workers[i])) {
			ck_assert_msg(support_now_ms() < deadline, "worker %d outlived the daemon",
			    (int)workers[i]);
			usleep(POLL_STEP_US);
		}
	}
}
END_TEST

/* Suite -------------------------------------------------------------------- */

static Suite *
server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, apitest_setup_with_server, apitest_teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, healthz_info_and_metrics_should_describe_the_server);
	tcase_add_test(api, unknown_paths_should_answer_404_not_found);
	tcase_add_test(api, wrong_methods_should_answer_405_with_allow);
	tcase_add_test(api, huge_upload_should_be_refused_with_413_before_it_is_sent);
	suite_add_tcase(s, api);

	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, slow_clients_should_not_delay_other_requests);
	tcase_add_test(own, limits_should_answer_413_and_422);
	tcase_add_test(own, auth_should_require_the_bearer_token);
	tcase_add_test(own, overload_should_answer_503_with_retry_after);
	tcase_add_test(own, drain_should_answer_503_shutting_down_and_finish_the_running_job);
	tcase_add_test(own, sigterm_should_finish_in_flight_jobs_and_exit_0);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(server_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
