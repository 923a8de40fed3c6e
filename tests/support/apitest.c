/*
 * apitest.c - Check fixtures and expectations for the suites that drive the
 * real luapoold over HTTP (see apitest.h).  Built on server.c (the daemon)
 * and httpc.c (the client); it never starts a daemon or speaks HTTP itself.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/base64.h"
#include "support/apitest.h"
#include "vm/bcverify.h"
#include "support/httpc.h"
#include "support/server.h"
#include "support/support.h"

struct server apitest_server;
char apitest_scratch[64];

/* Fixtures ---------------------------------------------------------------- */

void
apitest_start(const char *const *options)
{
	static char err[65536];
	ck_assert_msg(server_start(&apitest_server, options, err, sizeof(err)) == 0, "%s", err);
}

void
apitest_expect_clean_exit_at(int line, int rc, int status)
{
	char *report = server_sanitizer_report(&apitest_server);
	ck_assert_msg(report == NULL, "line %d: sanitizer report in luapoold's stderr:\n%s",
	    line, report);
	char *log = server_log(&apitest_server);
	ck_assert_msg(rc == 0, "line %d: luapoold did not exit in time (killed); log:\n%s",
	    line, log);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "line %d: luapoold ended with wait status 0x%x; log:\n%s", line, status, log);
	free(log);
	server_release(&apitest_server);
}

void
apitest_stop(void)
{
	int status = 0;
	int rc = server_stop(&apitest_server, &status);
	expect_clean_exit(rc, status);
}

void
apitest_make_scratch_dir(void)
{
	snprintf(apitest_scratch, sizeof(apitest_scratch), "/tmp/luapoold-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(apitest_scratch));
}

void
apitest_setup(void)
{
	memset(&apitest_server, 0, sizeof(apitest_server));
	apitest_scratch[0] = '\0';
	signal(SIGPIPE, SIG_IGN);
}

void
apitest_setup_with_server(void)
{
	static const char *const options[] = { "--workers", "2", NULL };
	apitest_setup();
	apitest_start(options);
}

void
apitest_teardown(void)
{
	if (apitest_server.pid > 0)
		apitest_stop();
	server_release(&apitest_server);
	if (apitest_scratch[0])
		support_remove_dir(apitest_scratch);
	apitest_scratch[0] = '\0';
}

/* Requests and expectations ---------------------------------------------- */

void
apitest_ask_at(int line, const char *method, const char *path, const char *headers,
    const char *body, struct httpc_response *resp)
{
	int rc = httpc_request(apitest_server.port, method, path, headers, body,
	    body ? strlen(body) : 0, resp);
	ck_assert_msg(rc == 0, "line %d: %s %s got no HTTP answer", line, method, path);
}

void
apitest_expect_json_at(int line, const struct httpc_response *r, int status, const char *body)
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

cJSON *
apitest_parse_at(int line, const struct httpc_response *r)
{
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(r->body, r->body_len + 1, &end, 1);
	ck_assert_msg(doc != NULL, "line %d: the body is not JSON: %s", line, r->body);
	return doc;
}

const char *
apitest_string_member(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

double
apitest_number_member(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);
	return cJSON_IsNumber(item) ? item->valuedouble : -1;
}

cJSON *
apitest_problem_at(int line, const struct httpc_response *r, int status, const char *code)
{
	ck_assert_msg(r->status == status, "line %d: status %d, expected %d (%s); body: %s",
	    line, r->status, status, code, r->body);
	const char *type = httpc_header(r, "Content-Type");
	ck_assert_msg(type && strcmp(type, "application/problem+json") == 0,
	    "line %d: Content-Type %s", line, type ? type : "(none)");
	cJSON *doc = apitest_parse_at(line, r);
	const char *got = apitest_string_member(doc, "code");
	ck_assert_msg(got && strcmp(got, code) == 0, "line %d: code %s, expected %s", line,
	    got ? got : "(none)", code);
	ck_assert_msg(apitest_number_member(doc, "status") == status,
	    "line %d: status member: %s", line, r->body);
	ck_assert_msg(apitest_string_member(doc, "type") && apitest_string_member(doc, "title") &&
	    apitest_string_member(doc, "detail"), "line %d: type, title or detail missing: %s",
	    line, r->body);
	return doc;
}

void
apitest_expect_post_problem_at(int line, const char *path, const char *body, int status,
    const char *code)
{
	struct httpc_response r;
	apitest_ask_at(line, "POST", path, JSON_HEADERS, body, &r);
	cJSON_Delete(apitest_problem_at(line, &r, status, code));
	httpc_response_free(&r);
}

void
apitest_expect_hello_works_at(int line, const char *headers)
{
	char all[512];
	struct httpc_response r;
	snprintf(all, sizeof(all), JSON_HEADERS "%s", headers ? headers : "");
	apitest_ask_at(line, "POST", "/v1/exec", all, HELLO_BODY, &r);
	apitest_expect_json_at(line, &r, 200, HELLO_RESULT);
	httpc_response_free(&r);
}

/* Request bodies ---------------------------------------------------------- */

char *
apitest_source_request(const char *source, unsigned timeout_ms)
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

char *
apitest_hello_request(const char *key, const char *value)
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

char *
apitest_encode_base64(const void *data, size_t len, int url_safe, int padding, size_t line_len)
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

char *
apitest_fixture_base64(const char *path)
{
	size_t len = 0;
	char *data = support_read_file(path, &len);
	ck_assert_msg(data != NULL, "cannot read %s (run from the repository root)", path);
	char *b64 = apitest_encode_base64(data, len, 0, 1, 0);
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
	const cJSON *workers = cJSON_GetObjectItemCaseSensitive(doc, "workers");
	int busy = (int)apitest_number_member(workers, "busy");
	cJSON_Delete(doc);
	httpc_response_free(&r);
	return busy;
}

void
apitest_wait_for_busy_workers_at(int line, int n)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	while (busy_workers() < n) {
		ck_assert_msg(support_now_ms() < deadline, "line %d: %d workers never got busy",
		    line, n);
		usleep(POLL_STEP_US);
	}
}

