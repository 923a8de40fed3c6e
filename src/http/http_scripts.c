/*
 * http_scripts.c - the named-script routes: GET /v1/scripts, and PUT, GET,
 * DELETE and POST (run) /v1/scripts/{name} over the store (daemon/scripts).
 * A PUT body is parsed by a worker, never here (a large one would stall
 * the event loop): the worker compiles source, decodes bytecode, and
 * answers with the chunk.  Bytecode then passes the verifier (and the tag
 * check of bytecode = signed, http_bytecode.c), so a script that is
 * stored always loads; running one is an exec job (http_exec.c).  This
 * file never touches a connection nor parses a body or a script itself.
 */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

/* Stores the script; answers 201 (new) or 200 with its description. */
static void
store_script(struct request *r, int is_source, const void *chunk, size_t len)
{
	char err[256];
	int created = 0;
	if (scripts_put(r->http->scripts, r->name, is_source, chunk, len, &created, err,
	    sizeof(err)) == -1) {
		http_request_prepare_problem(r, "invalid_request", err, NULL);
		return;
	}
	struct buffer b;
	buffer_init(&b, 0);
	scripts_describe(r->http->scripts, r->name, &b);
	http_request_prepare_json(r, created ? 201 : 200, &b);
}

/* PUT /v1/scripts/{name}: {"source": text} or {"bytecode": base64}, to a
 * worker (LUAPOOL_JOB_CHECK_SCRIPT); stored by http_scripts_finish_put. */
static void
handle_script_put(struct request *r)
{
	if (r->body.len == 0) {
		http_request_prepare_problem(r, "invalid_json", "the request body is empty", NULL);
		return;
	}
	r->checking_script = 1;
	http_exec_submit(r, LUAPOOL_JOB_CHECK_SCRIPT, NULL, 0, 0);
}

void
http_scripts_finish_put(struct request *r)
{
	char why[256];
	r->checking_script = 0;
	if (r->status != 200)
		return;		/* the worker's (or the pool's) problem stands */
	char *chunk = r->resp_body;
	size_t len = r->resp_len, chunk_len = len;
	r->resp_body = NULL;
	if (r->chunk_is_source)
		store_script(r, 1, chunk, len);
	else if (http_bytecode_accept(r->http, (const unsigned char *)chunk, len, &chunk_len,
	    why, sizeof(why)) == -1)
		http_request_prepare_problem(r, "invalid_bytecode", why, NULL);
	else
		store_script(r, 0, chunk, chunk_len);	/* verified, without its tag */
	free(chunk);
}

static void
handle_script_run(struct request *r)
{
	int is_source;
	char *chunk;
	size_t len;
	if (scripts_get(r->http->scripts, r->name, &is_source, &chunk, &len) == -1) {
		http_request_prepare_problemf(r, "unknown_script", "no script named \"%s\"",
		    r->name);
		return;
	}
	http_exec_submit(r, LUAPOOL_JOB_EXEC, chunk, len, is_source);
	free(chunk);
}

static void
handle_script_item(struct request *r)
{
	struct buffer b;
	if (!scripts_valid_name(r->name)) {
		http_request_prepare_problemf(r, "invalid_request", "script names are 1 to %d "
		    "characters of A-Z a-z 0-9 _ . - and do not start with '.'", SCRIPTS_NAME_MAX);
		return;
	}
	switch (r->method) {
	case ROUTE_PUT:
		handle_script_put(r);
		return;
	case ROUTE_POST:
		handle_script_run(r);
		return;
	case ROUTE_DELETE:
		if (scripts_delete(r->http->scripts, r->name) == -1)
			http_request_prepare_problemf(r, "unknown_script",
			    "no script named \"%s\"", r->name);
		else
			http_request_prepare(r, 204, NULL, 0, "application/json");
		return;
	default:
		buffer_init(&b, 0);
		if (scripts_describe(r->http->scripts, r->name, &b) == -1) {
			buffer_free(&b);
			http_request_prepare_problemf(r, "unknown_script",
			    "no script named \"%s\"", r->name);
		} else {
			http_request_prepare_json(r, 200, &b);
		}
	}
}

void
http_scripts_handle(struct request *r)
{
	if (r->script_item) {
		handle_script_item(r);
		return;
	}
	struct buffer b;
	buffer_init(&b, 0);
	scripts_list(r->http->scripts, &b);
	http_request_prepare_json(r, 200, &b);
}
