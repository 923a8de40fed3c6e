/*
 * http_route.c - what a request is, from its request line and headers
 * alone: its route and the methods that route allows, whether it is
 * authorized, and every answer that can be given before its body is read
 * (404, 405, 401, 503 while draining, 400 for ambiguous framing, 413 from
 * Content-Length, 503 past the request byte budget).  It never reads a
 * body, submits a job or queues a response (http.c does).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "common/text.h"
#include "http/http_internal.h"

/* Routing ---------------------------------------------------------------- */

int
http_route_method(const char *method)
{
	if (strcmp(method, "GET") == 0) return ROUTE_GET;
	if (strcmp(method, "HEAD") == 0) return ROUTE_HEAD;
	if (strcmp(method, "POST") == 0) return ROUTE_POST;
	if (strcmp(method, "PUT") == 0) return ROUTE_PUT;
	if (strcmp(method, "DELETE") == 0) return ROUTE_DELETE;
	return 0;
}

void
http_route_request(struct request *r, const char *url)
{
	const char *name = NULL;
	r->route = http_route_of(url, r->method == ROUTE_POST, &r->allowed, &name);
	if (name != NULL) {
		strcpy(r->name, name);
		r->script_item = 1;
	}
}

static void
prepare_not_allowed(struct request *r)
{
	const char *allow;
	switch (r->allowed) {
	case ROUTE_POST: allow = "POST"; break;
	case ROUTE_GET | ROUTE_HEAD: allow = "GET, HEAD"; break;
	default: allow = "GET, HEAD, PUT, POST, DELETE"; break;
	}
	http_request_prepare_problemf(r, "method_not_allowed", "%s does not take this method",
	    r->path);
	r->extra_header = MHD_HTTP_HEADER_ALLOW;
	r->extra_value = allow;
}

/* Auth ------------------------------------------------------------------- */

static int
needs_auth(struct http *http, const struct request *r)
{
	if (r->route == METRICS_ROUTE_HEALTHZ)
		return 0;
	if (r->route == METRICS_ROUTE_METRICS)
		return atomic_load(&http->metrics_auth);
	return 1;
}

static enum MHD_Result
see_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct request_headers *h = cls;
	if (http_framing_see(&h->framing, key, value))
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
		if (h->authorization == NULL)
			h->authorization = value;
	} else if (strcasecmp(key, "X-Request-Id") == 0) {
		if (h->request_id == NULL)
			h->request_id = value;
	} else if (strcasecmp(key, "traceparent") == 0) {
		if (h->traceparent == NULL)
			h->traceparent = value;
	}
	return MHD_YES;
}

void
http_route_scan_headers(struct request *r)
{
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, see_header, &r->headers);
}

static int
authorized(struct http *http, struct request *r)
{
	pthread_mutex_lock(&http->config_lock);
	int ok = 1;
	if (http->auth_token && needs_auth(http, r)) {
		const char *h = r->headers.authorization;
		ok = h && strncasecmp(h, "Bearer ", 7) == 0 && text_secret_equal(h + 7, http->auth_token);
	}
	pthread_mutex_unlock(&http->config_lock);
	return ok;
}

/* Decisions made from the headers alone, before any body is read. */
void
http_route_check_headers(struct http *http, struct request *r)
{
	if (http_limits_check_framing(r) == -1)
		return;
	if (r->route == METRICS_ROUTE_OTHER) {
		http_request_prepare_problemf(r, "not_found", "no resource at %s", r->path);
		return;
	}
	if (!(r->allowed & r->method)) {
		prepare_not_allowed(r);
		return;
	}
	if (!authorized(http, r)) {
		http_request_prepare_problem(r, "unauthorized",
		    "send Authorization: Bearer <token>", NULL);
		return;
	}
	if (atomic_load(&http->draining) && r->route != METRICS_ROUTE_HEALTHZ &&
	    r->route != METRICS_ROUTE_METRICS) {
		http_request_prepare_problem(r, "shutting_down", "the server is draining", NULL);
		r->close_connection = 1;
		return;
	}
	const char *cl = r->headers.framing.content_length;
	unsigned long long length = cl ? strtoull(cl, NULL, 10) : 0;
	if (length > r->body.limit)
		http_request_prepare_problemf(r, "payload_too_large",
		    "the body is larger than %zu bytes", r->body.limit);
	else if (length > 0)
		http_limits_reserve_body(r, (size_t)length);	/* 503 past the budget */
}
