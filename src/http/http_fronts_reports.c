/*
 * http_fronts_reports.c - what fronts report of the answers they wrote
 * themselves (front_proto.h): observations for /metrics, and access-log
 * records.  A front may be taken over: every count, length and field is
 * checked, and the access line is written here from the fields that pass
 * (the same line as for a request this process answered, so one grep
 * finds both).
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "common/front_proto.h"
#include "common/text.h"
#include "daemon/metrics.h"
#include "http/http_internal.h"

int
http_fronts_take_stats(const unsigned char *payload, size_t len, uint32_t count)
{
	if (count > FRONT_OBSERVATIONS_MAX || len != count * sizeof(struct front_observation))
		return -1;
	int skipped = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct front_observation o;
		memcpy(&o, payload + i * sizeof(o), sizeof(o));
		double s = o.seconds, run = o.run_seconds;
		if (o.route >= METRICS_ROUTE_COUNT || o.status < 100 || o.status > 599 ||
		    !isfinite(s) || s < 0 || s > 1e6 || isnan(run) || run > 1e6) {
			skipped++;
			continue;
		}
		metrics_observe((enum metrics_route)o.route, o.status, s);
		if (run >= 0)
			metrics_observe_job(0, run);
	}
	return skipped;
}

/* text (len bytes, no NUL) into out as a C string, if every byte is
 * visible ASCII (any_byte: any but NUL, for a path, which the access log
 * escapes): 1, else 0.  An empty text is fine (out ""). */
static int
take_text(const unsigned char *text, size_t len, char *out, size_t cap, int any_byte)
{
	if (len >= cap)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (any_byte ? text[i] == 0 : text[i] < 0x21 || text[i] > 0x7e)
			return 0;
	memcpy(out, text, len);
	out[len] = '\0';
	return 1;
}

/* One record at *at: 1 logged, 0 invalid (skipped), -1 cannot go on. */
static int
take_record(const unsigned char *payload, size_t len, size_t *at)
{
	struct front_access r;
	if (len - *at < sizeof(r))
		return -1;
	memcpy(&r, payload + *at, sizeof(r));
	size_t texts = (size_t)r.method_len + r.path_len + r.id_len + r.traceparent_len +
	    r.client_len;
	if (len - *at - sizeof(r) < texts)
		return -1;
	const unsigned char *t = payload + *at + sizeof(r);
	*at += sizeof(r) + texts;
	char method[FRONT_ACCESS_TEXT_MAX + 1], path[FRONT_ACCESS_PATH_MAX + 1];
	char id[FRONT_ACCESS_TEXT_MAX + 1], tp[FRONT_ACCESS_TEXT_MAX + 1];
	char client[FRONT_ACCESS_TEXT_MAX + 1], canon[INET6_ADDRSTRLEN] = "";
	unsigned char addr[sizeof(struct in6_addr)];
	double ms = r.ms, run = r.run_ms;
	/* A client's traceparent that is not one is left out, as here. */
	if (!take_text(t + r.method_len + r.path_len + r.id_len, r.traceparent_len, tp,
	    sizeof(tp), 0))
		tp[0] = '\0';
	if (!take_text(t, r.method_len, method, sizeof(method), 0) ||
	    !take_text(t + r.method_len, r.path_len, path, sizeof(path), 1) ||
	    !take_text(t + r.method_len + r.path_len, r.id_len, id, sizeof(id), 0) ||
	    !take_text(t + texts - r.client_len, r.client_len, client, sizeof(client), 0) ||
	    method[0] == '\0' || id[0] == '\0' || r.status < 100 || r.status > 599 ||
	    !isfinite(ms) || ms < 0 || ms > 1e9 || isnan(run) || run > 1e9)
		return 0;
	if (client[0] != '\0') {
		int family = strchr(client, ':') ? AF_INET6 : AF_INET;
		if (inet_pton(family, client, addr) != 1 ||
		    inet_ntop(family, addr, canon, sizeof(canon)) == NULL)
			canon[0] = '\0';
	}
	struct http_access a = {
		.method = method, .path = path, .status = r.status, .seconds = ms / 1e3,
		.worker_pid = (int)(r.pid & 0x7fffffff), .in_bytes = r.in_bytes,
		.out_bytes = r.out_bytes, .request_id = id, .job = run >= 0, .queued_ms = 0,
		.run_ms = run >= 0 ? run : 0,
		.traceparent = http_request_id_clean_traceparent(tp) ? tp : NULL, .client = canon,
	};
	http_log_access(&a);
	return 1;
}

int
http_fronts_take_access(const unsigned char *payload, size_t len, uint32_t count)
{
	size_t at = 0;
	int skipped = 0;
	for (uint32_t i = 0; i < count; i++) {
		int rc = take_record(payload, len, &at);
		if (rc == -1)
			return -1;
		skipped += rc == 0;
	}
	return at == len ? skipped : -1;
}
