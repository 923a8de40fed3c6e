/*
 * test_fronts_daemon.c - front mode (issue 11) end to end: the real
 * luapoold started with front_workers = 1 or 2 on 127.0.0.1 (port 0,
 * tests/support/apitest.h), its luapool-front processes found next to it,
 * driven over real HTTP.  What a client must see: a chunk known to be
 * short answered in the front's lane exactly as the pool answers it;
 * a lane job that ignores the soft stop costs its front, not the other
 * connections the front held; one that obeys it is run again in the pool;
 * neither costs a connection or a deadline; a front killed from outside
 * is replaced; every route, limit, problem and auth answer is the
 * supervisor's; lane answers reach /metrics; SIGTERM drains; a front's log
 * lines keep their level.  Every wait is a bounded poll, but for a few
 * fixed sleeps of 20 to 50 ms that let a job start before the test acts.
 *
 * A lane answer is told from a pool answer by its Server-Timing
 * ("queue;dur=0.000, ...") and, where it matters, by the pool's job count
 * in /metrics (luapoold_jobs_total{status="ok"}), which only pool runs
 * move.  Fronts are found as the daemon's children named luapool-front;
 * how they ended, in the supervisor's log.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/apitest.h"
#include "support/fronttest.h"
#include "support/httpc.h"
#include "support/server.h"
#include "support/support.h"

#define BODY_MAX		1024
#define POOL_JOBS		"luapoold_jobs_total{status=\"ok\"}"
#define EXEC_200		"luapoold_requests_total{route=\"exec\",status=\"200\"}"
#define JOB_RUNS		"luapoold_job_run_seconds_count"
#define SCRIPT_ERRORS		"luapoold_jobs_total{status=\"script_error\"}"

#define ADD_SOURCE		"return 1 + ctx.n"
/* Compiled to a trace that never returns to the interpreter: only the
 * hard stop ends it. */
#define SPIN_SOURCE \
	"if ctx.spin then local i = 0 while true do i = i + 1 end end return ctx.v"
/*
 * Long for many rounds, and stoppable: every round calls a C function (the
 * sandbox's tostring), which no trace can include, so the loop goes back
 * to the interpreter and the soft stop's hook fires.  A pairs() loop will
 * not do here: this LuaJIT (OpenResty's 2.1) compiles next/pairs, and such
 * a loop ignores the soft stop like the spin above.
 */
#define ROUNDS_SOURCE \
	"local n = 0 for i = 1, ctx.rounds do n = n + #tostring(i % 10) end return n"
#define FAIL_SOURCE		"if ctx.fail then error('boom') end return 1"
#define CLOCK_SOURCE \
	"local t = os.clock() while os.clock() - t < ctx.s do end return ctx.v"

/* Requests ----------------------------------------------------------------- */

/* {"source": source, "context": context, "timeout_ms": ms (if not 0)}
 * into buf; neither source nor context may need escaping. */
static const char *
exec_body(char *buf, const char *source, const char *context, unsigned timeout_ms)
{
	int n;
	if (timeout_ms)
		n = snprintf(buf, BODY_MAX, "{\"source\":\"%s\",\"context\":%s,\"timeout_ms\":%u}",
		    source, context, timeout_ms);
	else
		n = snprintf(buf, BODY_MAX, "{\"source\":\"%s\",\"context\":%s}", source, context);
	ck_assert(n > 0 && n < BODY_MAX);
	return buf;
}

#define connect_to_daemon() fronttest_connect_at(__LINE__, apitest_server.port)

#define send_on(fd, m, p, h, b) fronttest_send_at(__LINE__, fd, m, p, h, b)

#define exchange(fd, m, p, h, b, r) fronttest_exchange_at(__LINE__, fd, m, p, h, b, r)
#define from_lane fronttest_from_lane

/* One request to any daemon, on a connection of its own. */
static void
ask_port_at(int line, unsigned port, const char *method, const char *path, const char *headers,
    const char *body, struct httpc_response *r)
{
	ck_assert_msg(httpc_request(port, method, path, headers, body, body ? strlen(body) : 0,
	    r) == 0, "line %d: %s %s got no HTTP answer from port %u", line, method, path, port);
}


#define train(fd, h, b, res) fronttest_train_at(__LINE__, fd, h, b, res)

/* The daemon's state ------------------------------------------------------- */

#define metric_at fronttest_metric_at
#define metric(s) fronttest_metric_at(__LINE__, s)

/* Polls the series until it reaches target (at most WAIT_MS); returns the
 * last value read. */
static double
wait_for_metric_at(int line, const char *series, double target)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	double value;
	while ((value = metric_at(line, series)) < target && support_now_ms() < deadline)
		usleep(20000);
	return value;
}

#define wait_for_fronts_at fronttest_wait_for_fronts_at
#define only_front() wait_for_fronts_at(__LINE__, 1, 0)
#define new_front(old) wait_for_fronts_at(__LINE__, 1, old)

static int
log_has(const char *text)
{
	char *log = server_log(&apitest_server);
	int found = strstr(log, text) != NULL;
	free(log);
	return found;
}

/* The supervisor's log lines about lost fronts, once there is one (at
 * most WAIT_MS); malloc'd. */
