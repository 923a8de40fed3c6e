/*
 * test_daemon.c - the integration suite: the real luapoold ($LUAPOOLD, with
 * $LUAPOOL_WORKER) on a free port of 127.0.0.1, driven over real HTTP
 * (tests/httpc.c).  It checks the HTTP contract of DESIGN §4 (every
 * endpoint, every error code with its headers), the behaviour under
 * runaway, crashing and killed workers, slow clients and huge uploads,
 * the SIGTERM drain, configuration errors and the script store on disk.
 *
 * Each test owns one daemon, stopped by the fixture's teardown with
 * SIGTERM; it must exit 0 with no sanitizer report in its stderr.  A test
 * that fails on an assertion dies at once (Check's fork mode): its daemon
 * then dies with it (PR_SET_PDEATHSIG) and its log stays in
 * /tmp/luapoold-test-*.log.  Every wait is a bounded poll.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/base64.h"
#include "support/httpc.h"
#include "luapool.h"
#include "support/server.h"
#include "support/support.h"

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

static struct server srv;
static char scratch[64];	/* a test's temporary directory, or "" */

/* Fixtures ---------------------------------------------------------------- */

static void
start_with(const char *const *options)
{
	static char err[65536];
	ck_assert_msg(server_start(&srv, options, err, sizeof(err)) == 0, "%s", err);
}

/* Asserts that the daemon exited 0 (rc and status as server_wait_exit
 * gives them) without a sanitizer report, then forgets it. */
static void
expect_clean_exit_at(int line, int rc, int status)
{
	char *report = server_sanitizer_report(&srv);
	ck_assert_msg(report == NULL, "line %d: sanitizer report in luapoold's stderr:\n%s",
	    line, report);
	char *log = server_log(&srv);
	ck_assert_msg(rc == 0, "line %d: luapoold did not exit in time (killed); log:\n%s",
	    line, log);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "line %d: luapoold ended with wait status 0x%x; log:\n%s", line, status, log);
	free(log);
	server_release(&srv);
}
#define expect_clean_exit(rc, status) expect_clean_exit_at(__LINE__, rc, status)

static void
stop_server(void)
{
	int status = 0;
	int rc = server_stop(&srv, &status);
	expect_clean_exit(rc, status);
}

static void
make_scratch_dir(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/luapoold-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void
setup(void)
{
	memset(&srv, 0, sizeof(srv));
	scratch[0] = '\0';
	signal(SIGPIPE, SIG_IGN);
}

static void
setup_with_server(void)
{
	static const char *const options[] = { "--workers", "2", NULL };
	setup();
	start_with(options);
}

static void
teardown(void)
{
	if (srv.pid > 0)
		stop_server();
	server_release(&srv);
	if (scratch[0])
		support_remove_dir(scratch);
	scratch[0] = '\0';
}

/* Requests and expectations ---------------------------------------------- */

static void
ask_at(int line, const char *method, const char *path, const char *headers, const char *body,
    struct httpc_response *resp)
{
	int rc = httpc_request(srv.port, method, path, headers, body, body ? strlen(body) : 0,
	    resp);
	ck_assert_msg(rc == 0, "line %d: %s %s got no HTTP answer", line, method, path);
}
#define ask(m, p, h, b, r) ask_at(__LINE__, m, p, h, b, r)
#define post_json(p, b, r) ask_at(__LINE__, "POST", p, JSON_HEADERS, b, r)
#define get_path(p, r) ask_at(__LINE__, "GET", p, NULL, NULL, r)

static void
expect_json_at(int line, const struct httpc_response *r, int status, const char *body)
{
	ck_assert_msg(r->status == status, "line %d: status %d, expected %d; body: %s", line,
	    r->status, status, r->body);
	const char *type = httpc_header(r, "Content-Type");
	ck_assert_msg(type && strcmp(type, "application/json") == 0,
	    "line %d: Content-Type %s", line, type ? type : "(none)");
	if (body)
		ck_assert_msg(strcmp(r->body, body) == 0, "line %d: body %s, expected %s", line,
		    r->body, body);
}
#define expect_json(r, s, b) expect_json_at(__LINE__, r, s, b)

static cJSON *
parse_at(int line, const struct httpc_response *r)
{
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(r->body, r->body_len + 1, &end, 1);
	ck_assert_msg(doc != NULL, "line %d: the body is not JSON: %s", line, r->body);
	return doc;
}
#define parse(r) parse_at(__LINE__, r)

static const char *
string_member(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static double
number_member(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);
	return cJSON_IsNumber(item) ? item->valuedouble : -1;
}

/* Asserts a problem answer; returns its parsed body (cJSON_Delete it). */
static cJSON *
problem_at(int line, const struct httpc_response *r, int status, const char *code)
{
	ck_assert_msg(r->status == status, "line %d: status %d, expected %d (%s); body: %s",
	    line, r->status, status, code, r->body);
	const char *type = httpc_header(r, "Content-Type");
	ck_assert_msg(type && strcmp(type, "application/problem+json") == 0,
	    "line %d: Content-Type %s", line, type ? type : "(none)");
	cJSON *doc = parse_at(line, r);
	const char *got = string_member(doc, "code");
	ck_assert_msg(got && strcmp(got, code) == 0, "line %d: code %s, expected %s", line,
	    got ? got : "(none)", code);
	ck_assert_msg(number_member(doc, "status") == status, "line %d: status member: %s",
	    line, r->body);
	ck_assert_msg(string_member(doc, "type") && string_member(doc, "title") &&
	    string_member(doc, "detail"), "line %d: type, title or detail missing: %s", line,
	    r->body);
	return doc;
}
#define parse_problem(r, s, c) problem_at(__LINE__, r, s, c)
#define expect_problem(r, s, c) cJSON_Delete(problem_at(__LINE__, r, s, c))

/* POSTs body to path and expects a problem. */
static void
expect_post_problem_at(int line, const char *path, const char *body, int status,
    const char *code)
{
	struct httpc_response r;
	ask_at(line, "POST", path, JSON_HEADERS, body, &r);
	cJSON_Delete(problem_at(line, &r, status, code));
	httpc_response_free(&r);
}
#define expect_post_problem(p, b, s, c) expect_post_problem_at(__LINE__, p, b, s, c)

static void
expect_hello_works_at(int line, const char *headers)
{
	char all[512];
	struct httpc_response r;
	snprintf(all, sizeof(all), JSON_HEADERS "%s", headers ? headers : "");
	ask_at(line, "POST", "/v1/exec", all, HELLO_BODY, &r);
	expect_json_at(line, &r, 200, HELLO_RESULT);
	httpc_response_free(&r);
}
#define expect_hello_works() expect_hello_works_at(__LINE__, NULL)

/* Request bodies ---------------------------------------------------------- */

/* {"source": source, "timeout_ms": ms (if not 0)}; free with cJSON_free. */
static char *
source_request(const char *source, unsigned timeout_ms)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "source", source);
	if (timeout_ms)
		cJSON_AddNumberToObject(o, "timeout_ms", timeout_ms);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	ck_assert_ptr_nonnull(text);
	return text;
}