int
apitest_send_on_new_connection_at(int line, const char *path, const char *body)
{
	int fd = httpc_connect(apitest_server.port, HTTPC_TIMEOUT_MS);
	ck_assert_msg(fd != -1, "line %d: cannot connect", line);
	ck_assert_msg(httpc_send_request(fd, "POST", path, JSON_HEADERS, body,
	    strlen(body)) == 0, "line %d: cannot send", line);
	return fd;
}

void
apitest_read_answer_at(int line, int fd, struct httpc_response *r)
{
	ck_assert_msg(httpc_read_response(fd, r) == 0, "line %d: no HTTP answer", line);
}

unsigned char *
apitest_luajit_compile(const char *source, const char *flag, size_t *len)
{
	char src[96], out[96];
	snprintf(src, sizeof(src), "%s/chunk.lua", apitest_scratch);
	snprintf(out, sizeof(out), "%s/chunk.luac", apitest_scratch);
	ck_assert_int_eq(support_write_file(src, source, strlen(source)), 0);
	char luajit[] = "/usr/bin/luajit", option[8];
	snprintf(option, sizeof(option), "%s", flag);
	char *argv[] = { luajit, option, src, out, NULL };
	int status;
	char *o, *e;
	ck_assert_int_eq(support_run(argv, 10000, &status, &o, &e), 0);
	ck_assert_msg(status == 0, "luajit %s failed: %s", flag, e ? e : "");
	free(o);
	free(e);
	unsigned char *bc = (unsigned char *)support_read_file(out, len);
	ck_assert_ptr_nonnull(bc);
	return bc;
}

int
apitest_opcode_named(const char *name)
{
	for (unsigned op = 0; op < 256; op++) {
		const char *n = bcverify_opname(op);
		if (n && strcmp(n, name) == 0)
			return (int)op;
	}
	ck_abort_msg("no opcode %s", name);
	return -1;
}