static char *
front_deaths(void)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	char *log;
	while (!strstr(log = server_log(&apitest_server), "reap: front") &&
	    support_now_ms() < deadline) {
		free(log);
		usleep(POLL_STEP_US);
	}
	size_t len = 0;
	char *out = calloc(1, strlen(log) + 1);
	ck_assert_ptr_nonnull(out);
	for (char *line = log; line && *line; ) {
		char *eol = strchr(line, '\n');
		size_t n = eol ? (size_t)(eol - line) + 1 : strlen(line);
		if (memmem(line, n, "reap: front", 11) != NULL) {
			memcpy(out + len, line, n);
			len += n;
		}
		line = eol ? eol + 1 : NULL;
	}
	free(log);
	return out;
}

/* Starts apitest_server with two workers, `fronts` fronts, fast_lane_ms,
 * then the options `extra` (NULL-terminated, may be NULL). */
static void
start_with_fronts(unsigned fronts, unsigned fast_lane_ms, const char *const *extra)
{
	static char front_count[16], lane_ms[16];
	const char *options[SERVER_MAX_OPTIONS + 1] = {
		"--workers", "2", "--front-workers", front_count, "--fast-lane-ms", lane_ms,
	};
	size_t n = 6;
	snprintf(front_count, sizeof(front_count), "%u", fronts);
	snprintf(lane_ms, sizeof(lane_ms), "%u", fast_lane_ms);
	for (size_t i = 0; extra && extra[i]; i++) {
		ck_assert(n < SERVER_MAX_OPTIONS);
		options[n++] = extra[i];
	}
	options[n] = NULL;
	apitest_start(options);
}

/* A second daemon without fronts, for comparison; stopped with
 * stop_plain, or killed with the test process when an assertion fails. */
static void
start_plain(struct server *plain, const char *const *extra)
{
	static char err[65536];
	const char *options[SERVER_MAX_OPTIONS + 1] = { "--workers", "2", "--fronts", "no" };
	size_t n = 4;
	for (size_t i = 0; extra && extra[i]; i++) {
		ck_assert(n < SERVER_MAX_OPTIONS);
		options[n++] = extra[i];
	}
	options[n] = NULL;
	ck_assert_msg(server_start(plain, options, err, sizeof(err)) == 0, "%s", err);
}

static void
stop_plain(struct server *plain)
{
	int status = 0;
	int rc = server_stop(plain, &status);
	char *report = server_sanitizer_report(plain);
	ck_assert_msg(report == NULL, "sanitizer report from the daemon without fronts:\n%s",
	    report);
	ck_assert_msg(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the daemon without fronts ended with wait status 0x%x", status);
	server_release(plain);
}

/* The answer's body as JSON without what differs from one daemon or one
 * request to the next (request_id, updated); NULL when it is not JSON. */
static cJSON *
comparable_body(const struct httpc_response *r)
{
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(r->body, r->body_len + 1, &end, 1);
	if (doc != NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(doc, "request_id");
		cJSON_DeleteItemFromObjectCaseSensitive(doc, "updated");
	}
	return doc;
}

/* Same status, Content-Type, Allow, and body (as JSON when it is). */
static void
expect_same_answer_at(int line, const char *what, const struct httpc_response *fronted,
    const struct httpc_response *plain)
{
	ck_assert_msg(fronted->status == plain->status, "line %d: %s: status %d with fronts, "
	    "%d without; bodies %s / %s", line, what, fronted->status, plain->status,
	    fronted->body, plain->body);
	static const char *const headers[] = { "Content-Type", "Allow", "WWW-Authenticate" };
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		const char *a = httpc_header(fronted, headers[i]);
		const char *b = httpc_header(plain, headers[i]);
		ck_assert_msg((a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0),
		    "line %d: %s: %s is %s with fronts, %s without", line, what, headers[i],
		    a ? a : "(none)", b ? b : "(none)");
	}
	cJSON *a = comparable_body(fronted), *b = comparable_body(plain);
	if (a == NULL || b == NULL)
		ck_assert_msg(a == NULL && b == NULL && strcmp(fronted->body, plain->body) == 0,
		    "line %d: %s: body %s with fronts, %s without", line, what, fronted->body,
		    plain->body);
	else
		ck_assert_msg(cJSON_Compare(a, b, 1), "line %d: %s: body %s with fronts, %s "
		    "without", line, what, fronted->body, plain->body);
	cJSON_Delete(a);
	cJSON_Delete(b);
}

/* /healthz's answer: ok, however many workers are up just now (a hard
 * stop in the pool costs a worker for a moment). */
static void
expect_healthy_at(int line, const struct httpc_response *r)
{
	apitest_expect_json_at(line, r, 200, NULL);
	cJSON *doc = apitest_parse_at(line, r);
	const char *status = apitest_string_member(doc, "status");
	ck_assert_msg(status && strcmp(status, "ok") == 0, "line %d: /healthz: %s", line,
	    r->body);
	cJSON_Delete(doc);
}
#define expect_healthy(r) expect_healthy_at(__LINE__, r)

static int
is_hex_id(const char *id)
{
	if (id == NULL || strlen(id) != 16)
		return 0;
	return strspn(id, "0123456789abcdef") == 16;
}

/* 1. The lane ------------------------------------------------------------- */

