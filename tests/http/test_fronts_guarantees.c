/*
 * test_fronts_guarantees.c - the supervisor's guarantees kept through a
 * front (issue 11): the real luapoold with front_workers = 1 on 127.0.0.1,
 * driven over HTTP as in test_fronts_daemon.c.  A lane job past the heap
 * limit is answered by the pool; crafted bytecode is refused beside a chunk
 * in the lane; ambiguous framing is refused by the front, which closes; a
 * SIGHUP that changes the token and fast_lane_ms replaces the front
 * without losing a request; an idle connection is closed at
 * request_read_timeout_s while another is served.  Waits are bounded polls.
 *
 * A lane answer is told from a pool answer by its Server-Timing
 * ("queue;dur=0.000, ..."); an answer the front writes itself, by the
 * supervisor's access log, which has a line for every request it serves
 * (a handed-on one included) and none for the front's own answers.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/fronttest.h"
#include "support/httpc.h"
#include "support/support.h"

#define BODY_MAX		1024
#define MEMORY_ERRORS		"luapoold_jobs_total{status=\"memory_limit_exceeded\"}"

#define ADD_SOURCE		"return 1 + ctx.n"
/* Short for a small context; past any small heap for a big one, long
 * before a generous deadline or the lane's limit. */
#define HEAP_SOURCE \
	"if ctx.big then local t = {} for i = 1, 1e8 do t[i] = i end end return 1"

/* Requests (as in test_fronts_daemon.c) ------------------------------------ */

static const char *
exec_body(char *buf, const char *source, const char *context, unsigned timeout_ms)
{
	int n = snprintf(buf, BODY_MAX, "{\"source\":\"%s\",\"context\":%s,\"timeout_ms\":%u}",
	    source, context, timeout_ms ? timeout_ms : 5000);
	ck_assert(n > 0 && n < BODY_MAX);
	return buf;
}

#define connect_to_daemon() fronttest_connect_at(__LINE__, apitest_server.port)

/* The supervisor's log, for a failure message; the caller frees. */
#define LOG() server_log(&apitest_server)

#define exchange(fd, m, p, h, b, r) fronttest_exchange_at(__LINE__, fd, m, p, h, b, r)
#define from_lane fronttest_from_lane


#define train(fd, h, b, res) fronttest_train_at(__LINE__, fd, h, b, res)

/* The daemon's state ------------------------------------------------------- */

#define metric(s) fronttest_metric_at(__LINE__, s)

#define wait_for_fronts_at fronttest_wait_for_fronts_at
#define only_front() wait_for_fronts_at(__LINE__, 1, 0)

/* How many lines of the log hold `text`. */
static int
log_count(const char *text)
{
	char *log = LOG();
	int n = 0;
	for (const char *p = log; (p = strstr(p, text)) != NULL; p += strlen(text))
		n++;
	free(log);
	return n;
}

/* Two workers, one front, fast_lane_ms, then `extra` (may be NULL). */
static void
start_with_a_front(unsigned fast_lane_ms, const char *const *extra)
{
	static char lane_ms[16];
	const char *options[SERVER_MAX_OPTIONS + 1] = {
		"--workers", "2", "--front-workers", "1", "--fast-lane-ms", lane_ms,
	};
	size_t n = 6;
	snprintf(lane_ms, sizeof(lane_ms), "%u", fast_lane_ms);
	for (size_t i = 0; extra && extra[i]; i++) {
		ck_assert(n < SERVER_MAX_OPTIONS);
		options[n++] = extra[i];
	}
	options[n] = NULL;
	apitest_start(options);
}

/* 1. The heap limit in the lane ------------------------------------------- */

