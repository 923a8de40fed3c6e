/*
 * http_scripts.c - the named-script routes: GET /v1/scripts, and PUT, GET,
 * DELETE and POST (run) /v1/scripts/{name} over the store (daemon/scripts).
 * Source is compiled by a worker before it is stored, and bytecode passes
 * the verifier (and the tag check of bytecode = signed, http_bytecode.c)
 * first, so a script that is stored always loads; running one is an exec
 * job (http_exec.c).  This file never touches a connection nor parses a
 * script itself.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/base64.h"
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

/* PUT /v1/scripts/{name}: {"source": text} or {"bytecode": base64}. */
static void
handle_script_put(struct request *r)
{
	cJSON *root = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
	if (root == NULL) {
		http_request_prepare_problem(r, "invalid_json", "the body must be a JSON object",
		    NULL);
		return;
	}
	const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "source");
	const cJSON *bc = cJSON_GetObjectItemCaseSensitive(root, "bytecode");
	if (cJSON_IsString(src) && bc == NULL) {
		/* Compile in a worker first; store on success
		 * (http_scripts_finish_put). */
		r->pending_source = strdup(src->valuestring);
		r->pending_source_len = strlen(src->valuestring);
		cJSON_Delete(root);
		http_exec_submit(r, LUAPOOL_JOB_COMPILE, r->pending_source, r->pending_source_len,
		    1);
		return;
	}
	if (!cJSON_IsString(bc) || src != NULL) {
		cJSON_Delete(root);
		http_request_prepare_problem(r, "invalid_request",
		    "give either \"source\" (text) or \"bytecode\" (base64)", NULL);
		return;
	}
	if (r->http->opts.bytecode_mode == HTTP_BYTECODE_OFF) {
		cJSON_Delete(root);
		http_request_prepare_problem(r, "invalid_request",
		    "bytecode is disabled on this server (bytecode = off); send source", NULL);
		return;
	}
	size_t len = strlen(bc->valuestring);
	unsigned char *chunk = malloc(base64_decoded_max(len) + 1);
	long n = chunk ? base64_decode(bc->valuestring, len, chunk) : -1;
	cJSON_Delete(root);
	char why[256];
	size_t chunk_len;
	if (n < 0) {
		http_request_prepare_problem(r, "invalid_base64",
		    "\"bytecode\" is not valid base64", NULL);
	} else if (http_bytecode_accept(r->http, chunk, (size_t)n, &chunk_len, why,
	    sizeof(why)) == -1) {
		http_request_prepare_problem(r, "invalid_bytecode", why, NULL);
	} else {
		store_script(r, 0, chunk, chunk_len);	/* verified, without its tag */
	}
	free(chunk);
}

void
http_scripts_finish_put(struct request *r)
{
	char *source = r->pending_source;
	r->pending_source = NULL;
	if (r->status == 200)
		store_script(r, 1, source, r->pending_source_len);
	free(source);
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