START_TEST(a_short_chunk_should_move_to_the_lane_and_answer_as_the_pool_did)
{
	start_with_fronts(1, 50, NULL);
	double jobs_before = metric(POOL_JOBS);
	int fd = connect_to_daemon();
	char body[BODY_MAX], result[64], given[64];
	struct httpc_response first = { 0 }, r;
	int pool_answers = 0, lane_answers = 0;
	exec_body(body, ADD_SOURCE, "{\"n\":41}", 0);
	for (int i = 0; i < FRONTTEST_TRAIN_MAX && lane_answers < 4; i++) {
		snprintf(given, sizeof(given), "X-Request-Id: fronts-%d\r\n" JSON_HEADERS, i);
		exchange(fd, "POST", "/v1/exec", given, body, &r);
		expect_json(&r, 200, "{\"result\":42}");
		char id[32];
		snprintf(id, sizeof(id), "fronts-%d", i);
		const char *echoed = httpc_header(&r, "X-Request-Id");
		ck_assert_msg(echoed && strcmp(echoed, id) == 0, "X-Request-Id %s, sent %s",
		    echoed ? echoed : "(none)", id);
		ck_assert_ptr_nonnull(httpc_header(&r, "Server-Timing"));
		if (from_lane(&r)) {
			lane_answers++;
			ck_assert_str_eq(r.body, first.body);
			ck_assert_str_eq(httpc_header(&r, "Content-Type"),
			    httpc_header(&first, "Content-Type"));
			httpc_response_free(&r);
		} else {
			ck_assert_msg(lane_answers == 0, "a pool answer after a lane answer: %s",
			    httpc_header(&r, "Server-Timing"));
			pool_answers++;
			if (first.status == 0)
				first = r;
			else
				httpc_response_free(&r);
		}
	}
	ck_assert_msg(lane_answers == 4, "%d lane answers in %d requests", lane_answers,
	    FRONTTEST_TRAIN_MAX);
	ck_assert_msg(pool_answers >= 1 && pool_answers <= 3, "%d pool answers before the lane",
	    pool_answers);
	/* The lane answers never reached the pool. */
	ck_assert_int_eq((int)(metric(POOL_JOBS) - jobs_before), pool_answers);

	/* Another context, the same chunk: still the lane, the right result;
	 * an id of the front's own when none is given. */
	char ids[2][32];
	for (int i = 0; i < 2; i++) {
		char context[32];
		snprintf(context, sizeof(context), "{\"n\":%d}", 100 + i);
		snprintf(result, sizeof(result), "{\"result\":%d}", 101 + i);
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, ADD_SOURCE,
		    context, 0), &r);
		expect_json(&r, 200, result);
		ck_assert_msg(from_lane(&r), "Server-Timing %s", httpc_header(&r, "Server-Timing"));
		const char *id = httpc_header(&r, "X-Request-Id");
		ck_assert_msg(is_hex_id(id), "generated X-Request-Id %s", id ? id : "(none)");
		snprintf(ids[i], sizeof(ids[i]), "%s", id);
		httpc_response_free(&r);
	}
	ck_assert_str_ne(ids[0], ids[1]);
	ck_assert_int_eq((int)(metric(POOL_JOBS) - jobs_before), pool_answers);

	/* "usage" is the pool's to measure, even for a chunk in the lane. */
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS,
	    "{\"source\":\"" ADD_SOURCE "\",\"context\":{\"n\":1},\"usage\":true}", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	ck_assert_int_eq((int)apitest_number_member(doc, "result"), 2);
	ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(doc, "usage"));
	ck_assert(!from_lane(&r));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	ck_assert_int_eq((int)(metric(POOL_JOBS) - jobs_before), pool_answers + 1);
	httpc_response_free(&first);
	close(fd);
}
END_TEST

START_TEST(each_of_two_fronts_should_learn_a_chunk_on_its_own)
{
	start_with_fronts(2, 50, NULL);
	wait_for_fronts_at(__LINE__, 2, 0);
	double jobs_before = metric(POOL_JOBS);
	char body[BODY_MAX];
	exec_body(body, ADD_SOURCE, "{\"n\":1}", 0);
	int fds[4], pool_answers = 0;
	for (int i = 0; i < 4; i++) {
		fds[i] = connect_to_daemon();
		pool_answers += train(fds[i], NULL, body, "{\"result\":2}");
	}
	/* At most three short runs in the pool per front. */
	ck_assert_msg(pool_answers >= 3 && pool_answers <= 6, "%d pool answers", pool_answers);
	ck_assert_int_eq((int)(metric(POOL_JOBS) - jobs_before), pool_answers);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}
END_TEST

/* 2. A lane job that ignores the soft stop -------------------------------- */

#define HELD_CONNECTIONS 4
#define SPIN_TIMEOUT_MS 2000