START_TEST(a_lane_job_past_the_heap_limit_should_get_422_from_the_pool)
{
	static const char *const small_heap[] = { "--memory-limit-mb", "16", NULL };
	/* A lane limit of 500 ms: the heap runs out long before. */
	start_with_a_front(500, small_heap);
	char body[BODY_MAX];
	int fd = connect_to_daemon(), other = connect_to_daemon();
	struct httpc_response r;
	exchange(other, "GET", "/healthz", NULL, NULL, &r);
	expect_json(&r, 200, NULL);
	httpc_response_free(&r);
	train(fd, NULL, exec_body(body, HEAP_SOURCE, "{\"big\":false}", 10000), "{\"result\":1}");

	double errors_before = metric(MEMORY_ERRORS);
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, HEAP_SOURCE,
	    "{\"big\":true}", 10000), &r);
	expect_problem(&r, 422, "memory_limit_exceeded");
	ck_assert_msg(!from_lane(&r), "Server-Timing %s", httpc_header(&r, "Server-Timing"));
	int closes = httpc_closes(&r);
	httpc_response_free(&r);
	/* The pool ran it once: the lane's failed run is not counted there. */
	ck_assert_int_eq((int)(metric(MEMORY_ERRORS) - errors_before), 1);

	/* The front (or its successor) answers on, on both connections. */
	if (closes) {
		close(fd);
		fd = connect_to_daemon();
	}
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, HEAP_SOURCE,
	    "{\"big\":false}", 10000), &r);
	expect_json(&r, 200, "{\"result\":1}");
	httpc_response_free(&r);
	exchange(other, "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	only_front();
	int fresh = connect_to_daemon();
	train(fresh, NULL, exec_body(body, HEAP_SOURCE, "{\"big\":false}", 10000),
	    "{\"result\":1}");
	close(fresh);
	close(other);
	close(fd);
}
END_TEST

/* 2. The bytecode verifier ------------------------------------------------- */



/* {"bytecode": ...} of a chunk whose KNUM reads constant 6001 of 1
 * (tests/vm/test_trust.c); cJSON_free it. */
static char *
knum_past_the_constants(void)
{
	size_t len;
	unsigned char *bc = apitest_luajit_compile("local x = 0.123456 return x", "-b", &len);
	int knum = apitest_opcode_named("KNUM"), ret1 = apitest_opcode_named("RET1");
	size_t at = 0;
	for (size_t i = 0; i + 8 <= len; i++)
		if (bc[i] == knum && bc[i + 1] == 0 && bc[i + 2] == 0 && bc[i + 3] == 0 &&
		    bc[i + 4] == ret1 && bc[i + 5] == 0 && bc[i + 6] == 2 && bc[i + 7] == 0)
			at = i;
	ck_assert_msg(at > 0, "KNUM not found");
	bc[at + 2] = 6001 & 0xff;
	bc[at + 3] = 6001 >> 8;
	char *b64 = apitest_encode_base64(bc, len, 0, 1, 0);
	char *body = apitest_hello_request("bytecode", b64);
	free(b64);
	free(bc);
	return body;
}

START_TEST(crafted_bytecode_should_get_400_beside_a_chunk_in_the_lane)
{
	apitest_make_scratch_dir();
	start_with_a_front(50, NULL);
	char *hello_b64 = apitest_fixture_base64(HELLO_FIXTURE);
	char *hello = apitest_hello_request("bytecode", hello_b64);
	char *crashing_b64 = apitest_fixture_base64(SEGFAULT_FIXTURE);
	char *crashing = apitest_hello_request("bytecode", crashing_b64);
	char *knum = knum_past_the_constants();
	pid_t front = only_front();
	int fd = connect_to_daemon();
	train(fd, NULL, hello, HELLO_RESULT);

	struct httpc_response r;
	for (int round = 0; round < 2; round++) {
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, crashing, &r);
		expect_problem(&r, 400, "invalid_bytecode");
		ck_assert_msg(!httpc_closes(&r), "a refused chunk closed the connection");
		httpc_response_free(&r);
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, knum, &r);
		cJSON *doc = parse_problem(&r, 400, "invalid_bytecode");
		const char *detail = apitest_string_member(doc, "detail");
		ck_assert_msg(detail && strstr(detail, "6001"), "detail: %s",
		    detail ? detail : "(none)");
		cJSON_Delete(doc);
		httpc_response_free(&r);
		/* The valid chunk is still the lane's. */
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, hello, &r);
		expect_json(&r, 200, HELLO_RESULT);
		ck_assert_msg(from_lane(&r), "Server-Timing %s", httpc_header(&r, "Server-Timing"));
		httpc_response_free(&r);
	}
	/* Neither the front nor a worker died of it. */
	ck_assert_int_eq(only_front(), front);
	ck_assert_int_eq(log_count("reap: front"), 0);
	close(fd);
	cJSON_free(knum);
	cJSON_free(crashing);
	cJSON_free(hello);
	free(crashing_b64);
	free(hello_b64);
}
END_TEST

