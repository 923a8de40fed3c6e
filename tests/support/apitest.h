/*
 * apitest.h - what the suites that drive the real luapoold over HTTP
 * (tests/http/test_*.c) share: the fixture that owns one daemon per test
 * (server.h) and a scratch directory, requests through httpc.h, and the
 * expectations on answers, each a Check assertion that names the test's
 * line.  Every wait is a bounded poll; nothing here may hang a test.
 *
 * Each test owns one daemon, stopped by apitest_teardown with SIGTERM; it
 * must exit 0 with no sanitizer report in its stderr.  A test that fails
 * on an assertion dies at once (Check's fork mode): its daemon then dies
 * with it (PR_SET_PDEATHSIG) and its log stays in /tmp/luapoold-test-*.log.
 *
 * The macros in lower case pass __LINE__ to the apitest_*_at function of
 * the same name, so a failure points at the test, not at this file.
 * Fixture paths (tests/fixtures/...) are relative to the repository root.
 */
#ifndef APITEST_H
#define APITEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "support/httpc.h"
#include "support/server.h"

#define TEST_TIMEOUT_S 60
#define POLL_STEP_US 5000
#define WAIT_MS 10000

#define JSON_HEADERS "Content-Type: application/json\r\n"
#define HELLO_SOURCE "return ctx.message .. \" from Lua\""
#define HELLO_BODY "{\"source\":\"return ctx.message .. \\\" from Lua\\\"\"," \
	"\"context\":{\"message\":\"Hello\"}}"
#define HELLO_RESULT "{\"result\":\"Hello from Lua\"}"
#define HELLO_FIXTURE "tests/fixtures/hello.luac"
#define SEGFAULT_FIXTURE "tests/fixtures/segfault.luac"
#define BUSY_SOURCE(seconds) "local t=os.clock() while os.clock()-t<" seconds " do end " \
	"return 'done'"
#define DONE_RESULT "{\"result\":\"done\"}"

/* The test's daemon (pid 0: none) and its temporary directory, or "". */
extern struct server apitest_server;
extern char apitest_scratch[64];

/* Fixtures ---------------------------------------------------------------- */

/* Starts the daemon with these options (server_start) or fails the test. */
void apitest_start(const char *const *options);
/* Asserts that the daemon exited 0 (rc and status as server_wait_exit
 * gives them) without a sanitizer report, then forgets it. */
void apitest_expect_clean_exit_at(int line, int rc, int status);
#define expect_clean_exit(rc, status) apitest_expect_clean_exit_at(__LINE__, rc, status)
/* SIGTERM, then expect_clean_exit. */
void apitest_stop(void);
/* Creates apitest_scratch; teardown removes it. */
void apitest_make_scratch_dir(void);
/* Checked fixtures: no daemon yet, or one with two workers. */
void apitest_setup(void);
void apitest_setup_with_server(void);
void apitest_teardown(void);

/* Requests and expectations ---------------------------------------------- */

/* One request on a connection of its own; resp as httpc_request fills it. */
void apitest_ask_at(int line, const char *method, const char *path, const char *headers,
    const char *body, struct httpc_response *resp);
#define ask(m, p, h, b, r) apitest_ask_at(__LINE__, m, p, h, b, r)
#define post_json(p, b, r) apitest_ask_at(__LINE__, "POST", p, JSON_HEADERS, b, r)
#define get_path(p, r) apitest_ask_at(__LINE__, "GET", p, NULL, NULL, r)

/* Asserts a JSON answer with this status and, unless NULL, this body. */
void apitest_expect_json_at(int line, const struct httpc_response *r, int status,
    const char *body);
#define expect_json(r, s, b) apitest_expect_json_at(__LINE__, r, s, b)

/* The body as JSON (caller frees with cJSON_Delete), or fails the test. */
cJSON *apitest_parse_at(int line, const struct httpc_response *r);
#define parse(r) apitest_parse_at(__LINE__, r)

/* A member of an object: the string (NULL if absent or not a string), the
 * number (-1 if absent or not a number). */
const char *apitest_string_member(const cJSON *doc, const char *name);
double apitest_number_member(const cJSON *doc, const char *name);

/* Asserts a problem answer; returns its parsed body (cJSON_Delete it). */
cJSON *apitest_problem_at(int line, const struct httpc_response *r, int status,
    const char *code);
#define parse_problem(r, s, c) apitest_problem_at(__LINE__, r, s, c)
#define expect_problem(r, s, c) cJSON_Delete(apitest_problem_at(__LINE__, r, s, c))

/* POSTs body to path and expects a problem. */
void apitest_expect_post_problem_at(int line, const char *path, const char *body, int status,
    const char *code);
#define expect_post_problem(p, b, s, c) apitest_expect_post_problem_at(__LINE__, p, b, s, c)

/* POSTs the seed example (with these extra header lines, or NULL) to
 * /v1/exec and expects its result. */
void apitest_expect_hello_works_at(int line, const char *headers);
#define expect_hello_works() apitest_expect_hello_works_at(__LINE__, NULL)

/* Request bodies ---------------------------------------------------------- */

/* {"source": source, "timeout_ms": ms (if not 0)}; free with cJSON_free. */
char *apitest_source_request(const char *source, unsigned timeout_ms);
/* {"<key>": value, "context": {"message": "Hello"}}; free with cJSON_free. */
char *apitest_hello_request(const char *key, const char *value);
/* Base64 of data in a chosen dialect: '-_' instead of '+/', with or
 * without '=' padding, a '\n' every line_len characters and at the end
 * (as base64(1) prints it; 0: one line).  Caller frees. */
char *apitest_encode_base64(const void *data, size_t len, int url_safe, int padding,
    size_t line_len);
/* A fixture file in standard base64; caller frees. */
char *apitest_fixture_base64(const char *path);
/* The bytes `luajit FLAG` (-b, -bg, -bs) makes of source, through the
 * scratch directory (apitest_make_scratch_dir); caller frees. */
unsigned char *apitest_luajit_compile(const char *source, const char *flag, size_t *len);
/* The opcode of a bytecode instruction name (the verifier's table). */
int apitest_opcode_named(const char *name);

/* Server state and connections -------------------------------------------- */

/* Polls /v1/info until n workers are busy (at most WAIT_MS). */
void apitest_wait_for_busy_workers_at(int line, int n);
#define wait_for_busy_workers(n) apitest_wait_for_busy_workers_at(__LINE__, n)

/* A connection with one request sent, its answer not read yet (caller
 * closes). */
int apitest_send_on_new_connection_at(int line, const char *path, const char *body);
#define send_on_new_connection(p, b) apitest_send_on_new_connection_at(__LINE__, p, b)

void apitest_read_answer_at(int line, int fd, struct httpc_response *r);
#define read_answer(fd, r) apitest_read_answer_at(__LINE__, fd, r)

#endif