START_TEST(a_hard_stop_in_the_lane_should_hand_every_connection_to_the_supervisor)
{
	start_with_fronts(1, 50, NULL);
	pid_t front = only_front();
	char body[BODY_MAX];
	int spinner = connect_to_daemon();
	train(spinner, NULL, exec_body(body, SPIN_SOURCE, "{\"spin\":false,\"v\":7}",
	    SPIN_TIMEOUT_MS), "{\"result\":7}");

	/* Connections the front holds, each idle after one request. */
	int held[HELD_CONNECTIONS];
	struct httpc_response r;
	for (int i = 0; i < HELD_CONNECTIONS; i++) {
		held[i] = connect_to_daemon();
		exchange(held[i], "GET", "/healthz", NULL, NULL, &r);
		expect_json(&r, 200, NULL);
		httpc_response_free(&r);
	}

	int64_t spin_sent = support_now_ms();
	send_on(spinner, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, SPIN_SOURCE,
	    "{\"spin\":true,\"v\":7}", SPIN_TIMEOUT_MS));
	/* The front is in the loop (its lane limit is 50 ms). */
	fronttest_wait_for_cpu_at(__LINE__, front, 10);
	/* One request on each while the front is stuck: an exec on half of
	 * them, /healthz on the others (the other kind follows below).  One
	 * at a time: httpc cannot read pipelined answers. */
	int64_t sent = support_now_ms();
	for (int i = 0; i < HELD_CONNECTIONS; i++) {
		if (i % 2 == 0)
			send_on(held[i], "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY);
		else
			send_on(held[i], "GET", "/healthz", NULL, NULL);
	}
	for (int i = 0; i < HELD_CONNECTIONS; i++) {
		ck_assert_msg(httpc_read_response(held[i], &r) == 0,
		    "held connection %d got no answer", i);
		if (i % 2 == 0)
			expect_json(&r, 200, HELLO_RESULT);
		else
			expect_healthy(&r);
		httpc_response_free(&r);
	}
	/* Answered when the front died, not at the spinning job's deadline
	 * (its answer, asserted below, comes no earlier than 100 ms before it):
	 * the margin is for two cores shared with other suites. */
	int64_t held_took = support_now_ms() - sent;
	ck_assert_msg(held_took < SPIN_TIMEOUT_MS - 300, "the held connections were answered "
	    "after %lld ms", (long long)held_took);

	ck_assert_msg(httpc_read_response(spinner, &r) == 0, "the spinning job got no answer");
	int64_t took = support_now_ms() - spin_sent;
	expect_problem(&r, 504, "deadline_exceeded");
	httpc_response_free(&r);
	ck_assert_msg(took >= SPIN_TIMEOUT_MS - 100 && took < SPIN_TIMEOUT_MS + 3000,
	    "the spinning job was answered after %lld ms (timeout %d ms)", (long long)took,
	    SPIN_TIMEOUT_MS);

	/* The front died of it and was replaced. */
	char died[64];
	snprintf(died, sizeof(died), "front %d exited with status 124", (int)front);
	ck_assert_msg(log_has(died), "no \"%s\" in the log", died);
	new_front(front);

	/* The adopted connections stay usable. */
	for (int i = 0; i < HELD_CONNECTIONS; i++) {
		if (i % 2 == 0) {
			exchange(held[i], "GET", "/healthz", NULL, NULL, &r);
			expect_healthy(&r);
		} else {
			exchange(held[i], "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY, &r);
			expect_json(&r, 200, HELLO_RESULT);
		}
		httpc_response_free(&r);
		close(held[i]);
	}
	close(spinner);

	/* The new front learns the chunk again. */
	int fd = connect_to_daemon();
	ck_assert_int_ge(train(fd, NULL, exec_body(body, SPIN_SOURCE, "{\"spin\":false,\"v\":8}",
	    SPIN_TIMEOUT_MS), "{\"result\":8}"), 1);
	close(fd);
	expect_hello_works();
}
END_TEST

#define NEW_CONNECTIONS 3
#define SHORT_SPIN_TIMEOUT_MS 300

/* The supervisor deals new connections to the fronts: one dealt to a
 * front stuck in a lane job must not go down with it. */
START_TEST(a_connection_opened_while_a_front_is_stuck_should_be_answered)
{
	start_with_fronts(1, 50, NULL);
	pid_t front = only_front();
	char body[BODY_MAX];
	int spinner = connect_to_daemon();
	train(spinner, NULL, exec_body(body, SPIN_SOURCE, "{\"spin\":false,\"v\":7}",
	    SHORT_SPIN_TIMEOUT_MS), "{\"result\":7}");
	send_on(spinner, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, SPIN_SOURCE,
	    "{\"spin\":true,\"v\":7}", SHORT_SPIN_TIMEOUT_MS));
	/* The front is in the loop (its lane limit is 50 ms). */
	fronttest_wait_for_cpu_at(__LINE__, front, 10);
	int fds[NEW_CONNECTIONS];
	for (int i = 0; i < NEW_CONNECTIONS; i++) {
		fds[i] = connect_to_daemon();
		send_on(fds[i], "POST", "/v1/exec", JSON_HEADERS, HELLO_BODY);
	}
	struct httpc_response r;
	for (int i = 0; i < NEW_CONNECTIONS; i++) {
		if (httpc_read_response(fds[i], &r) == -1) {
			int lost = errno;
			char *deaths = front_deaths();
			ck_abort_msg("new connection %d, opened while the front was stuck, got "
			    "no answer (%s); the supervisor's log says:\n%s", i,
			    lost ? strerror(lost) : "closed", deaths);
		}
		expect_json(&r, 200, HELLO_RESULT);
		httpc_response_free(&r);
		close(fds[i]);
	}
	ck_assert_msg(httpc_read_response(spinner, &r) == 0, "the spinning job got no answer");
	expect_problem(&r, 504, "deadline_exceeded");
	httpc_response_free(&r);
	close(spinner);
}
END_TEST

/* 3. A lane job stopped at the lane's limit ------------------------------ */

#define BIG_ROUNDS 1500000	/* 100 to 300 ms in a worker */
#define ROUNDS_TIMEOUT_MS 10000