/* 3. Framing --------------------------------------------------------------- */

#define EXEC_HEAD "POST /v1/exec HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
#define RETURN_1 "{\"source\":\"return 1\"}"	/* 21 bytes */
#define ACCESS_400 "POST /v1/exec 400 "

/* Sends request on a new connection; expects a 400 invalid_request with
 * this detail, after which the connection is closed. */
static void
expect_framing_refused_at(int line, const char *request, const char *detail)
{
	int fd = connect_to_daemon();
	ck_assert_int_eq(httpc_send(fd, request, strlen(request)), 0);
	struct httpc_response r;
	ck_assert_msg(httpc_read_response(fd, &r) == 0, "line %d: no answer", line);
	cJSON *doc = apitest_problem_at(line, &r, 400, "invalid_request");
	const char *given = apitest_string_member(doc, "detail");
	ck_assert_msg(given && strcmp(given, detail) == 0, "line %d: detail %s", line,
	    given ? given : "(none)");
	cJSON_Delete(doc);
	ck_assert_msg(httpc_closes(&r), "line %d: the answer keeps the connection", line);
	httpc_response_free(&r);
	char byte;
	ssize_t n = recv(fd, &byte, 1, 0);
	ck_assert_msg(n == 0 || (n == -1 && errno == ECONNRESET), "line %d: after the answer, "
	    "recv %zd (%s)", line, n, n == -1 ? strerror(errno) : "data");
	close(fd);
}
#define expect_framing_refused(req, d) expect_framing_refused_at(__LINE__, req, d)

START_TEST(ambiguous_framing_should_be_refused_by_the_front_and_the_connection_closed)
{
	static const char *const access_log[] = { "--access-log", "yes", NULL };
	start_with_a_front(50, access_log);
	pid_t front = only_front();
	expect_framing_refused(EXEC_HEAD "Content-Length: 21\r\nContent-Length: 99\r\n\r\n"
	    RETURN_1, "Content-Length is given twice with different values");
	expect_framing_refused(EXEC_HEAD "Content-Length: 21\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "15\r\n" RETURN_1 "\r\n0\r\n\r\n", "Content-Length and Transfer-Encoding are both given");
	/* A 400 the supervisor writes (handed on), with its problem code in
	 * the line; the front's two are logged too (from its reports), with
	 * no code: the supervisor did not serve the refused framing. */
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":", &r);
	expect_problem(&r, 400, "invalid_json");
	httpc_response_free(&r);
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (log_count(ACCESS_400) < 3 && support_now_ms() < deadline)
		usleep(POLL_STEP_US);
	ck_assert_msg(log_count(ACCESS_400) == 3 && log_count("code=invalid_json") == 1 &&
	    log_count("code=invalid_request") == 0, "the supervisor served a refused framing; "
	    "log:\n%s", LOG());
	ck_assert_int_eq(only_front(), front);
	expect_hello_works();
}
END_TEST

#define EXEC_400 "luapoold_requests_total{route=\"exec\",status=\"400\"}"
#define OTHER_400 "luapoold_requests_total{route=\"other\",status=\"400\"}"

/* Without fronts the supervisor counts the refusal under route="exec"
 * (http_route.c routes before it checks the framing); a front's own
 * answer must land in the same series. */