/* {"<key>": value, "context": {"message": "Hello"}}; free with cJSON_free. */
static char *
hello_request(const char *key, const char *value)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, key, value);
	cJSON *context = cJSON_AddObjectToObject(o, "context");
	cJSON_AddStringToObject(context, "message", "Hello");
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	ck_assert_ptr_nonnull(text);
	return text;
}

/* Base64 of data in a chosen dialect: '-_' instead of '+/', with or
 * without '=' padding, a '\n' every line_len characters and at the end
 * (as base64(1) prints it; 0: one line).  Caller frees. */
static char *
encode_base64(const void *data, size_t len, int url_safe, int padding, size_t line_len)
{
	size_t n = base64_encoded_size(len);
	char *plain = malloc(n + 1), *out = malloc(2 * n + 2);
	ck_assert(plain && out);
	base64_encode(data, len, plain);
	size_t o = 0, column = 0;
	for (size_t i = 0; plain[i]; i++) {
		char c = plain[i];
		if (c == '=' && !padding)
			continue;
		if (url_safe)
			c = c == '+' ? '-' : c == '/' ? '_' : c;
		if (line_len && column == line_len) {
			out[o++] = '\n';
			column = 0;
		}
		out[o++] = c;
		column++;
	}
	if (line_len)
		out[o++] = '\n';
	out[o] = '\0';
	free(plain);
	return out;
}

static char *
fixture_base64(const char *path)
{
	size_t len = 0;
	char *data = support_read_file(path, &len);
	ck_assert_msg(data != NULL, "cannot read %s (run from the repository root)", path);
	char *b64 = encode_base64(data, len, 0, 1, 0);
	free(data);
	return b64;
}

/* Server state ----------------------------------------------------------- */

static int
busy_workers(void)
{
	struct httpc_response r;
	get_path("/v1/info", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	int busy = (int)number_member(cJSON_GetObjectItemCaseSensitive(doc, "workers"), "busy");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	return busy;
}

static void
wait_for_busy_workers_at(int line, int n)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (busy_workers() < n) {
		ck_assert_msg(support_now_ms() < deadline, "line %d: %d workers never got busy",
		    line, n);
		usleep(POLL_STEP_US);
	}
}
#define wait_for_busy_workers(n) wait_for_busy_workers_at(__LINE__, n)

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

/* A connection with one request sent, its answer not read yet. */
static int
send_on_new_connection_at(int line, const char *path, const char *body)
{
	int fd = httpc_connect(srv.port, HTTPC_TIMEOUT_MS);
	ck_assert_msg(fd != -1, "line %d: cannot connect", line);
	ck_assert_msg(httpc_send_request(fd, "POST", path, JSON_HEADERS, body,
	    strlen(body)) == 0, "line %d: cannot send", line);
	return fd;
}
#define send_on_new_connection(p, b) send_on_new_connection_at(__LINE__, p, b)

static void
read_answer_at(int line, int fd, struct httpc_response *r)
{
	ck_assert_msg(httpc_read_response(fd, r) == 0, "line %d: no HTTP answer", line);
}
#define read_answer(fd, r) read_answer_at(__LINE__, fd, r)

/* 1. The seed example ------------------------------------------------------ */