START_TEST(a_soft_stop_in_the_lane_should_rerun_the_job_in_the_pool)
{
	start_with_fronts(1, 50, NULL);
	pid_t front = only_front();
	char body[BODY_MAX];
	int fd = connect_to_daemon();
	train(fd, NULL, exec_body(body, ROUNDS_SOURCE, "{\"rounds\":1}", ROUNDS_TIMEOUT_MS),
	    "{\"result\":1}");
	double jobs_before = metric(POOL_JOBS);

	char context[64], result[64];
	snprintf(context, sizeof(context), "{\"rounds\":%d}", BIG_ROUNDS);
	snprintf(result, sizeof(result), "{\"result\":%d}", BIG_ROUNDS);
	struct httpc_response r;
	int64_t start = support_now_ms();
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, ROUNDS_SOURCE, context,
	    ROUNDS_TIMEOUT_MS), &r);
	int64_t took = support_now_ms() - start;
	expect_json(&r, 200, result);
	ck_assert_msg(!from_lane(&r), "Server-Timing %s", httpc_header(&r, "Server-Timing"));
	httpc_response_free(&r);
	/* In time: a worker still running after 10 ms drops to nice 19, so a
	 * loaded machine may take long, but never past the job's deadline. */
	ck_assert_msg(took < ROUNDS_TIMEOUT_MS, "answered after %lld ms", (long long)took);
	ck_assert_int_eq((int)(metric(POOL_JOBS) - jobs_before), 1);

	/* The front lives on, and the chunk is banned from its lane. */
	ck_assert_msg(support_process_alive(front), "front %d died", (int)front);
	ck_assert_int_eq(only_front(), front);
	ck_assert_msg(!log_has("exited with status 124"), "a front was hard-stopped");
	exec_body(body, ROUNDS_SOURCE, "{\"rounds\":1}", ROUNDS_TIMEOUT_MS);
	for (int i = 0; i < 5; i++) {
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, body, &r);
		expect_json(&r, 200, "{\"result\":1}");
		ck_assert_msg(!from_lane(&r), "a banned chunk ran in the lane");
		httpc_response_free(&r);
	}
	ck_assert_int_eq((int)(metric(POOL_JOBS) - jobs_before), 6);
	close(fd);
}
END_TEST

#define LONG_ROUNDS 2000000	/* 150 to 500 ms in a worker */
/* Generous: a worker past 10 ms of a job runs at nice 19, and starves on
 * a machine kept busy by others. */
#define REPLAY_TIMEOUT_MS 30000

/*
 * A job the lane stopped softly waits in the pool, through its front,
 * when another lane job of the same front ignores the soft stop: the
 * front's last words replay both.  Each must keep its own deadline: the
 * first one has seconds left, the spinning one 150 ms.  The access log
 * shows that the first one was still in the pool when the front died
 * (its first run's answer had nowhere to go).
 */
START_TEST(a_replayed_job_should_keep_its_own_deadline)
{
	static const char *const access_log[] = { "--access-log", "yes", NULL };
	start_with_fronts(1, 50, access_log);
	char body[BODY_MAX];
	int slow = connect_to_daemon(), spinner = connect_to_daemon();
	train(slow, NULL, exec_body(body, ROUNDS_SOURCE, "{\"rounds\":1}", REPLAY_TIMEOUT_MS),
	    "{\"result\":1}");
	train(spinner, NULL, exec_body(body, SPIN_SOURCE, "{\"spin\":false,\"v\":7}", 150),
	    "{\"result\":7}");

	char context[64], result[64];
	snprintf(context, sizeof(context), "{\"rounds\":%d}", LONG_ROUNDS);
	snprintf(result, sizeof(result), "{\"result\":%d}", LONG_ROUNDS);
	send_on(slow, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, ROUNDS_SOURCE, context,
	    REPLAY_TIMEOUT_MS));
	/* The front takes the spinning job once the slow one is in the pool. */
	wait_for_busy_workers(1);
	send_on(spinner, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, SPIN_SOURCE,
	    "{\"spin\":true,\"v\":7}", 150));

	struct httpc_response r;
	ck_assert_msg(httpc_read_response(spinner, &r) == 0, "the spinning job got no answer");
	expect_problem(&r, 504, "deadline_exceeded");
	httpc_response_free(&r);
	ck_assert_msg(log_has("exited with status 124"), "the front was not hard-stopped");
	ck_assert_msg(httpc_read_response(slow, &r) == 0, "the slow job got no answer");
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (!log_has("(aborted)")) {
		ck_assert_msg(support_now_ms() < deadline, "the slow job was not in the pool when "
		    "its front died: raise LONG_ROUNDS");
		usleep(POLL_STEP_US);
	}
	ck_assert_msg(r.status == 200, "the slow job (timeout %d ms) got %d: %s",
	    REPLAY_TIMEOUT_MS, r.status, r.body);
	expect_json(&r, 200, result);
	httpc_response_free(&r);
	close(slow);
	close(spinner);
}
END_TEST

/* 4. A front killed from outside ----------------------------------------- */