START_TEST(a_framing_refusal_by_the_front_should_be_counted_under_its_route)
{
	start_with_a_front(50, NULL);
	double exec_before = metric(EXEC_400), other_before = metric(OTHER_400);
	expect_framing_refused(EXEC_HEAD "Content-Length: 21\r\nContent-Length: 99\r\n\r\n"
	    RETURN_1, "Content-Length is given twice with different values");
	/* The front reports its answers at most every 100 ms. */
	double exec = exec_before, other = other_before;
	for (int64_t end = support_now_ms() + WAIT_MS; exec + other < exec_before +
	    other_before + 1 && support_now_ms() < end; usleep(20000)) {
		exec = metric(EXEC_400);
		other = metric(OTHER_400);
	}
	ck_assert_msg(exec == exec_before + 1 && other == other_before, "one refused POST "
	    "/v1/exec: %s went %g -> %g, %s went %g -> %g", EXEC_400, exec_before, exec,
	    OTHER_400, other_before, other);
}
END_TEST

/* 4. SIGHUP ---------------------------------------------------------------- */

#define TOKEN_A "token-a-0123456789"
#define TOKEN_B "token-b-9876543210"
#define BEARER_A "Authorization: Bearer " TOKEN_A "\r\n"
#define BEARER_B "Authorization: Bearer " TOKEN_B "\r\n"
#define RELOAD_CONNECTIONS 4
#define RELOAD_ROUNDS_MS 1000
#define SIGHUP_AT_MS 300
/* Ends before the rounds; its deadline is generous because the pool drops
 * a job past 10 ms to nice 19, and a loaded machine may starve it. */
#define SLOW_BODY "{\"source\":\"" BUSY_SOURCE("0.5") "\",\"timeout_ms\":20000}"

static void
write_config(const char *path, const char *token_file, unsigned fast_lane_ms)
{
	char text[512];
	int n = snprintf(text, sizeof(text), "front_workers = 1\nfast_lane_ms = %u\n"
	    "auth_token_file = %s\n", fast_lane_ms, token_file);
	ck_assert_int_eq(support_write_file(path, text, (size_t)n), 0);
}

/* The status of one exec on a connection of its own. */
static int
status_with(const char *bearer, const char *body)
{
	char headers[256];
	snprintf(headers, sizeof(headers), JSON_HEADERS "%s", bearer);
	struct httpc_response r;
	ask("POST", "/v1/exec", headers, body, &r);
	int status = r.status;
	httpc_response_free(&r);
	return status;
}

/* Whether /proc/PID/cmdline has the argument `flag` followed by `value`. */
static int
started_with(pid_t pid, const char *flag, const char *value)
{
	char path[64];
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	char *args = support_read_file(path, &len);
	int found = 0;
	for (size_t i = 0; args && i < len && !found; i += strlen(args + i) + 1)
		found = strcmp(args + i, flag) == 0 && i + strlen(flag) + 1 < len &&
		    strcmp(args + i + strlen(flag) + 1, value) == 0;
	free(args);
	return found;
}

