/*
 * test_limits.c - the front end's limits against greedy and slow clients
 * (issue "front end and supervisor hardening"), each over real sockets to
 * a daemon of its own: a big PUT is parsed off the event loop and leaves
 * no memory behind; request bytes in memory have a server-wide budget;
 * trickling clients are closed at the request read deadline; a full
 * connection table still lets /healthz in; ambiguous framing is refused.
 * Time bounds are generous enough for a loaded 2-core machine under ASan.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/httpc.h"
#include "support/support.h"

#define HEALTHZ_BOUND_MS 500
#define IDLE_RSS_BOUND_KB (64 * 1024)

static int64_t
time_healthz(void)
{
	struct httpc_response r;
	int64_t start = support_now_ms();
	get_path("/healthz", &r);
	int64_t elapsed = support_now_ms() - start;
	ck_assert_int_eq(r.status, 200);
	httpc_response_free(&r);
	return elapsed;
}

/* A connection with these bytes sent (headers, maybe part of a body). */
static int
send_raw(const char *bytes)
{
	int fd = httpc_connect(apitest_server.port, 5000);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(httpc_send(fd, bytes, strlen(bytes)), 0);
	return fd;
}

/* Whether the server closed fd (end of input or a reset), without waiting. */
static int
closed_by_server(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 0) != 1)
		return 0;
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	return n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static int
log_contains(const char *text)
{
	char *log = server_log(&apitest_server);
	int found = strstr(log, text) != NULL;
	free(log);
	return found;
}

/* 1. One big PUT ------------------------------------------------------------ */

/* An 8 MB body cJSON made 4 million nodes of on the event loop: 330 MB of
 * RSS kept afterwards, /healthz stalled.  Now a worker parses it. */
START_TEST(a_big_invalid_put_should_stall_nothing_and_leave_no_memory_behind)
{
	static const char *const options[] = { "--workers", "2", NULL };
	apitest_start(options);
	size_t n = 3900000, len = 0;
	char *body = malloc(2 * n + 64);
	/* A known field (an unknown one is refused before anything else). */
	len += (size_t)sprintf(body, "{\"source\":5,\"context\":[");
	for (size_t i = 0; i < n; i++) {
		memcpy(body + len, "1,", 2);
		len += 2;
	}
	len--;			/* the last comma */
	len += (size_t)sprintf(body + len, "]}");
	ck_assert_uint_lt(len, 8u << 20);

	int fd = httpc_connect(apitest_server.port, 30000);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(httpc_send_request(fd, "PUT", "/v1/scripts/big", JSON_HEADERS, body,
	    len), 0);
	/* The median of the /healthz times while the PUT is handled: a single
	 * slow sample is the machine, most of them slow is the server. */
	int64_t times[4096];
	int samples = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	while (poll(&pfd, 1, 0) == 0 && samples < 4096)
		times[samples++] = time_healthz();
	int64_t median = 0;
	for (int i = 0; i < samples; i++) {	/* a partial selection: the median */
		int below = 0;
		for (int j = 0; j < samples; j++)
			below += times[j] < times[i];
		if (below <= samples / 2 && times[i] > median)
			median = times[i];
	}
	struct httpc_response r;
	read_answer(fd, &r);
	expect_problem(&r, 400, "invalid_request");
	httpc_response_free(&r);
	close(fd);
	free(body);
	ck_assert_msg(median < HEALTHZ_BOUND_MS, "/healthz took a median %lld ms during the PUT",
	    (long long)median);
#ifndef __SANITIZE_ADDRESS__	/* ASan keeps freed memory in quarantine */
	long rss = -1;
	for (int64_t end = support_now_ms() + 2000; support_now_ms() < end; usleep(20000)) {
		rss = support_proc_status(apitest_server.pid, "VmRSS");
		if (rss >= 0 && rss < IDLE_RSS_BOUND_KB)
			break;
	}
	ck_assert_msg(rss >= 0 && rss < IDLE_RSS_BOUND_KB, "supervisor VmRSS %ld kB after the "
	    "PUT", rss);
#endif
	expect_hello_works();
}
END_TEST

/* 2. The request byte budget ------------------------------------------------ */

/* Bodies were bounded per connection only: max_connections x
 * max_body_bytes in the worst case. */