START_TEST(a_killed_front_should_be_replaced_and_requests_answered)
{
	start_with_fronts(1, 50, NULL);
	pid_t front = only_front();
	expect_hello_works();
	ck_assert_int_eq(kill(front, SIGKILL), 0);
	pid_t fresh = new_front(front);
	char killed[64];
	snprintf(killed, sizeof(killed), "front %d killed by signal 9", (int)front);
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (!log_has(killed)) {
		ck_assert_msg(support_now_ms() < deadline, "no \"%s\" in the log", killed);
		usleep(POLL_STEP_US);
	}
	for (int i = 0; i < 5; i++)
		expect_hello_works();
	char body[BODY_MAX];
	int fd = connect_to_daemon();
	train(fd, NULL, exec_body(body, ADD_SOURCE, "{\"n\":2}", 0), "{\"result\":3}");
	close(fd);
	ck_assert_int_eq(only_front(), fresh);
}
END_TEST

/* 5. Routes, limits and problems ----------------------------------------- */

struct route_case {
	const char *method, *path, *body;
	int status;
	const char *code;	/* a problem's, or NULL */
};

START_TEST(every_route_should_answer_as_without_fronts)
{
	static const struct route_case cases[] = {
		{ "GET", "/healthz", NULL, 200, NULL },
		{ "GET", "/v1/info", NULL, 200, NULL },
		{ "PUT", "/v1/scripts/x", "{\"source\":\"return ctx.a * 2\"}", 201, NULL },
		{ "POST", "/v1/scripts/x", "{\"context\":{\"a\":21}}", 200, NULL },
		{ "GET", "/v1/scripts/x", NULL, 200, NULL },
		{ "GET", "/nope", NULL, 404, "not_found" },
		{ "GET", "/v1/exec", NULL, 405, "method_not_allowed" },
		{ "DELETE", "/v1/info", NULL, 405, "method_not_allowed" },
		{ "POST", "/v1/exec", "{\"source\":\"return 1\"", 400, "invalid_json" },
		{ "POST", "/v1/exec", "{\"source\":\"return 1\",\"bogus\":1}", 400,
		    "unknown_field" },
		{ "POST", "/v1/exec", "{\"source\":\"return +\"}", 400, "compile_error" },
		{ "POST", "/v1/exec",
		    "{\"source\":\"local t = nil\\nreturn t.x\",\"name\":\"demo\"}", 422,
		    "script_error" },
		{ "POST", "/v1/compile", "{\"source\":\"return 1\"}", 200, NULL },
		{ "DELETE", "/v1/scripts/x", NULL, 204, NULL },
		{ "POST", "/v1/scripts/x", "{}", 404, "unknown_script" },
	};
	struct server plain;
	start_with_fronts(1, 50, NULL);
	start_plain(&plain, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct route_case *c = &cases[i];
		struct httpc_response fronted, direct;
		char what[128];
		snprintf(what, sizeof(what), "%s %s %s", c->method, c->path,
		    c->body ? c->body : "");
		const char *headers = c->body ? JSON_HEADERS : NULL;
		ask_port_at(__LINE__, apitest_server.port, c->method, c->path, headers, c->body,
		    &fronted);
		ask_port_at(__LINE__, plain.port, c->method, c->path, headers, c->body, &direct);
		ck_assert_msg(fronted.status == c->status, "%s: status %d, expected %d: %s", what,
		    fronted.status, c->status, fronted.body);
		if (c->code)
			cJSON_Delete(apitest_problem_at(__LINE__, &fronted, c->status, c->code));
		if (c->code && strcmp(c->code, "script_error") == 0) {
			cJSON *doc = parse(&fronted);
			const char *tb = apitest_string_member(doc, "traceback");
			ck_assert_msg(tb && strstr(tb, "demo:2"), "traceback: %s",
			    tb ? tb : "(none)");
			cJSON_Delete(doc);
		}
		expect_same_answer_at(__LINE__, what, &fronted, &direct);
		httpc_response_free(&fronted);
		httpc_response_free(&direct);
	}
	struct httpc_response m;
	get_path("/metrics", &m);
	ck_assert_int_eq(m.status, 200);
	ck_assert_ptr_nonnull(strstr(m.body, "# TYPE luapoold_requests_total counter"));
	httpc_response_free(&m);
	stop_plain(&plain);
}
END_TEST

START_TEST(an_error_of_a_chunk_in_the_lane_should_be_explained_by_the_pool)
{
	struct server plain;
	start_with_fronts(1, 50, NULL);
	start_plain(&plain, NULL);
	char body[BODY_MAX];
	int fd = connect_to_daemon();
	train(fd, NULL, exec_body(body, FAIL_SOURCE, "{\"fail\":false}", 0), "{\"result\":1}");
	double errors_before = metric(SCRIPT_ERRORS);
	exec_body(body, FAIL_SOURCE, "{\"fail\":true}", 0);
	struct httpc_response fronted, direct;
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS, body, &fronted);
	cJSON *doc = parse_problem(&fronted, 422, "script_error");
	const char *message = apitest_string_member(doc, "message");
	ck_assert_msg(message && strstr(message, "boom"), "message %s",
	    message ? message : "(none)");
	ck_assert_ptr_nonnull(apitest_string_member(doc, "traceback"));
	cJSON_Delete(doc);
	ask_port_at(__LINE__, plain.port, "POST", "/v1/exec", JSON_HEADERS, body, &direct);
	expect_same_answer_at(__LINE__, "a failing lane chunk", &fronted, &direct);
	httpc_response_free(&fronted);
	httpc_response_free(&direct);
	/* The lane's failed run is not the pool's: it ran there once more. */
	ck_assert_int_eq((int)(metric(SCRIPT_ERRORS) - errors_before), 1);
	close(fd);
	stop_plain(&plain);
}
END_TEST