START_TEST(sighup_should_replace_the_fronts_without_losing_a_request)
{
	char config[128], token_a[128], token_b[128], body[BODY_MAX];
	apitest_make_scratch_dir();
	snprintf(config, sizeof(config), "%s/luapoold.conf", apitest_scratch);
	snprintf(token_a, sizeof(token_a), "%s/token-a", apitest_scratch);
	snprintf(token_b, sizeof(token_b), "%s/token-b", apitest_scratch);
	ck_assert_int_eq(support_write_file(token_a, TOKEN_A "\n", strlen(TOKEN_A) + 1), 0);
	ck_assert_int_eq(support_write_file(token_b, TOKEN_B "\n", strlen(TOKEN_B) + 1), 0);
	write_config(config, token_a, 50);
	/* Only the file: options on the command line would win over it. */
	const char *const options[] = { "--workers", "2", "-c", config, NULL };
	apitest_start(options);
	pid_t old = only_front();
	exec_body(body, ADD_SOURCE, "{\"n\":1}", 0);
	int fds[RELOAD_CONNECTIONS];
	for (int i = 0; i < RELOAD_CONNECTIONS; i++) {
		fds[i] = connect_to_daemon();
		train(fds[i], BEARER_A, body, "{\"result\":2}");
	}

	/* One request on each connection per round, half of them with each
	 * token, from before the SIGHUP to well after it; and a job of the
	 * pool in flight through the old front when it is told to go. */
	write_config(config, token_b, 80);
	int slow = connect_to_daemon();
	int64_t start = support_now_ms(), hup_sent = 0;
	int answers[2][2] = { { 0 } };	/* [token B][status 200] */
	/* On past RELOAD_ROUNDS_MS until token B had its 200, if a loaded
	 * machine makes the reload slow. */
	for (int round = 0; support_now_ms() - start < RELOAD_ROUNDS_MS ||
	    (answers[1][1] == 0 && support_now_ms() - start < WAIT_MS); round++) {
		if (!hup_sent && support_now_ms() - start >= SIGHUP_AT_MS) {
			ck_assert_int_eq(httpc_send_request(slow, "POST", "/v1/exec", JSON_HEADERS
			    BEARER_A, SLOW_BODY, strlen(SLOW_BODY)), 0);
			/* In the pool (/v1/info needs the token; /metrics does not). */
			for (int64_t end = support_now_ms() + WAIT_MS;
			    metric("luapoold_workers{state=\"busy\"}") < 1; usleep(POLL_STEP_US))
				ck_assert_msg(support_now_ms() < end, "the slow job never reached the pool");
			ck_assert_int_eq(kill(apitest_server.pid, SIGHUP), 0);
			hup_sent = support_now_ms();
		}
		for (int i = 0; i < RELOAD_CONNECTIONS; i++)
			ck_assert_msg(httpc_send_request(fds[i], "POST", "/v1/exec", (i + round) % 2 ?
			    JSON_HEADERS BEARER_B : JSON_HEADERS BEARER_A, body, strlen(body)) == 0,
			    "round %d: cannot send on connection %d", round, i);
		for (int i = 0; i < RELOAD_CONNECTIONS; i++) {
			struct httpc_response r;
			int64_t since_hup = hup_sent ? support_now_ms() - hup_sent : -1;
			if (httpc_read_response(fds[i], &r) == -1)
				ck_abort_msg("round %d, sent %lld ms after the SIGHUP (-1: before): "
				    "connection %d got no answer (%s); log:\n%s", round,
				    (long long)since_hup, i, errno ? strerror(errno) : "closed", LOG());
			/* A front replaced by a reload is not the server shutting down. */
			ck_assert_msg(r.status == 200 || r.status == 401, "round %d, sent %lld ms after "
			    "the SIGHUP (-1: before): connection %d got %d: %s", round,
			    (long long)since_hup, i, r.status, r.body);
			answers[(i + round) % 2][r.status == 200]++;
			if (httpc_closes(&r)) {
				close(fds[i]);
				fds[i] = connect_to_daemon();
			}
			httpc_response_free(&r);
		}
	}
	ck_assert_msg(answers[0][1] > 0 && answers[1][1] > 0, "200s: %d with token A, %d with "
	    "token B", answers[0][1], answers[1][1]);
	struct httpc_response done;
	ck_assert_msg(httpc_read_response(slow, &done) == 0, "the slow job got no answer");
	expect_json(&done, 200, DONE_RESULT);
	httpc_response_free(&done);
	close(slow);

	/* Then B only, on new connections; the old front gone, the new one
	 * started with the new fast_lane_ms. */
	int64_t deadline = support_now_ms() + WAIT_MS;
	int a = 0, b = 0;
	while ((a = status_with(BEARER_A, body)) != 401 || (b = status_with(BEARER_B, body)) != 200) {
		ck_assert_msg(support_now_ms() < deadline, "token A: %d, token B: %d", a, b);
		usleep(POLL_STEP_US);
	}
	pid_t fresh = wait_for_fronts_at(__LINE__, 1, old);
	ck_assert_msg(started_with(fresh, "--fast-lane-ms", "80"), "front %d started without "
	    "--fast-lane-ms 80", (int)fresh);
	ck_assert_int_eq(log_count("fast_lane_ms (fronts replaced)"), 1);

	/* The connections the old front held are still served, with B only. */
	for (int i = 0; i < RELOAD_CONNECTIONS; i++) {
		struct httpc_response r;
		exchange(fds[i], "POST", "/v1/exec", JSON_HEADERS BEARER_A, body, &r);
		expect_problem(&r, 401, "unauthorized");
		int closes = httpc_closes(&r);
		httpc_response_free(&r);
		if (closes) {
			close(fds[i]);
			fds[i] = connect_to_daemon();
		}
		exchange(fds[i], "POST", "/v1/exec", JSON_HEADERS BEARER_B, body, &r);
		expect_json(&r, 200, "{\"result\":2}");
		httpc_response_free(&r);
		close(fds[i]);
	}
	/* The new front learns the chunk under the new token. */
	int fd = connect_to_daemon();
	train(fd, BEARER_B, body, "{\"result\":2}");
	close(fd);
}
END_TEST