START_TEST(bodies_past_the_inflight_budget_should_get_503_with_retry_after)
{
	static const char *const options[] = { "--workers", "1", "--max-body-bytes", "1M",
	    "--max-inflight-bytes", "1536k", NULL };
	apitest_start(options);
	/* 1 MB announced and not sent: its room is taken from the budget. */
	static const char holder_head[] = "POST /v1/exec HTTP/1.1\r\nHost: x\r\nContent-Type: "
	    "application/json\r\nContent-Length: 1000000\r\n\r\n{\"source\":";
	int holder = send_raw(holder_head);
	static const char big_head[] = "POST /v1/exec HTTP/1.1\r\nHost: x\r\nContent-Type: "
	    "application/json\r\nContent-Length: 700060\r\n\r\n";
	size_t pad = 700000;
	char *big = malloc(pad + 128);
	int len = sprintf(big, "{\"source\":\"return #ctx.pad\",\"context\":{\"pad\":\"");
	memset(big + len, 'p', pad);
	strcpy(big + len + pad, "\"}}");
	/* Refused from its headers, before any of its body is sent (a body
	 * sent anyway would be unread at the close: a reset, racing the 503). */
	struct httpc_response r;
	int refused = 0;
	for (int64_t end = support_now_ms() + WAIT_MS; !refused && support_now_ms() < end;) {
		/* Fronts read connections in parallel: a big one may take the
		 * bytes first and the holder be the one refused.  Then it holds
		 * again, on a new connection. */
		struct pollfd pfd = { .fd = holder, .events = POLLIN };
		if (poll(&pfd, 1, 0) == 1) {
			close(holder);
			holder = send_raw(holder_head);
		}
		int fd = httpc_connect(apitest_server.port, 1000);
		ck_assert_int_ne(fd, -1);
		ck_assert_int_eq(httpc_send(fd, big_head, strlen(big_head)), 0);
		if (httpc_read_response(fd, &r) == 0 && r.status == 503) {
			cJSON_Delete(parse_problem(&r, 503, "overloaded"));
			ck_assert_str_eq(httpc_header(&r, "Retry-After"), "1");
			refused = 1;
		}
		httpc_response_free(&r);	/* else the holder was not read yet */
		close(fd);
	}
	ck_assert(refused);
	expect_hello_works();		/* small bodies still fit */
	close(holder);
	char want[64];
	snprintf(want, sizeof(want), "{\"result\":%zu}", pad);
	for (int64_t end = support_now_ms() + WAIT_MS;; usleep(POLL_STEP_US)) {
		int rc = httpc_request(apitest_server.port, "POST", "/v1/exec", JSON_HEADERS, big,
		    strlen(big), &r);
		if ((rc == 0 && r.status != 503) || support_now_ms() > end)
			break;
		httpc_response_free(&r);	/* the holder's charge not yet released */
	}
	expect_json(&r, 200, want);
	httpc_response_free(&r);
	free(big);
}
END_TEST

/* 3. Slow clients ----------------------------------------------------------- */

#define TRICKLERS 200

/* One header byte every 500 ms counted as activity: the connection
 * timeout never fired and trickling clients could hold every slot. */
START_TEST(trickling_clients_should_be_closed_at_the_request_read_deadline)
{
	static const char *const options[] = { "--workers", "1", "--request-read-timeout-s",
	    "2", NULL };
	ck_assert_int_ge(support_raise_file_limit(1024), TRICKLERS + 64);
	apitest_start(options);
	static int fds[TRICKLERS];
	int64_t start = support_now_ms();
	for (int i = 0; i < TRICKLERS; i++)
		fds[i] = send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
	int open = TRICKLERS, asked = 0;
	while (open > 0 && support_now_ms() - start < 6000) {
		usleep(500000);
		open = 0;
		for (int i = 0; i < TRICKLERS; i++) {
			if (fds[i] == -1)
				continue;
			if (closed_by_server(fds[i]) || send(fds[i], "a", 1, MSG_NOSIGNAL) != 1) {
				close(fds[i]);
				fds[i] = -1;
			} else {
				open++;
			}
		}
		if (!asked && open == TRICKLERS) {
			expect_hello_works();	/* a normal request during the trickle */
			asked = 1;
		}
	}
	int64_t elapsed = support_now_ms() - start;
	ck_assert_msg(open == 0, "%d trickling connections still open after %lld ms", open,
	    (long long)elapsed);
	ck_assert_msg(elapsed < 4500, "the trickling connections took %lld ms to close",
	    (long long)elapsed);
	ck_assert_int_eq(asked, 1);
	ck_assert(log_contains("did not send a whole request within 2 s"));
	expect_hello_works();
}
END_TEST