START_TEST(a_body_over_max_body_bytes_should_get_413_from_a_front)
{
	static const char *const small[] = { "--max-body-bytes", "1000", NULL };
	struct server plain;
	start_with_fronts(1, 50, small);
	start_plain(&plain, small);
	pid_t front = only_front();
	char big[2100];
	int n = snprintf(big, sizeof(big), "{\"source\":\"return 1\",\"context\":{\"pad\":\"");
	memset(big + n, 'x', 2000);
	snprintf(big + n + 2000, sizeof(big) - (size_t)n - 2000, "\"}}");
	struct httpc_response fronted, direct;
	int fd = connect_to_daemon();
	send_on(fd, "POST", "/v1/exec", JSON_HEADERS, big);
	if (httpc_read_response(fd, &fronted) == -1) {
		char *deaths = front_deaths();
		ck_abort_msg("no answer to a body over max_body_bytes; the supervisor's log "
		    "says:\n%s", deaths);
	}
	close(fd);
	cJSON_Delete(apitest_problem_at(__LINE__, &fronted, 413, "payload_too_large"));
	ask_port_at(__LINE__, plain.port, "POST", "/v1/exec", JSON_HEADERS, big, &direct);
	cJSON *a = comparable_body(&fronted), *b = comparable_body(&direct);
	static const char *const same[] = { "type", "title", "status", "code" };
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		ck_assert_msg(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(a, same[i]),
		    cJSON_GetObjectItemCaseSensitive(b, same[i]), 1), "%s differs: %s / %s",
		    same[i], fronted.body, direct.body);
	cJSON_Delete(a);
	cJSON_Delete(b);
	httpc_response_free(&fronted);
	httpc_response_free(&direct);
	ck_assert_int_eq(only_front(), front);
	expect_hello_works();
	stop_plain(&plain);
}
END_TEST

/* 6. Auth ------------------------------------------------------------------ */

#define TOKEN "s3cret-t0ken"
#define BEARER "Authorization: Bearer " TOKEN "\r\n"

START_TEST(a_chunk_in_the_lane_should_still_need_the_token)
{
	char token_path[128];
	apitest_make_scratch_dir();
	snprintf(token_path, sizeof(token_path), "%s/token", apitest_scratch);
	ck_assert_int_eq(support_write_file(token_path, TOKEN "\n", strlen(TOKEN) + 1), 0);
	const char *const options[] = { "--auth-token-file", token_path, NULL };
	start_with_fronts(1, 50, options);
	char body[BODY_MAX];
	exec_body(body, ADD_SOURCE, "{\"n\":4}", 0);
	int fd = connect_to_daemon();
	train(fd, BEARER, body, "{\"result\":5}");

	static const char *const refused[] = {
		JSON_HEADERS, JSON_HEADERS "Authorization: Bearer wrong\r\n",
		JSON_HEADERS "Authorization: Basic czNjcmV0LXQwa2Vu\r\n",
	};
	struct httpc_response r;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		/* On the connection that taught the lane, then on a new one. */
		exchange(fd, "POST", "/v1/exec", refused[i], body, &r);
		expect_problem(&r, 401, "unauthorized");
		const char *challenge = httpc_header(&r, "WWW-Authenticate");
		ck_assert_msg(challenge && strncmp(challenge, "Bearer", 6) == 0,
		    "WWW-Authenticate: %s", challenge ? challenge : "(none)");
		int closes = httpc_closes(&r);
		httpc_response_free(&r);
		if (closes) {
			close(fd);
			fd = connect_to_daemon();
		}
		ask("POST", "/v1/exec", refused[i], body, &r);
		expect_problem(&r, 401, "unauthorized");
		httpc_response_free(&r);
	}
	close(fd);
	fd = connect_to_daemon();
	train(fd, BEARER, body, "{\"result\":5}");
	exchange(fd, "POST", "/v1/exec", JSON_HEADERS BEARER, body, &r);
	expect_json(&r, 200, "{\"result\":5}");
	ck_assert(from_lane(&r));
	httpc_response_free(&r);
	close(fd);
}
END_TEST

/* 7. Metrics --------------------------------------------------------------- */

START_TEST(lane_answers_should_be_counted_in_the_metrics)
{
	start_with_fronts(1, 50, NULL);
	double answered_before = metric(EXEC_200), runs_before = metric(JOB_RUNS);
	char body[BODY_MAX];
	exec_body(body, ADD_SOURCE, "{\"n\":9}", 0);
	int fd = connect_to_daemon();
	int requests = train(fd, NULL, body, "{\"result\":10}") + 1, lane = 1;
	for (; lane < 6; lane++, requests++) {
		struct httpc_response r;
		exchange(fd, "POST", "/v1/exec", JSON_HEADERS, body, &r);
		expect_json(&r, 200, "{\"result\":10}");
		ck_assert(from_lane(&r));
		httpc_response_free(&r);
	}
	close(fd);
	double answered = wait_for_metric_at(__LINE__, EXEC_200, answered_before + requests);
	ck_assert_msg(answered == answered_before + requests, "%s: %g, then %g after %d answers "
	    "(%d from the lane)", EXEC_200, answered_before, answered, requests, lane);
	double runs = wait_for_metric_at(__LINE__, JOB_RUNS, runs_before + requests);
	ck_assert_msg(runs == runs_before + requests, "%s: %g, then %g after %d jobs",
	    JOB_RUNS, runs_before, runs, requests);
}
END_TEST