/* 5. The read deadline ----------------------------------------------------- */

#define READ_TIMEOUT_S 1
#define CLOSE_SLACK_MS 2000	/* the sweep, libmicrohttpd's timer, a busy machine */

/* 1 if the server closed fd (end of input or a reset), 0 if nothing came. */
static int
closed_by_server(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 0) != 1)
		return 0;
	char byte;
	ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
	ck_assert_msg(n == 0 || (n == -1 && errno == ECONNRESET), "recv %zd (%s)", n,
	    n == -1 ? strerror(errno) : "data");
	return 1;
}

START_TEST(an_idle_connection_should_be_closed_by_the_front_at_the_read_deadline)
{
	static const char *const read_timeout[] = { "--request-read-timeout-s", "1", NULL };
	start_with_a_front(50, read_timeout);
	pid_t front = only_front();
	struct httpc_response r;
	/* Idle after one request, and silent from the start (its deadline
	 * counts from its connect, the idle one's from its answer). */
	int64_t silent_opened = support_now_ms();
	int idle = connect_to_daemon(), silent = connect_to_daemon(), busy = connect_to_daemon();
	exchange(idle, "GET", "/healthz", NULL, NULL, &r);
	expect_json(&r, 200, NULL);
	httpc_response_free(&r);
	int64_t start = support_now_ms(), idle_closed = 0, silent_closed = 0;
	int served = 0;
	while ((idle_closed == 0 || silent_closed == 0) &&
	    support_now_ms() - start < READ_TIMEOUT_S * 1000 + CLOSE_SLACK_MS) {
		exchange(busy, "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY, &r);
		expect_json(&r, 200, HELLO_RESULT);
		ck_assert(!httpc_closes(&r));
		httpc_response_free(&r);
		served++;
		int64_t now = support_now_ms();
		if (idle_closed == 0 && closed_by_server(idle))
			idle_closed = now - start;
		if (silent_closed == 0 && closed_by_server(silent))
			silent_closed = now - silent_opened;
		usleep(50000);
	}
	ck_assert_msg(idle_closed && silent_closed, "after %lld ms: the idle connection %s, the "
	    "silent one %s", (long long)(support_now_ms() - start), idle_closed ? "closed" :
	    "open", silent_closed ? "closed" : "open");
	ck_assert_msg(idle_closed >= READ_TIMEOUT_S * 1000 - 100 && silent_closed >=
	    READ_TIMEOUT_S * 1000 - 100, "closed too early: after %lld and %lld ms",
	    (long long)idle_closed, (long long)silent_closed);
	/* The busy connection was served all along, by the same front. */
	ck_assert_int_ge(served, 3);
	ck_assert_int_eq(only_front(), front);
	close(idle);
	close(silent);
	close(busy);
}
END_TEST

/* 6. A crash hands the connections over ---------------------------------- */

START_TEST(a_crashed_front_should_hand_its_connections_to_the_supervisor)
{
	start_with_a_front(50, NULL);
	pid_t front = only_front();
	int fds[3];
	struct httpc_response r;
	for (int i = 0; i < 3; i++) {
		fds[i] = connect_to_daemon();
		exchange(fds[i], "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY, &r);
		expect_json(&r, 200, HELLO_RESULT);
		httpc_response_free(&r);
	}
	/* One more request, on a connection of its own, makes sure the front
	 * has finished with the three answers above (a connection still being
	 * answered is not idle, and would not be handed over). */
	int last = connect_to_daemon();
	exchange(last, "GET", "/healthz", NULL, NULL, &r);
	httpc_response_free(&r);
	/* What a fault does: the crash handler runs, the front exits. */
	ck_assert_int_eq(kill(front, SIGSEGV), 0);
	ck_assert_int_ne(wait_for_fronts_at(__LINE__, 1, front), front);
	/* Every connection it held is still served, now by the supervisor. */
	for (int i = 0; i < 3; i++) {
		exchange(fds[i], "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY, &r);
		expect_json(&r, 200, HELLO_RESULT);
		httpc_response_free(&r);
		close(fds[i]);
	}
	close(last);
	ck_assert_int_eq(log_count("crashed: its connections were handed over"), 1);
}
END_TEST

/* 7. What a dead front held comes back ---------------------------------- */

/* The supervisor counts every connection of the server and lends the
 * fronts their request bytes: when a front is killed (no last words),
 * its connections' slots and its bytes must come back, or the server
 * would refuse clients for good. */
START_TEST(a_killed_fronts_connections_and_bytes_should_be_given_back)
{
	static const char *const small[] = { "--max-connections", "8",
	    "--max-body-bytes", "150k", "--max-inflight-bytes", "200k", NULL };
	start_with_a_front(50, small);
	pid_t front = only_front();
	struct httpc_response r;
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = connect_to_daemon();
		exchange(fds[i], "GET", "/healthz", NULL, NULL, &r);
		expect_json(&r, 200, NULL);
		httpc_response_free(&r);
	}
	/* The fourth announces 140 kB and sends none: the front borrows them,
	 * which leaves no room for 70 kB more. */
	static const char head[] = "POST /v1/exec HTTP/1.1\r\nHost: x\r\nContent-Type: "
	    "application/json\r\nContent-Length: 140000\r\n\r\n";
	int holder = connect_to_daemon();
	ck_assert_int_eq(httpc_send(holder, head, sizeof(head) - 1), 0);
	static char big[140000 + 128];
	int len = sprintf(big, "{\"source\":\"return #ctx.pad\",\"context\":{\"pad\":\"");
	memset(big + len, 'p', 70000);
	strcpy(big + len + 70000, "\"}}");
	int refused = 0;
	for (int64_t end = support_now_ms() + WAIT_MS; !refused && support_now_ms() < end;) {
		int fd = connect_to_daemon();
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, big, &r);
		refused = r.status == 503;	/* else the holder was not read yet */
		if (refused)
			expect_problem(&r, 503, "overloaded");
		httpc_response_free(&r);
		close(fd);
	}
	ck_assert(refused);
	ck_assert_int_ge((int)metric("luapoold_connections"), 5);	/* with its own */
	ck_assert_int_eq(kill(front, SIGKILL), 0);
	ck_assert_int_ne(wait_for_fronts_at(__LINE__, 1, front), front);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(holder);
	/* Only the asking connection is left open. */
	double open = -1;
	for (int64_t end = support_now_ms() + WAIT_MS; support_now_ms() < end; usleep(POLL_STEP_US))
		if ((open = metric("luapoold_connections")) == 1)
			break;
	ck_assert_msg(open == 1, "luapoold_connections is %g", open);
	/* And 140 kB fit again in the 200 kB budget. */
	memset(big + len, 'p', 139000);
	strcpy(big + len + 139000, "\"}}");
	int fd = connect_to_daemon();
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS, big, &r);
	expect_json(&r, 200, "{\"result\":139000}");
	httpc_response_free(&r);
	close(fd);
}
END_TEST