START_TEST(exec_should_answer_the_seed_example)
{
	struct httpc_response r;
	post_json("/v1/exec", HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	ck_assert_str_eq(r.body, "{\"result\":\"Hello from Lua\"}");
	httpc_response_free(&r);
}
END_TEST

START_TEST(exec_should_run_the_bytecode_fixture)
{
	char *b64 = fixture_base64(HELLO_FIXTURE);
	char *body = hello_request("bytecode", b64);
	struct httpc_response r;
	post_json("/v1/exec", body, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	cJSON_free(body);
	free(b64);
}
END_TEST

START_TEST(exec_should_accept_a_form_content_type)
{
	struct httpc_response r;
	ask("POST", "/v1/exec", "Content-Type: application/x-www-form-urlencoded\r\n",
	    HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	ask("POST", "/v1/exec", NULL, HELLO_BODY, &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
}
END_TEST

/* Runs bytecode (raw bytes) sent in one base64 dialect. */
static void
expect_bytecode_dialect_runs_at(int line, const void *bc, size_t len, int url_safe, int padding,
    size_t line_len)
{
	char *b64 = encode_base64(bc, len, url_safe, padding, line_len);
	char *body = hello_request("bytecode", b64);
	struct httpc_response r;
	ask_at(line, "POST", "/v1/exec", "Content-Type: application/x-www-form-urlencoded\r\n",
	    body, &r);
	expect_json_at(line, &r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	cJSON_free(body);
	free(b64);
}
#define expect_bytecode_dialect_runs(bc, len, u, p, l) \
	expect_bytecode_dialect_runs_at(__LINE__, bc, len, u, p, l)

START_TEST(exec_should_accept_url_safe_unpadded_and_wrapped_base64)
{
	size_t len = 0;
	char *bc = support_read_file(HELLO_FIXTURE, &len);
	ck_assert_ptr_nonnull(bc);
	expect_bytecode_dialect_runs(bc, len, 1, 0, 0);
	expect_bytecode_dialect_runs(bc, len, 0, 0, 76);
	expect_bytecode_dialect_runs(bc, len, 1, 0, 76);
	free(bc);

	/* A chunk longer than one line whose encoding has '+' or '/': the
	 * 0xff bytes of its string constant guarantee "////". */
	char *request = source_request("local pad = \"\\255\\255\\255\\255\\255\\255\" "
	    HELLO_SOURCE, 0);
	struct httpc_response r;
	post_json("/v1/compile", request, &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	const char *b64 = string_member(doc, "bytecode");
	ck_assert_ptr_nonnull(b64);
	ck_assert_msg(strlen(b64) > 76 && strpbrk(b64, "+/"), "bytecode: %s", b64);
	unsigned char *raw = malloc(base64_decoded_max(strlen(b64)));
	long n = base64_decode(b64, strlen(b64), raw);
	ck_assert_int_gt(n, 0);
	expect_bytecode_dialect_runs(raw, (size_t)n, 1, 0, 76);
	expect_bytecode_dialect_runs(raw, (size_t)n, 0, 1, 76);
	expect_bytecode_dialect_runs(raw, (size_t)n, 1, 1, 0);
	free(raw);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(request);
}
END_TEST

/* 2. Every endpoint ------------------------------------------------------- */

START_TEST(compile_should_return_bytecode_that_exec_runs)
{
	struct httpc_response r;
	char *request = source_request(HELLO_SOURCE, 0);
	post_json("/v1/compile", request, &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	const char *b64 = string_member(doc, "bytecode");
	ck_assert_ptr_nonnull(b64);
	unsigned char raw[4096];
	ck_assert_uint_lt(base64_decoded_max(strlen(b64)), sizeof(raw));
	long n = base64_decode(b64, strlen(b64), raw);
	ck_assert_int_gt(n, 4);
	ck_assert_int_eq(memcmp(raw, "\033LJ", 3), 0);
	char *body = hello_request("bytecode", b64);
	struct httpc_response run;
	post_json("/v1/exec", body, &run);
	expect_json(&run, 200, HELLO_RESULT);
	httpc_response_free(&run);
	cJSON_free(body);
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(request);
}
END_TEST

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
		const char *name = string_member(item, "name");
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
	char *source = source_request(HELLO_SOURCE, 0);
	ask("PUT", "/v1/scripts/greeting", JSON_HEADERS, source, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);
	ask("PUT", "/v1/scripts/greeting", JSON_HEADERS, source, &r);
	expect_json(&r, 200, NULL);
	httpc_response_free(&r);
	char *b64 = fixture_base64(HELLO_FIXTURE);
	char *bytecode = hello_request("bytecode", b64);
	ask("PUT", "/v1/scripts/greeting.bc", JSON_HEADERS, bytecode, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);

	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "greeting,greeting.bc");

	get_path("/v1/scripts/greeting", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	ck_assert_str_eq(string_member(doc, "name"), "greeting");
	ck_assert_str_eq(string_member(doc, "kind"), "source");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	get_path("/v1/scripts/greeting.bc", &r);
	doc = parse(&r);
	ck_assert_str_eq(string_member(doc, "kind"), "bytecode");
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

START_TEST(healthz_info_and_metrics_should_describe_the_server)
{
	struct httpc_response r;
	get_path("/healthz", &r);
	expect_json(&r, 200, "{\"status\":\"ok\",\"workers\":2}");
	httpc_response_free(&r);

	get_path("/v1/info", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	ck_assert_str_eq(string_member(doc, "version"), LUAPOOL_VERSION);
	ck_assert_ptr_nonnull(strstr(string_member(doc, "engine"), "LuaJIT"));
	const cJSON *workers = cJSON_GetObjectItemCaseSensitive(doc, "workers");
	ck_assert(number_member(workers, "target") == 2);
	ck_assert(number_member(workers, "live") == 2);
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

/* 3. Every error code ------------------------------------------------------ */

START_TEST(bad_json_should_answer_400_invalid_json)
{
	expect_post_problem("/v1/exec", "{\"source\": \"return 1\"", 400, "invalid_json");
	expect_post_problem("/v1/exec", "{'source': 1}", 400, "invalid_json");
	expect_post_problem("/v1/exec", "", 400, "invalid_json");
	expect_post_problem("/v1/compile", "", 400, "invalid_json");
	struct httpc_response r;
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{", &r);
	expect_problem(&r, 400, "invalid_json");
	httpc_response_free(&r);

	size_t depth = 100000;
	char *nested = malloc(depth + 1);
	memset(nested, '[', depth);
	nested[depth] = '\0';
	expect_post_problem("/v1/exec", nested, 400, "invalid_json");
	expect_post_problem("/v1/compile", nested, 400, "invalid_json");
	free(nested);
	expect_hello_works();
}
END_TEST

START_TEST(bad_requests_should_answer_400_invalid_request)
{
	expect_post_problem("/v1/exec", "{\"source\":5}", 400, "invalid_request");
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"timeout_ms\":\"x\"}", 400,
	    "invalid_request");
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"timeout_ms\":60001}", 400,
	    "invalid_request");
	expect_post_problem("/v1/exec", "{\"source\":\"return 1\",\"context\":5}", 400,
	    "invalid_request");
	expect_post_problem("/v1/exec", "[1]", 400, "invalid_request");
	expect_post_problem("/v1/exec", "{}", 400, "invalid_request");
	expect_post_problem("/v1/compile", "{\"source\":false}", 400, "invalid_request");
	struct httpc_response r;
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{\"source\":5}", &r);
	expect_problem(&r, 400, "invalid_request");
	httpc_response_free(&r);
	ask("PUT", "/v1/scripts/.hidden", JSON_HEADERS, "{\"source\":\"return 1\"}", &r);
	expect_problem(&r, 400, "invalid_request");
	httpc_response_free(&r);
	expect_hello_works();
}
END_TEST

START_TEST(bad_bytecode_should_answer_400_invalid_base64_or_invalid_bytecode)
{
	struct httpc_response r;
	expect_post_problem("/v1/exec", "{\"bytecode\":\"!!!not base64!!!\"}", 400,
	    "invalid_base64");
	/* "hello world": valid base64, not bytecode. */
	expect_post_problem("/v1/exec", "{\"bytecode\":\"aGVsbG8gd29ybGQ=\"}", 400,
	    "invalid_bytecode");
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{\"bytecode\":\"@@@@\"}", &r);
	expect_problem(&r, 400, "invalid_base64");
	httpc_response_free(&r);
	ask("PUT", "/v1/scripts/x", JSON_HEADERS, "{\"bytecode\":\"aGVsbG8gd29ybGQ=\"}", &r);
	expect_problem(&r, 400, "invalid_bytecode");
	httpc_response_free(&r);
	/* Truncated bytecode: the right header, a body cut short. */
	expect_post_problem("/v1/exec", "{\"bytecode\":\"G0xKAgoxAgACAAMABTYA\"}", 400,
	    "invalid_bytecode");
	expect_hello_works();
}
END_TEST

START_TEST(bad_source_should_answer_400_compile_error)
{
	struct httpc_response r;
	expect_post_problem("/v1/exec", "{\"source\":\"return +\"}", 400, "compile_error");
	expect_post_problem("/v1/compile", "{\"source\":\"local = 1\"}", 400, "compile_error");
	ask("PUT", "/v1/scripts/broken", JSON_HEADERS, "{\"source\":\"end end\"}", &r);
	expect_problem(&r, 400, "compile_error");
	httpc_response_free(&r);
	get_path("/v1/scripts/broken", &r);
	expect_problem(&r, 404, "unknown_script");
	httpc_response_free(&r);
	expect_hello_works();
}
END_TEST

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
	ask_at(line, method, path, NULL, strcmp(method, "POST") == 0 ? "{}" : NULL, &r);
	cJSON_Delete(problem_at(line, &r, 405, "method_not_allowed"));
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

	int fd = httpc_connect(srv.port, 5000);
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
	fd = httpc_connect(srv.port, 5000);
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

START_TEST(script_failures_should_answer_422)
{
	struct httpc_response r;
	post_json("/v1/exec", "{\"source\":\"local function f() error('boom') end f()\"}", &r);
	cJSON *doc = parse_problem(&r, 422, "script_error");
	ck_assert_ptr_nonnull(strstr(string_member(doc, "message"), "boom"));
	const char *traceback = string_member(doc, "traceback");
	ck_assert_ptr_nonnull(traceback);
	ck_assert_ptr_nonnull(strstr(traceback, "stack traceback"));
	cJSON_Delete(doc);
	httpc_response_free(&r);

	expect_post_problem("/v1/exec", "{\"source\":\"return function() end\"}", 422,
	    "result_not_serializable");
	expect_post_problem("/v1/exec", "{\"source\":\"return 0/0\"}", 422,
	    "result_not_serializable");
	expect_post_problem("/v1/exec", "{\"source\":\"local t = {} t.self = t return t\"}", 422,
	    "result_not_serializable");
	expect_hello_works();
}
END_TEST

START_TEST(crashing_bytecode_should_answer_500_and_the_next_request_succeed)
{
	char *b64 = fixture_base64(SEGFAULT_FIXTURE);
	char *body = hello_request("bytecode", b64);
	for (int i = 0; i < 2; i++) {
		expect_post_problem("/v1/exec", body, 500, "worker_crashed");
		expect_hello_works();
	}
	cJSON_free(body);
	free(b64);
}
END_TEST

START_TEST(deadline_should_answer_504)
{
	expect_post_problem("/v1/exec", "{\"source\":\"local t=os.clock() "
	    "while os.clock()-t<5 do end\",\"timeout_ms\":100}", 504, "deadline_exceeded");
	/* A script that catches the soft stop is stopped again. */
	expect_post_problem("/v1/exec", "{\"source\":\"for i=1,10 do pcall(function() "
	    "local t=os.clock() while os.clock()-t<5 do end end) end\",\"timeout_ms\":100}",
	    504, "deadline_exceeded");
	expect_hello_works();
}
END_TEST

/* 4. Runaway, crashed and killed workers ----------------------------------- */

struct hello_loop {
	unsigned port;
	atomic_int stop;
	atomic_int ok, bad;
	int last_bad_status;	/* read after the join */
};

/* Hello requests on one keep-alive connection until told to stop. */
static void *
run_hello_loop(void *arg)
{
	struct hello_loop *h = arg;
	int fd = -1;
	while (!atomic_load(&h->stop)) {
		struct httpc_response r;
		memset(&r, 0, sizeof(r));
		if (fd == -1)
			fd = httpc_connect(h->port, HTTPC_TIMEOUT_MS);
		int rc = fd == -1 ? -1 : httpc_send_request(fd, "POST", "/v1/exec", JSON_HEADERS,
		    HELLO_BODY, strlen(HELLO_BODY));
		if (rc == 0)
			rc = httpc_read_response(fd, &r);
		if (rc == 0 && r.status == 200 && strcmp(r.body, HELLO_RESULT) == 0) {
			atomic_fetch_add(&h->ok, 1);
		} else {
			atomic_fetch_add(&h->bad, 1);
			h->last_bad_status = r.status;
		}
		if ((rc == -1 || httpc_closes(&r)) && fd != -1) {
			close(fd);
			fd = -1;
		}
		httpc_response_free(&r);
	}
	if (fd != -1)
		close(fd);
	return NULL;
}

static void
wait_for_hellos_at(int line, struct hello_loop *h, int count)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (atomic_load(&h->ok) < count) {
		ck_assert_msg(support_now_ms() < deadline && atomic_load(&h->bad) == 0,
		    "line %d: hello loop: %d ok, %d failed", line, atomic_load(&h->ok),
		    atomic_load(&h->bad));
		usleep(1000);
	}
}
#define wait_for_hellos(h, n) wait_for_hellos_at(__LINE__, h, n)

START_TEST(runaway_loop_should_answer_504_in_time_while_others_are_served)
{
	struct hello_loop h = { .port = srv.port };
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, run_hello_loop, &h), 0);
	wait_for_hellos(&h, 3);

	int64_t start = support_now_ms();
	int fd = send_on_new_connection("/v1/exec",
	    "{\"source\":\"while true do end\",\"timeout_ms\":200}");
	int ok_before = atomic_load(&h.ok);
	struct httpc_response r;
	read_answer(fd, &r);
	int64_t elapsed = support_now_ms() - start;
	int ok_during = atomic_load(&h.ok) - ok_before;
	/* The replacement worker takes its share too. */
	wait_for_hellos(&h, atomic_load(&h.ok) + 20);
	atomic_store(&h.stop, 1);
	pthread_join(thread, NULL);
	close(fd);

	expect_problem(&r, 504, "deadline_exceeded");
	httpc_response_free(&r);
	ck_assert_msg(elapsed < 300, "504 after %lld ms", (long long)elapsed);
	ck_assert_msg(ok_during > 0, "no hello answered while the loop ran");
	ck_assert_msg(atomic_load(&h.bad) == 0, "%d hello requests failed (last status %d)",
	    atomic_load(&h.bad), h.last_bad_status);
	expect_hello_works();
}
END_TEST

static int
pid_in(pid_t pid, const pid_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return 1;
	return 0;
}

/* Polls until the daemon has `count` worker children none of which is in
 * `old`, and /healthz reports them. */
static void
wait_for_fresh_workers_at(int line, int count, const pid_t *old, int old_count)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	for (;;) {
		pid_t now[16];
		int n = support_children(srv.pid, "luapool-worker", now, 16), fresh = 0;
		for (int i = 0; i < n; i++)
			fresh += !pid_in(now[i], old, old_count);
		if (n == count && fresh == count) {
			struct httpc_response r;
			char expected[64];
			snprintf(expected, sizeof(expected), "{\"status\":\"ok\",\"workers\":%d}",
			    count);
			get_path("/healthz", &r);
			int ready = r.status == 200 && strcmp(r.body, expected) == 0;
			httpc_response_free(&r);
			if (ready)
				return;
		}
		ck_assert_msg(support_now_ms() < deadline, "line %d: %d fresh workers of %d after "
		    "%d ms", line, fresh, count, WAIT_MS);
		usleep(POLL_STEP_US);
	}
}

START_TEST(killed_busy_worker_should_answer_500_and_be_replaced)
{
	int fd = send_on_new_connection("/v1/exec",
	    "{\"source\":\"while true do end\",\"timeout_ms\":10000}");
	wait_for_busy_workers(1);
	pid_t killed[16];
	int n = support_children(srv.pid, "luapool-worker", killed, 16);
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(kill(killed[i], SIGKILL), 0);

	int64_t start = support_now_ms();
	struct httpc_response r;
	read_answer(fd, &r);
	close(fd);
	cJSON *doc = parse_problem(&r, 500, "worker_crashed");
	ck_assert_ptr_nonnull(strstr(string_member(doc, "detail"), "SIGKILL"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	ck_assert_msg(support_now_ms() - start < 2000, "the crash was noticed after %lld ms",
	    (long long)(support_now_ms() - start));

	wait_for_fresh_workers_at(__LINE__, 2, killed, n);
	expect_hello_works();
	expect_hello_works();
}
END_TEST

/* 5. Slow clients ----------------------------------------------------------- */

#define SLOW_CLIENTS 500

START_TEST(slow_clients_should_not_delay_other_requests)
{
	static const char *const options[] = { "--workers", "2", "--max-connections", "2000",
	    NULL };
	static const char partial[] = "POST /v1/exec HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"source\":";
	ck_assert_int_ge(support_raise_file_limit(4096), SLOW_CLIENTS + 100);
	start_with(options);

	static int fds[SLOW_CLIENTS];
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		fds[i] = httpc_connect(srv.port, 5000);
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
	for (int i = 0; i < 3; i++) {
		int64_t start = support_now_ms();
		expect_hello_works();
		int64_t elapsed = support_now_ms() - start;
		ck_assert_msg(elapsed <= 100, "a hello request took %lld ms beside %d slow clients",
		    (long long)elapsed, SLOW_CLIENTS);
	}
	for (int i = 0; i < SLOW_CLIENTS; i++)
		close(fds[i]);
	expect_hello_works();
}
END_TEST

/* Limits: 413 (header and chunked body) and the 422 limits ------------------ */

START_TEST(limits_should_answer_413_and_422)
{
	static const char *const options[] = { "--workers", "1", "--memory-limit-mb", "32",
	    "--max-result-bytes", "1024", "--max-body-bytes", "64k", NULL };
	start_with(options);

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
	int fd = httpc_connect(srv.port, 5000);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(httpc_send_request(fd, "POST", "/v1/exec", "Content-Length: 65537\r\n",
	    NULL, 0), 0);
	read_answer(fd, &r);
	expect_problem(&r, 413, "payload_too_large");
	httpc_response_free(&r);
	close(fd);

	/* Chunked, so only counting tells: 80 KiB in 16 KiB chunks. */
	fd = httpc_connect(srv.port, 5000);
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
	fd = httpc_connect(srv.port, 5000);
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

/* 401 -------------------------------------------------------------------------- */

START_TEST(auth_should_require_the_bearer_token)
{
	char token_path[128];
	make_scratch_dir();
	snprintf(token_path, sizeof(token_path), "%s/token", scratch);
	ck_assert_int_eq(support_write_file(token_path, "s3cret-t0ken\n", 13), 0);
	const char *const options[] = { "--workers", "1", "--auth-token-file", token_path, NULL };
	start_with(options);

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

	expect_hello_works_at(__LINE__, "Authorization: Bearer s3cret-t0ken\r\n");
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

/* 503 -------------------------------------------------------------------------- */

START_TEST(overload_should_answer_503_with_retry_after)
{
	static const char *const options[] = { "--workers", "1", "--queue-depth", "1", NULL };
	start_with(options);
	char *slow = source_request(BUSY_SOURCE("0.5"), 5000);
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

/* A job waiting behind a slow one is answered at its own deadline, from
 * the queue, not when the worker frees up. */
START_TEST(a_queued_request_should_get_its_504_at_its_deadline)
{
	static const char *const options[] = { "--workers", "1", NULL };
	start_with(options);
	char *slow = source_request(BUSY_SOURCE("0.6"), 5000);
	char *quick = source_request("return 1", 100);
	int busy = send_on_new_connection("/v1/exec", slow);
	/* Let the worker take the slow job before the quick one queues. */
	usleep(50 * 1000);
	int64_t start = support_now_ms();
	int waiting = send_on_new_connection("/v1/exec", quick);
	struct httpc_response r;
	read_answer(waiting, &r);
	int64_t took = support_now_ms() - start;
	expect_problem(&r, 504, "deadline_exceeded");
	ck_assert_msg(took < 400, "answered after %lld ms, not near its 100 ms deadline",
	    (long long)took);
	httpc_response_free(&r);
	read_answer(busy, &r);
	expect_json(&r, 200, DONE_RESULT);
	httpc_response_free(&r);
	close(waiting);
	close(busy);
	cJSON_free(slow);
	cJSON_free(quick);
}
END_TEST

START_TEST(drain_should_answer_503_shutting_down_and_finish_the_running_job)
{
	static const char *const options[] = { "--workers", "2", NULL };
	start_with(options);
	/* A keep-alive connection opened before the drain: new ones may be
	 * refused once the daemon stops listening. */
	int idle = httpc_connect(srv.port, 5000);
	ck_assert_int_ne(idle, -1);
	struct httpc_response r;
	ck_assert_int_eq(httpc_send_request(idle, "GET", "/healthz", NULL, NULL, 0), 0);
	read_answer(idle, &r);
	expect_json(&r, 200, NULL);
	ck_assert(!httpc_closes(&r));
	httpc_response_free(&r);

	char *slow = source_request(BUSY_SOURCE("1.0"), 5000);
	int job = send_on_new_connection("/v1/exec", slow);
	wait_for_busy_workers(1);
	ck_assert_int_eq(kill(srv.pid, SIGTERM), 0);

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
	int rc = server_wait_exit(&srv, SERVER_STOP_TIMEOUT_MS, &status);
	expect_clean_exit(rc, status);
}
END_TEST

/* 6. SIGTERM ------------------------------------------------------------------ */

START_TEST(sigterm_should_finish_in_flight_jobs_and_exit_0)
{
	static const char *const options[] = { "--workers", "2", NULL };
	start_with(options);
	char *slow = source_request(BUSY_SOURCE("0.3"), 5000);
	int first = send_on_new_connection("/v1/exec", slow);
	int second = send_on_new_connection("/v1/exec", slow);
	wait_for_busy_workers(2);
	pid_t workers[16];
	int n = support_children(srv.pid, "luapool-worker", workers, 16);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(kill(srv.pid, SIGTERM), 0);

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

	pid_t daemon_pid = srv.pid;
	int status = 0;
	int rc = server_wait_exit(&srv, SERVER_STOP_TIMEOUT_MS, &status);
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

/* 7. Configuration errors ----------------------------------------------------- */

/* Runs luapoold with these arguments (NULL-terminated); fills *status and
 * the output (caller frees both). */
static void
run_daemon_command_at(int line, const char *const *args, int *status, char **out, char **err)
{
	char *argv[16];
	int argc = 0;
	argv[argc++] = strdup(server_daemon_path());
	for (int i = 0; args[i]; i++)
		argv[argc++] = strdup(args[i]);
	argv[argc] = NULL;
	int rc = support_run(argv, 10000, status, out, err);
	ck_assert_msg(rc == 0, "line %d: luapoold %s did not finish within 10 s", line, args[0]);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
}
#define run_daemon_command(a, s, o, e) run_daemon_command_at(__LINE__, a, s, o, e)

static void
write_bad_config(char *path, size_t len)
{
	static const char text[] = "# a test configuration\nworkers = 1\nno_such_key = 5\n"
	    "queue_depth = 4\n";
	make_scratch_dir();
	snprintf(path, len, "%s/bad.conf", scratch);
	ck_assert_int_eq(support_write_file(path, text, sizeof(text) - 1), 0);
}

START_TEST(unknown_config_key_should_fail_with_its_file_and_line)
{
	char path[128], where[160];
	int status;
	char *out, *err;
	write_bad_config(path, sizeof(path));
	snprintf(where, sizeof(where), "%s:3:", path);
	const char *const args[] = { "-c", path, "--listen", "127.0.0.1:0", "--worker-path",
	    server_worker_path(), NULL };
	run_daemon_command(args, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "wait status 0x%x",
	    status);
	ck_assert_msg(strstr(err, where) != NULL, "stderr lacks %s: %s", where, err);
	ck_assert_ptr_null(strstr(err, "listening on"));
	free(out);
	free(err);
}
END_TEST

START_TEST(check_config_should_accept_the_shipped_file_and_refuse_a_bad_one)
{
	char path[128], where[160];
	int status;
	char *out, *err;
	const char *const good[] = { "--check-config", "-c", "conf/luapoold.conf", NULL };
	run_daemon_command(good, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "wait status 0x%x, stderr: %s", status, err);
	free(out);
	free(err);

	write_bad_config(path, sizeof(path));
	snprintf(where, sizeof(where), "%s:3:", path);
	const char *const bad[] = { "--check-config", "-c", path, NULL };
	run_daemon_command(bad, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "wait status 0x%x",
	    status);
	ck_assert_msg(strstr(err, where) != NULL, "stderr lacks %s: %s", where, err);
	free(out);
	free(err);
}
END_TEST

START_TEST(help_and_version_should_exit_0)
{
	int status;
	char *out, *err;
	const char *const help[] = { "--help", NULL };
	run_daemon_command(help, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status 0x%x",
	    status);
	ck_assert_ptr_nonnull(strstr(out, "usage:"));
	ck_assert_ptr_nonnull(strstr(out, "--check-config"));
	ck_assert_ptr_nonnull(strstr(out, "--queue-depth"));
	free(out);
	free(err);

	const char *const version[] = { "--version", NULL };
	run_daemon_command(version, &status, &out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status 0x%x",
	    status);
	ck_assert_msg(strstr(out, "luapoold " LUAPOOL_VERSION) != NULL, "--version: %s", out);
	free(out);
	free(err);
}
END_TEST

/* 8. The script store on disk ------------------------------------------------- */

START_TEST(stored_scripts_should_survive_a_restart)
{
	char path[128];
	make_scratch_dir();
	snprintf(path, sizeof(path), "%s/greet.lua", scratch);
	static const char greet[] = "return 'hi ' .. ctx.name\n";
	ck_assert_int_eq(support_write_file(path, greet, sizeof(greet) - 1), 0);
	const char *const options[] = { "--workers", "1", "--scripts-dir", scratch, NULL };
	start_with(options);

	struct httpc_response r;
	post_json("/v1/scripts/greet", "{\"context\":{\"name\":\"there\"}}", &r);
	expect_json(&r, 200, "{\"result\":\"hi there\"}");
	httpc_response_free(&r);
	char *source = source_request(HELLO_SOURCE, 0);
	ask("PUT", "/v1/scripts/saved", JSON_HEADERS, source, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);
	char *b64 = fixture_base64(HELLO_FIXTURE);
	char *bytecode = hello_request("bytecode", b64);
	ask("PUT", "/v1/scripts/saved-bc", JSON_HEADERS, bytecode, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);

	stop_server();
	start_with(options);

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
	stop_server();
	start_with(options);
	list_script_names(names, sizeof(names));
	ck_assert_str_eq(names, "greet,saved-bc");

	cJSON_free(bytecode);
	free(b64);
	cJSON_free(source);
}
END_TEST

/* 9. The systemd unit ---------------------------------------------------------- */

static int
find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* text with every `from` replaced by `to` (malloc'd). */
static char *
replace_all(const char *text, const char *from, const char *to)
{
	size_t count = 0, flen = strlen(from), tlen = strlen(to);
	for (const char *p = strstr(text, from); p; p = strstr(p + flen, from))
		count++;
	char *out = malloc(strlen(text) + count * tlen + 1), *o = out;
	ck_assert_ptr_nonnull(out);
	for (const char *p = text, *hit; ; p = hit + flen) {
		hit = strstr(p, from);
		size_t keep = hit ? (size_t)(hit - p) : strlen(p);
		memcpy(o, p, keep);
		o += keep;
		if (hit == NULL)
			break;
		memcpy(o, to, tlen);
		o += tlen;
	}
	*o = '\0';
	return out;
}

START_TEST(unit_file_should_pass_systemd_analyze_verify)
{
	char analyze[512], unit_path[128], bindir[4096], libexecdir[4096];
	if (find_in_path("systemd-analyze", analyze, sizeof(analyze)) == -1) {
		printf("note: systemd-analyze not found; the unit file is not verified\n");
		return;
	}
	char *unit = support_read_file("luapoold.service", NULL);
	if (unit == NULL) {
		printf("note: no luapoold.service at the repository root; nothing to verify\n");
		return;
	}
	ck_assert_ptr_nonnull(realpath(server_daemon_path(), bindir));
	*strrchr(bindir, '/') = '\0';
	ck_assert_ptr_nonnull(realpath(server_worker_path(), libexecdir));
	*strrchr(libexecdir, '/') = '\0';
	const char *substitutions[][2] = {
		{ "@BINDIR@", bindir }, { "@LIBEXECDIR@", libexecdir },
		{ "@SYSCONFDIR@", "/etc" }, { "@PREFIX@", "/usr/local" },
	};
	for (size_t i = 0; i < sizeof(substitutions) / sizeof(substitutions[0]); i++) {
		char *next = replace_all(unit, substitutions[i][0], substitutions[i][1]);
		free(unit);
		unit = next;
	}
	make_scratch_dir();
	snprintf(unit_path, sizeof(unit_path), "%s/luapoold.service", scratch);
	ck_assert_int_eq(support_write_file(unit_path, unit, strlen(unit)), 0);
	free(unit);

	char *argv[] = { analyze, strdup("verify"), unit_path, NULL };
	int status;
	char *out, *err;
	int rc = support_run(argv, 30000, &status, &out, &err);
	free(argv[1]);
	ck_assert_msg(rc == 0, "systemd-analyze verify did not finish");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "systemd-analyze verify: wait status 0x%x\n%s%s", status, out, err);
	/* It exits 0 after "Unknown key ... ignoring": any line about the
	 * unit is a finding. */
	ck_assert_msg(strstr(out, unit_path) == NULL && strstr(err, unit_path) == NULL,
	    "systemd-analyze verify:\n%s%s", out, err);
	free(out);
	free(err);
}
END_TEST

/* Suite ------------------------------------------------------------------------ */

static Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *api = tcase_create("api");
	tcase_add_checked_fixture(api, setup_with_server, teardown);
	tcase_set_timeout(api, TEST_TIMEOUT_S);
	tcase_add_test(api, exec_should_answer_the_seed_example);
	tcase_add_test(api, exec_should_run_the_bytecode_fixture);
	tcase_add_test(api, exec_should_accept_a_form_content_type);
	tcase_add_test(api, exec_should_accept_url_safe_unpadded_and_wrapped_base64);
	tcase_add_test(api, compile_should_return_bytecode_that_exec_runs);
	tcase_add_test(api, scripts_should_be_stored_listed_described_run_and_deleted);
	tcase_add_test(api, healthz_info_and_metrics_should_describe_the_server);
	tcase_add_test(api, bad_json_should_answer_400_invalid_json);
	tcase_add_test(api, bad_requests_should_answer_400_invalid_request);
	tcase_add_test(api, bad_bytecode_should_answer_400_invalid_base64_or_invalid_bytecode);
	tcase_add_test(api, bad_source_should_answer_400_compile_error);
	tcase_add_test(api, unknown_paths_should_answer_404_not_found);
	tcase_add_test(api, wrong_methods_should_answer_405_with_allow);
	tcase_add_test(api, huge_upload_should_be_refused_with_413_before_it_is_sent);
	tcase_add_test(api, script_failures_should_answer_422);
	tcase_add_test(api, crashing_bytecode_should_answer_500_and_the_next_request_succeed);
	tcase_add_test(api, deadline_should_answer_504);
	tcase_add_test(api, runaway_loop_should_answer_504_in_time_while_others_are_served);
	tcase_add_test(api, killed_busy_worker_should_answer_500_and_be_replaced);
	suite_add_tcase(s, api);

	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, setup, teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, slow_clients_should_not_delay_other_requests);
	tcase_add_test(own, limits_should_answer_413_and_422);
	tcase_add_test(own, auth_should_require_the_bearer_token);
	tcase_add_test(own, overload_should_answer_503_with_retry_after);
	tcase_add_test(own, a_queued_request_should_get_its_504_at_its_deadline);
	tcase_add_test(own, drain_should_answer_503_shutting_down_and_finish_the_running_job);
	tcase_add_test(own, sigterm_should_finish_in_flight_jobs_and_exit_0);
	tcase_add_test(own, stored_scripts_should_survive_a_restart);
	suite_add_tcase(s, own);

	TCase *cli = tcase_create("command line");
	tcase_add_checked_fixture(cli, setup, teardown);
	tcase_set_timeout(cli, TEST_TIMEOUT_S);
	tcase_add_test(cli, unknown_config_key_should_fail_with_its_file_and_line);
	tcase_add_test(cli, check_config_should_accept_the_shipped_file_and_refuse_a_bad_one);
	tcase_add_test(cli, help_and_version_should_exit_0);
	tcase_add_test(cli, unit_file_should_pass_systemd_analyze_verify);
	suite_add_tcase(s, cli);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(daemon_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
