/*
 * front_answer.c - the answers a front writes itself (a lane job's, and
 * the few problems it gives before any hand-off), the request ids they
 * carry, and the observations it reports to the supervisor for /metrics.
 * An answer that came from the supervisor is queued as it came.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/frame.h"
#include "common/front_proto.h"
#include "common/log.h"
#include "common/text.h"
#include "daemon/metrics.h"
#include "http/front_internal.h"
#include "http/http_route_of.h"
#include "http/problem.h"

#define STATS_EVERY_NS		(100 * 1000000LL)

static struct {
	uint64_t id_seed, id_count;
	struct front_observation obs[FRONT_OBSERVATIONS_MAX];
	unsigned nobs;
	int64_t obs_sent_ns;
	/* access_log: records waiting, after their message header */
	int access_log;
	uint32_t pid;
	char access[FRONT_PACKET_MAX];
	size_t access_len;
	unsigned naccess;
	int closing;		/* draining: every answer closes its connection */
} A;

void
front_answer_init(uint64_t id_seed, int access_log)
{
	A.id_seed = id_seed;
	A.access_log = access_log;
	A.pid = (uint32_t)getpid();
	A.access_len = sizeof(struct front_msg);
}

int
front_answer_stats_due(void)
{
	return (A.nobs || A.naccess) && frame_now_ns() - A.obs_sent_ns > STATS_EVERY_NS;
}

static void
send_access(void)
{
	if (A.naccess == 0)
		return;
	struct front_msg m = { .type = FRONT_MSG_ACCESS, .count = A.naccess };
	memcpy(A.access, &m, sizeof(m));
	if (send(FRONT_CONTROL_FD, A.access, A.access_len, MSG_NOSIGNAL) == -1)
		log_debug("access records to the supervisor: %s", strerror(errno));
	A.naccess = 0;
	A.access_len = sizeof(m);
}

static size_t
cut(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	return n < max ? n : max;
}

/* The access-log record of an answer this front wrote (the supervisor
 * writes the line). */
static void
record_access(const struct front_req *req, size_t out_bytes)
{
	const char *tp = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, "traceparent");
	const char *path = req->url ? req->url : "-";
	const char *client = req->conn ? req->conn->client : "";
	struct front_access r = {
		.pid = A.pid, .status = (uint16_t)req->status,
		.method_len = (uint8_t)cut(req->method, FRONT_ACCESS_TEXT_MAX),
		.id_len = (uint8_t)cut(req->request_id, FRONT_ACCESS_TEXT_MAX),
		.traceparent_len = (uint8_t)cut(tp, FRONT_ACCESS_TEXT_MAX),
		.client_len = (uint8_t)cut(client, FRONT_ACCESS_TEXT_MAX),
		.path_len = (uint16_t)cut(path, FRONT_ACCESS_PATH_MAX),
		.in_bytes = (uint32_t)req->body.len, .out_bytes = (uint32_t)out_bytes,
		.ms = (float)((frame_now_ns() - req->start_ns) / 1e6),
		.run_ms = req->run_ms >= 0 ? (float)req->run_ms : -1.0f,
	};
	size_t need = sizeof(r) + r.method_len + r.path_len + r.id_len + r.traceparent_len +
	    r.client_len;
	if (A.access_len + need > sizeof(A.access))
		send_access();
	char *at = A.access + A.access_len;
	memcpy(at, &r, sizeof(r));
	at += sizeof(r);
	memcpy(at, req->method, r.method_len);
	at += r.method_len;
	memcpy(at, path, r.path_len);
	at += r.path_len;
	memcpy(at, req->request_id, r.id_len);
	at += r.id_len;
	if (r.traceparent_len)
		memcpy(at, tp, r.traceparent_len);
	at += r.traceparent_len;
	if (r.client_len)
		memcpy(at, client, r.client_len);
	A.access_len += need;
	A.naccess++;
}

/* Observations --------------------------------------------------------- */

void
front_answer_send_stats(void)
{
	send_access();
	if (A.nobs == 0)
		return;
	char packet[FRONT_PACKET_MAX];
	struct front_msg m = { .type = FRONT_MSG_STATS, .count = A.nobs };
	memcpy(packet, &m, sizeof(m));
	memcpy(packet + sizeof(m), A.obs, A.nobs * sizeof(A.obs[0]));
	if (send(FRONT_CONTROL_FD, packet, sizeof(m) + A.nobs * sizeof(A.obs[0]),
	    MSG_NOSIGNAL) == -1)
		log_debug("stats to the supervisor: %s", strerror(errno));
	A.nobs = 0;
	A.obs_sent_ns = frame_now_ns();
}