/* 8. Modules are the pool's --------------------------------------------- */

/* The lane has no modules: a chunk that requires one under pcall got
 * false from the lane where the pool gave true, once learned short. */
START_TEST(a_chunk_that_requires_a_module_should_be_answered_by_the_pool)
{
	start_with_a_front(50, NULL);
	struct httpc_response r;
	ask("PUT", "/v1/scripts/m", JSON_HEADERS, "{\"source\":\"return 1\"}", &r);
	ck_assert_msg(r.status == 200 || r.status == 201, "PUT: %d %s", r.status, r.body);
	httpc_response_free(&r);
	static const char body[] = "{\"source\":\"local ok = pcall(require, 'm') return ok\"}";
	int fd = connect_to_daemon();
	/* Past the three pool runs that would teach the front it is short. */
	for (int i = 0; i < 8; i++) {
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, body, &r);
		expect_json(&r, 200, "{\"result\":true}");
		ck_assert_msg(!from_lane(&r), "request %d: answered by the lane", i);
		if (httpc_closes(&r)) {
			close(fd);
			fd = connect_to_daemon();
		}
		httpc_response_free(&r);
	}
	close(fd);
}
END_TEST

/* 9. The access log has the lane's answers too ----------------------------- */

START_TEST(a_lane_answer_should_be_in_the_access_log)
{
	static const char *const log_on[] = { "--access-log", "yes", NULL };
	start_with_a_front(50, log_on);
	int fd = connect_to_daemon();
	train(fd, NULL, HELLO_BODY, HELLO_RESULT);
	struct httpc_response r;
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS "X-Request-Id: lane-logged-1\r\n"
	    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n",
	    HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	ck_assert(from_lane(&r));
	httpc_response_free(&r);
	close(fd);
	/* The front reports within 100 ms; the supervisor writes the line. */
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (log_count("id=lane-logged-1 ") == 0 && support_now_ms() < deadline)
		usleep(POLL_STEP_US);
	char *log = LOG();
	const char *line = strstr(log, "id=lane-logged-1 ");
	ck_assert_msg(line != NULL, "no access line for the lane answer; log:\n%s", log);
	const char *start = line;
	while (start > log && start[-1] != '\n')
		start--;
	ck_assert_msg(strstr(start, "http_log_access: POST /v1/exec 200 ") != NULL &&
	    strstr(start, "queue=0.000") != NULL && strstr(start,
	    "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") != NULL &&
	    strstr(start, "client=127.0.0.1") != NULL, "line: %.300s", start);
	free(log);
}
END_TEST

