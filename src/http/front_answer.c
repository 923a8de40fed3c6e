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
} A;

void
front_answer_init(uint64_t id_seed)
{
	A.id_seed = id_seed;
}

int
front_answer_stats_due(void)
{
	return A.nobs && frame_now_ns() - A.obs_sent_ns > STATS_EVERY_NS;
}

/* Observations --------------------------------------------------------- */

void
front_answer_send_stats(void)
{
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
observe(enum metrics_route route, unsigned status, const struct front_req *req)
{
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
	    &name) : METRICS_ROUTE_OTHER, req->status, req);
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
	enum MHD_Result ret = MHD_queue_response(req->mhd, req->status, resp);
	MHD_destroy_response(resp);
	return ret;
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
	enum MHD_Result ret = MHD_queue_response(req->mhd, req->status, resp);
	MHD_destroy_response(resp);
	return ret;
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
	observe(METRICS_ROUTE_EXEC, 200, req);
}
