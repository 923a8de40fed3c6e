/*
 * http_usage.c - what a job cost, told to the client and the operator:
 * the timings behind Server-Timing and the access log, the slow-job log
 * line, and the "usage" object added to a result when the request asked
 * for it ("usage": true).
 *
 * The worker's body is never parsed: "usage" is spliced before its final
 * '}' (the body is a JSON object the worker wrote), and every number in it
 * is formatted here from the pool's reply, which bounds what the worker
 * reported.  Nothing here costs anything when usage was not asked for: the
 * body is then copied as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http/http_internal.h"

#define USAGE_TEXT_MAX 160

void
http_usage_note(struct request *r, const struct luapool_reply *reply)
{
	r->job_answered = 1;
	r->queued_ms = reply->queued_ms;
	r->run_ms = reply->run_ms;
	if (reply->worker_pid != 0 || reply->status == LUAPOOL_E_DEADLINE)
		metrics_observe_job(reply->queued_ms / 1e3, reply->run_ms / 1e3);
	unsigned slow_ms = atomic_load_explicit(&r->http->slow_job_ms, memory_order_relaxed);
	if (slow_ms && reply->queued_ms + reply->run_ms > slow_ms)
		log_warn("slow job: %s %s queue=%.3f ms run=%.3f ms status=%s worker=%d id=%s",
		    metrics_route_name(r->route), r->script_item ? r->name : "-",
		    reply->queued_ms, reply->run_ms, luapool_status_code(reply->status),
		    reply->worker_pid, r->request_id);
}

/* Where "usage" goes: the offset of the body's final '}', or 0 when the
 * body is no JSON object (a worker that misbehaves: then no usage). */
static size_t
closing_brace(const char *body, size_t len)
{
	while (len > 0 && (body[len - 1] == ' ' || body[len - 1] == '\n' ||
	    body[len - 1] == '\r' || body[len - 1] == '\t'))
		len--;
	if (len < 2 || body[0] != '{' || body[len - 1] != '}')
		return 0;
	return len - 1;
}

char *
http_usage_body(const struct request *r, const struct luapool_reply *reply, size_t *len)
{
	char usage[USAGE_TEXT_MAX];
	size_t usage_len = 0, keep = reply->body_len;
	int add = reply->usage_requested && (r->route == METRICS_ROUTE_EXEC ||
	    r->route == METRICS_ROUTE_SCRIPT_RUN);
	if (add && (keep = closing_brace(reply->body, reply->body_len)) > 0) {
		int n = snprintf(usage, sizeof(usage), "%s\"usage\":{\"queued_ms\":%.3f,"
		    "\"run_ms\":%.3f,\"cpu_ms\":%.3f,\"heap_peak_bytes\":%zu,\"cache\":\"%s\"}}",
		    keep > 1 ? "," : "", reply->queued_ms, reply->run_ms, reply->cpu_ms,
		    reply->heap_peak_bytes, reply->cache ? reply->cache : "miss");
		usage_len = n > 0 && (size_t)n < sizeof(usage) ? (size_t)n : 0;
	}
	if (usage_len == 0)
		keep = reply->body_len;
	char *body = malloc(keep + usage_len + 1);
	if (body == NULL)
		return NULL;
	memcpy(body, reply->body, keep);
	memcpy(body + keep, usage, usage_len);
	body[keep + usage_len] = '\0';
	*len = keep + usage_len;
	return body;
}