/* Suite -------------------------------------------------------------------- */

static Suite *
fronts_guarantees_suite(void)
{
	Suite *s = suite_create("fronts_guarantees");
	TCase *tc = tcase_create("fronts");
	tcase_add_checked_fixture(tc, apitest_setup, apitest_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, a_lane_job_past_the_heap_limit_should_get_422_from_the_pool);
	tcase_add_test(tc, crafted_bytecode_should_get_400_beside_a_chunk_in_the_lane);
	tcase_add_test(tc, ambiguous_framing_should_be_refused_by_the_front_and_the_connection_closed);
	tcase_add_test(tc, a_framing_refusal_by_the_front_should_be_counted_under_its_route);
	tcase_add_test(tc, sighup_should_replace_the_fronts_without_losing_a_request);
	tcase_add_test(tc, an_idle_connection_should_be_closed_by_the_front_at_the_read_deadline);
	tcase_add_test(tc, a_crashed_front_should_hand_its_connections_to_the_supervisor);
	tcase_add_test(tc, a_lane_answer_should_be_in_the_access_log);
	tcase_add_test(tc, a_killed_fronts_connections_and_bytes_should_be_given_back);
	tcase_add_test(tc, a_chunk_that_requires_a_module_should_be_answered_by_the_pool);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(fronts_guarantees_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