/* 8. Drain ----------------------------------------------------------------- */

START_TEST(sigterm_should_answer_a_lane_job_in_flight_and_exit)
{
	/* A lane limit of 1 s: a 300 ms job of a short chunk stays in the lane. */
	start_with_fronts(1, 1000, NULL);
	pid_t front = only_front();
	char body[BODY_MAX];
	int busy = connect_to_daemon(), idle = connect_to_daemon();
	train(busy, NULL, exec_body(body, CLOCK_SOURCE, "{\"s\":0,\"v\":9}", 5000),
	    "{\"result\":9}");
	struct httpc_response r;
	exchange(idle, "GET", "/healthz", NULL, NULL, &r);
	expect_json(&r, 200, NULL);
	httpc_response_free(&r);

	send_on(busy, "POST", "/v1/exec", JSON_HEADERS, exec_body(body, CLOCK_SOURCE,
	    "{\"s\":0.3,\"v\":9}", 5000));
	/* Running in the lane (it burns CPU): SIGTERM must not stop it. */
	fronttest_wait_for_cpu_at(__LINE__, front, 30);
	int64_t term = support_now_ms();
	ck_assert_int_eq(kill(apitest_server.pid, SIGTERM), 0);
	ck_assert_msg(httpc_read_response(busy, &r) == 0, "the job in flight got no answer");
	expect_json(&r, 200, "{\"result\":9}");
	ck_assert_msg(from_lane(&r), "Server-Timing %s", httpc_header(&r, "Server-Timing"));
	httpc_response_free(&r);

	int status = 0;
	int rc = server_wait_exit(&apitest_server, 5000, &status);
	int64_t took = support_now_ms() - term;
	expect_clean_exit(rc, status);
	ck_assert_msg(took < 5000, "exited %lld ms after SIGTERM", (long long)took);
	/* The idle connection is closed, not left hanging. */
	char byte;
	ssize_t n = recv(idle, &byte, 1, 0);
	ck_assert_msg(n == 0 || (n == -1 && errno == ECONNRESET),
	    "the idle connection: recv %zd (%s)", n, n == -1 ? strerror(errno) : "data");
	close(idle);
	close(busy);
}
END_TEST

/* 9. The front's log ------------------------------------------------------ */

/* A front's stderr reaches the supervisor's log at the level the front
 * gave each line, as a worker's does: its one debug line at start-up
 * ("sandboxed as uid N") is a debug line there too. */
#define FRONT_SANDBOXED "enter_sandbox: sandboxed as uid"	/* a worker says "main: ..." */

START_TEST(a_front_log_line_should_keep_its_level)
{
	static const char *const debug[] = { "--log-level", "debug", NULL };
	start_with_fronts(1, 50, debug);
	pid_t front = only_front();
	int64_t deadline = support_now_ms() + WAIT_MS;
	char *log, *line;
	while ((line = strstr(log = server_log(&apitest_server), FRONT_SANDBOXED)) == NULL) {
		free(log);
		ck_assert_msg(support_now_ms() < deadline, "front %d never said it was sandboxed",
		    (int)front);
		usleep(POLL_STEP_US);
	}
	while (line > log && line[-1] != '\n')
		line--;
	line[strcspn(line, "\n")] = '\0';
	/* "luapoold[PID]: LEVEL: ..." */
	const char *level = strchr(line, ' ');
	ck_assert_msg(level && strncmp(level + 1, "debug: ", 7) == 0,
	    "front %d's debug line is logged as: %s", (int)front, line);
	free(log);
}
END_TEST

/* Suite -------------------------------------------------------------------- */

static Suite *
fronts_daemon_suite(void)
{
	Suite *s = suite_create("fronts_daemon");
	TCase *tc = tcase_create("fronts");
	tcase_add_checked_fixture(tc, apitest_setup, apitest_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, a_short_chunk_should_move_to_the_lane_and_answer_as_the_pool_did);
	tcase_add_test(tc, each_of_two_fronts_should_learn_a_chunk_on_its_own);
	tcase_add_test(tc, a_hard_stop_in_the_lane_should_hand_every_connection_to_the_supervisor);
	tcase_add_test(tc, a_connection_opened_while_a_front_is_stuck_should_be_answered);
	tcase_add_test(tc, a_soft_stop_in_the_lane_should_rerun_the_job_in_the_pool);
	tcase_add_test(tc, a_replayed_job_should_keep_its_own_deadline);
	tcase_add_test(tc, a_killed_front_should_be_replaced_and_requests_answered);
	tcase_add_test(tc, every_route_should_answer_as_without_fronts);
	tcase_add_test(tc, an_error_of_a_chunk_in_the_lane_should_be_explained_by_the_pool);
	tcase_add_test(tc, a_body_over_max_body_bytes_should_get_413_from_a_front);
	tcase_add_test(tc, a_chunk_in_the_lane_should_still_need_the_token);
	tcase_add_test(tc, lane_answers_should_be_counted_in_the_metrics);
	tcase_add_test(tc, sigterm_should_answer_a_lane_job_in_flight_and_exit);
	tcase_add_test(tc, a_front_log_line_should_keep_its_level);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(fronts_daemon_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
