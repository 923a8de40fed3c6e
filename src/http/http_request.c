/*
 * http_request.c - the request object's release and the answer it carries
 * (see http_internal.h): a status, a body, a content type and at most one
 * extra header, set by the router and by the routes alike.  Queuing the
 * answer on the connection is the router's (http.c); this file never
 * touches a connection, a job or a route.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/frame.h"
#include "http/http_internal.h"
#include "http/problem.h"

#define TRIM_AFTER_BYTES	((size_t)1 << 20)

static void
trim_when_quiet(struct http *http)
{
	static _Atomic int64_t last_trim_ns;
	int64_t now = frame_now_ns(), last = atomic_load(&last_trim_ns);
	/* What this process holds: not what it lent to the fronts, but what
	 * they forwarded to it. */
	size_t held = atomic_load(&http->inflight_bytes) - atomic_load(&http->lent_bytes) +
	    atomic_load(&http->internal_inflight_bytes);
	if (now - last < 1000000000LL && held >= TRIM_AFTER_BYTES)
		return;
	if (atomic_compare_exchange_strong(&last_trim_ns, &last, now))
		malloc_trim(0);
}

void
http_request_unref(struct request *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	size_t charged = r->charged;
	struct http *http = r->http;
	atomic_fetch_sub(http_request_budget(r), charged);
	buffer_free(&r->body);
	free(r->resp_body);
	pthread_mutex_destroy(&r->lock);
	free(r);
	/* Large blocks freed inside the heap stay resident until trimmed: one
	 * big request would otherwise keep the supervisor large for good.
	 * malloc_trim walks every arena: once the big requests are over, at
	 * most once a second, not after each of a stream of them. */
	if (charged >= TRIM_AFTER_BYTES)
		trim_when_quiet(http);
}

void
http_request_prepare(struct request *r, int status, char *body, size_t len,
    const char *content_type)
{
	free(r->resp_body);
	r->status = status;
	r->resp_body = body;
	r->resp_len = len;
	r->content_type = content_type;
	r->prepared = 1;
	r->problem_code[0] = '\0';
}

/* Adds "request_id" to a problem body (a JSON object that problem.c
 * wrote): a client can quote it, and it finds the log lines.  The body
 * stays as it was when out of memory. */
static char *
add_request_id(char *body, size_t *len, const char *request_id)
{
	char id[2 * HTTP_REQUEST_ID_MAX + 1];
	size_t id_len = http_request_id_json(request_id, id, sizeof(id));
	if (body == NULL || *len < 2 || body[*len - 1] != '}')
		return body;
	char *grown = realloc(body, *len + id_len + 17);
	if (grown == NULL)
		return body;
	*len -= 1;
	*len += (size_t)sprintf(grown + *len, ",\"request_id\":\"%s\"}", id);
	return grown;
}

void
http_request_prepare_problem(struct request *r, const char *code, const char *detail,
    const char *traceback)
{
	struct problem_job_parts parts = { .traceback = traceback };
	http_request_prepare_job_problem(r, code, detail, &parts);
}

void
http_request_prepare_job_problem(struct request *r, const char *code, const char *detail,
    const struct problem_job_parts *parts)
{
	size_t len = 0;
	char *body = problem_body_for_job(code, detail, parts, &len);
	body = add_request_id(body, &len, r->request_id);
	http_request_prepare(r, problem_status(code), body, len, "application/problem+json");
	snprintf(r->problem_code, sizeof(r->problem_code), "%s", problem_known_code(code));
	if (strcmp(code, "overloaded") == 0 || strcmp(code, "shutting_down") == 0) {
		r->extra_header = MHD_HTTP_HEADER_RETRY_AFTER;
		r->extra_value = "1";
	} else if (strcmp(code, "unauthorized") == 0) {
		r->extra_header = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
		r->extra_value = "Bearer realm=\"luapoold\"";
	}
}

void
http_request_prepare_problemf(struct request *r, const char *code, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	http_request_prepare_problem(r, code, detail, NULL);
}

void
http_request_prepare_json(struct request *r, int status, struct buffer *b)
{
	size_t len = 0;
	char *body = buffer_steal(b, &len);
	http_request_prepare(r, status, body, len, "application/json");
}
