/*
 * http_log.c - the front end's log lines: one access-log line per request,
 * and libmicrohttpd's own messages.  The path comes from the client,
 * decoded: log.c escapes control bytes, backslashes and invalid UTF-8 in
 * every message, and this file re-encodes the space and '%' so that a path
 * is always one field of the line.  Never logs a body, nor a header but
 * the two that identify a request (X-Request-Id and traceparent, both
 * checked to be visible ASCII of a bounded length by http_request_id.c)
 * and, on a front's internal connection, the client's address the front
 * forwarded (checked and written anew by http_fronts.c).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/front_proto.h"
#include "http/http_internal.h"

#define MHD_WARN_INTERVAL_NS	(10 * 1000000000LL)

static const char *
method_name(int bit)
{
	switch (bit) {
	case ROUTE_GET: return "GET";
	case ROUTE_HEAD: return "HEAD";
	case ROUTE_POST: return "POST";
	case ROUTE_PUT: return "PUT";
	case ROUTE_DELETE: return "DELETE";
	}
	return "OTHER";
}

/* path with ' ' and '%' as %20 and %25 (out has room for 3 x path). */
static void
path_field(char *out, size_t cap, const char *path)
{
	size_t n = 0;
	for (const char *p = path; *p && n + 4 <= cap; p++) {
		if (*p == ' ' || *p == '%') {
			snprintf(out + n, cap - n, "%%%02X", (unsigned char)*p);
			n += 3;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

void
http_log_access(const struct http_access *a)
{
	char path[3 * (FRONT_ACCESS_PATH_MAX + 160) + 1], name[3 * (SCRIPTS_NAME_MAX + 1) + 1];
	path_field(path, sizeof(path), a->path);
	/* The name is the decoded URL tail, checked only later: one field too. */
	path_field(name, sizeof(name), a->script ? a->script : "-");
	char timing[64] = "queue=- run=-";
	if (a->job)
		snprintf(timing, sizeof(timing), "queue=%.3f run=%.3f", a->queued_ms, a->run_ms);
	const char *tp = a->traceparent ? a->traceparent : "", *client = a->client ? a->client : "";
	log_info("%s %s %d %.3f ms worker=%d in=%zu out=%zu id=%s script=%s code=%s %s%s%s%s%s%s",
	    a->method, path, a->status, a->seconds * 1e3, a->worker_pid, a->in_bytes,
	    a->out_bytes, a->request_id, name, a->code ? a->code : "-", timing,
	    tp[0] ? " traceparent=" : "", tp, client[0] ? " client=" : "", client,
	    a->aborted ? " (aborted)" : "");
}

void
http_log_request(const struct request *r, int status, double seconds, int aborted)
{
	struct http_access a = {
		.method = method_name(r->method), .path = r->path, .status = status,
		.seconds = seconds, .worker_pid = r->worker_pid, .in_bytes = r->in_bytes,
		.out_bytes = r->resp_len, .request_id = r->request_id,
		.script = r->script_item ? r->name : NULL,
		.code = r->problem_code[0] ? r->problem_code : NULL, .job = r->job_answered,
		.queued_ms = r->queued_ms, .run_ms = r->run_ms, .traceparent = r->traceparent,
		.client = r->client, .aborted = aborted,
	};
	http_log_access(&a);
}

void
http_log_mhd(void *cls, const char *fmt, va_list ap)
{
	static atomic_llong warned_ns;
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	/* At max_connections MHD stops accepting, so this is mostly the
	 * per-address limit refusing a connection. */
	if (strstr(line, "connection limit") == NULL) {
		log_debug("libmicrohttpd: %s", line);
		return;
	}
	int64_t now = frame_now_ns(), last = atomic_load(&warned_ns);
	if ((last == 0 || now - last >= MHD_WARN_INTERVAL_NS) &&
	    atomic_compare_exchange_strong(&warned_ns, &last, now))
		log_warn("libmicrohttpd: %s (max_connections_per_ip or max_connections); "
		    "such refusals are logged once every 10 s", line);
}