static void
observe(enum metrics_route route, unsigned status, const struct front_req *req,
    size_t out_bytes)
{
	if (A.access_log)
		record_access(req, out_bytes);
	struct front_observation *o = &A.obs[A.nobs++];
	o->route = (uint16_t)route;
	o->status = (uint16_t)status;
	o->seconds = (float)((frame_now_ns() - req->start_ns) / 1e9);
	o->run_seconds = req->run_ms >= 0 ? (float)(req->run_ms / 1000.0) : -1.0f;
	if (A.nobs == FRONT_OBSERVATIONS_MAX)
		front_answer_send_stats();
}

static void
take_request_id(struct front_req *req)
{
	const char *given = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, "X-Request-Id");
	if (given != NULL && text_is_visible(given, sizeof(req->request_id) - 1)) {
		memcpy(req->request_id, given, strlen(given) + 1);
		return;
	}
	uint64_t id = text_mix64(A.id_seed + A.id_count++);
	for (int i = 15; i >= 0; i--, id >>= 4)
		req->request_id[i] = text_hex_digits[id & 15];
	req->request_id[16] = '\0';
}

/* A problem the front answers itself (the body too large, the supervisor
 * unreachable): the same body the supervisor would give. */
void
front_answer_problem(struct front_req *req, const char *code, const char *detail)
{
	size_t len = 0;
	const struct problem_job_parts none = { 0 };
	char *body = problem_body_for_job(code, detail, &none, &len);
	char *grown = body ? realloc(body, len + 2 * sizeof(req->request_id) + 20) : NULL;
	if (grown == NULL) {
		free(body);
		req->resp_body = NULL;
		req->resp_len = 0;
	} else {
		take_request_id(req);
		len--;	/* the closing brace */
		len += (size_t)sprintf(grown + len, ",\"request_id\":\"");
		for (const char *p = req->request_id; *p; p++) {
			if (*p == '"' || *p == '\\')
				grown[len++] = '\\';
			grown[len++] = *p;
		}
		len += (size_t)sprintf(grown + len, "\"}");
		req->resp_body = grown;
		req->resp_len = len;
	}
	buffer_reset(&req->resp_headers);
	buffer_append(&req->resp_headers, "Content-Type\0application/problem+json", 38);
	buffer_append(&req->resp_headers, "X-Request-Id", 13);
	buffer_append(&req->resp_headers, req->request_id, strlen(req->request_id) + 1);
	if (strcmp(code, "overloaded") == 0 || strcmp(code, "shutting_down") == 0)
		buffer_append(&req->resp_headers, "Retry-After\0" "1", 14);
	req->status = (unsigned)problem_status(code);
	req->ready = 1;
	req->run_ms = -1;
	int allowed;
	const char *name;
	observe(req->url ? http_route_of(req->url, strcmp(req->method, "POST") == 0, &allowed,
	    &name) : METRICS_ROUTE_OTHER, req->status, req, req->resp_len);
}

/* While the front drains, a client's next request goes to a front that
 * stays (a keep-alive client would keep this one from ever finishing). */
static enum MHD_Result
queue(struct front_req *req, struct MHD_Response *resp)
{
	if (A.closing && MHD_get_response_header(resp, MHD_HTTP_HEADER_CONNECTION) == NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(req->mhd, req->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A lane answer: copied once, by libmicrohttpd, from the lane's buffer. */
static enum MHD_Result
queue_lane_answer(struct front_req *req)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(req->lane_body->len,
	    req->lane_body->data, MHD_RESPMEM_MUST_COPY);
	req->lane_body = NULL;
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, "X-Request-Id", req->request_id);
	MHD_add_response_header(resp, "Server-Timing", req->timing);
	return queue(req, resp);
}

enum MHD_Result
front_answer_queue(struct front_req *req)
{
	if (req->lane_body != NULL)
		return queue_lane_answer(req);
	struct MHD_Response *resp = MHD_create_response_from_buffer(req->resp_len,
	    req->resp_body ? req->resp_body : (void *)(uintptr_t)"", req->resp_body ?
	    MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	req->resp_body = NULL;
	const char *p = req->resp_headers.data, *end = p + req->resp_headers.len;
	while (p != NULL && p < end) {
		const char *value = p + strlen(p) + 1;
		if (value >= end)
			break;
		MHD_add_response_header(resp, p, value);
		p = value + strlen(value) + 1;
	}
	return queue(req, resp);
}

void
front_answer_close_connections(void)
{
	A.closing = 1;
}

void
front_answer_ok(struct front_req *req, const struct buffer *body, double run_ms)
{
	req->lane_body = body;
	take_request_id(req);
	memcpy(req->timing, "queue;dur=0.000, run;dur=", 25);
	*text_put_milliseconds(req->timing + 25, run_ms) = '\0';
	req->status = 200;
	req->run_ms = run_ms;
	req->ready = 1;
	observe(METRICS_ROUTE_EXEC, 200, req, body->len);
}