#define TABLE 16

/* With every slot held by an idle socket, /healthz waited for
 * connection_timeout_s, and nothing was logged. */
START_TEST(a_full_connection_table_should_still_let_healthz_in_and_say_so)
{
	static const char *const options[] = { "--workers", "1", "--max-connections", "16",
	    NULL };
	apitest_start(options);
	int fds[TABLE];
	for (int i = 0; i < TABLE; i++)
		fds[i] = send_raw("");
	usleep(300000);
	int64_t elapsed = time_healthz();
	ck_assert_msg(elapsed < 2000, "/healthz took %lld ms with a full table",
	    (long long)elapsed);
	ck_assert(log_contains("connection table full (max_connections = 16)"));
	for (int i = 0; i < TABLE; i++)
		close(fds[i]);
	expect_hello_works();
}
END_TEST

START_TEST(connections_past_the_per_address_limit_should_be_refused_and_logged)
{
	static const char *const options[] = { "--workers", "1", "--max-connections-per-ip",
	    "4", NULL };
	apitest_start(options);
	int fds[4];
	for (int i = 0; i < 4; i++)
		fds[i] = send_raw("");
	usleep(200000);
	int extra = send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	struct httpc_response r;
	ck_assert_int_eq(httpc_read_response(extra, &r), -1);	/* closed, no answer */
	httpc_response_free(&r);
	close(extra);
	ck_assert(log_contains("max_connections_per_ip"));
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	/* The server sees the closes in its own time: retry, with a bound. */
	int64_t end = support_now_ms() + WAIT_MS;
	int ok = 0;
	while (!ok && support_now_ms() < end) {
		struct httpc_response h = { 0 };
		ok = httpc_request(apitest_server.port, "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY,
		    strlen(HELLO_BODY), &h) == 0 && h.status == 200;
		if (h.status)
			httpc_response_free(&h);
		if (!ok)
			usleep(POLL_STEP_US);
	}
	ck_assert_msg(ok, "hello refused after the other connections closed");
}
END_TEST

/* 6. Framing ---------------------------------------------------------------- */

static void
expect_raw_status(const char *request, int status)
{
	int fd = send_raw(request);
	struct httpc_response r;
	ck_assert_int_eq(httpc_read_response(fd, &r), 0);
	ck_assert_msg(r.status == status, "status %d, expected %d for:\n%s\nbody: %s", r.status,
	    status, request, r.body);
	httpc_response_free(&r);
	close(fd);
}

#define EXEC_HEAD "POST /v1/exec HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
#define RETURN_1 "{\"source\":\"return 1\"}"	/* 21 bytes */

/* The first Content-Length won: a request-smuggling risk behind a proxy
 * that takes the last, or the chunked framing. */
START_TEST(conflicting_framing_headers_should_get_400)
{
	static const char *const options[] = { "--workers", "1", NULL };
	apitest_start(options);
	expect_raw_status(EXEC_HEAD "Content-Length: 21\r\nContent-Length: 99\r\n\r\n" RETURN_1,
	    400);
	expect_raw_status(EXEC_HEAD "Content-Length: 21\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "15\r\n" RETURN_1 "\r\n0\r\n\r\n", 400);
	expect_raw_status(EXEC_HEAD "Transfer-Encoding: gzip, chunked\r\n\r\n"
	    "15\r\n" RETURN_1 "\r\n0\r\n\r\n", 400);
	/* What is not ambiguous still works. */
	expect_raw_status(EXEC_HEAD "Content-Length: 21\r\nContent-Length: 21\r\n\r\n" RETURN_1,
	    200);
	expect_raw_status(EXEC_HEAD "Transfer-Encoding: chunked\r\n\r\n"
	    "15\r\n" RETURN_1 "\r\n0\r\n\r\n", 200);
}
END_TEST

static Suite *
limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, a_big_invalid_put_should_stall_nothing_and_leave_no_memory_behind);
	tcase_add_test(own, bodies_past_the_inflight_budget_should_get_503_with_retry_after);
	tcase_add_test(own, trickling_clients_should_be_closed_at_the_request_read_deadline);
	tcase_add_test(own, a_full_connection_table_should_still_let_healthz_in_and_say_so);
	tcase_add_test(own, connections_past_the_per_address_limit_should_be_refused_and_logged);
	tcase_add_test(own, conflicting_framing_headers_should_get_400);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(limits_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
