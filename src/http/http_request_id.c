/*
 * http_request_id.c - the request's identity for logs and answers: the
 * client's X-Request-Id when it is usable, else one generated here, and
 * the W3C traceparent, kept only when well formed.  Both come from the
 * client: only visible ASCII of a bounded length is ever kept, so an id
 * is one field of a log line and needs no escaping but '"' and '\' in
 * JSON.  Generating costs no system call: a counter mixed with a seed
 * drawn once at start.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/text.h"
#include "http/http_internal.h"

#define TRACEPARENT_LEN 55	/* 00-<32 hex>-<16 hex>-<2 hex> */


void
http_request_id_seed(struct http *http)
{
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}
	http->request_id_seed = seed;
	atomic_init(&http->request_id_counter, 0);
}

static int
is_lower_hex(const char *s, size_t n, int nonzero)
{
	int any = 0;
	for (size_t i = 0; i < n; i++) {
		if (strchr(text_hex_digits, s[i]) == NULL || s[i] == '\0')
			return 0;
		any |= s[i] != '0';
	}
	return any || !nonzero;
}

/* version-traceid-parentid-flags, lower-case hex, no all-zero ids, version
 * ff invalid; a later version may append "-..." after the 55 bytes. */
static int
is_valid_traceparent(const char *tp)
{
	size_t len = strnlen(tp, 512);
	if (len < TRACEPARENT_LEN || (len > TRACEPARENT_LEN && tp[TRACEPARENT_LEN] != '-'))
		return 0;
	if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return 0;
	if (!is_lower_hex(tp, 2, 0) || memcmp(tp, "ff", 2) == 0 ||
	    (len > TRACEPARENT_LEN && memcmp(tp, "00", 2) == 0))
		return 0;
	return is_lower_hex(tp + 3, 32, 1) && is_lower_hex(tp + 36, 16, 1) &&
	    is_lower_hex(tp + 53, 2, 0);
}

int
http_request_id_clean_traceparent(char *tp)
{
	if (!is_valid_traceparent(tp))
		return 0;
	tp[TRACEPARENT_LEN] = '\0';
	return 1;
}

void
http_request_id_take(struct request *r)
{
	const char *given = r->headers.request_id;
	if (given != NULL && text_is_visible(given, HTTP_REQUEST_ID_MAX)) {
		memcpy(r->request_id, given, strlen(given) + 1);
	} else {
		uint64_t n = atomic_fetch_add_explicit(&r->http->request_id_counter, 1,
		    memory_order_relaxed);
		uint64_t id = text_mix64(r->http->request_id_seed + n);
		for (int i = 15; i >= 0; i--, id >>= 4)
			r->request_id[i] = text_hex_digits[id & 15];
		r->request_id[16] = '\0';
	}
	const char *tp = r->headers.traceparent;
	if (tp != NULL && is_valid_traceparent(tp)) {
		memcpy(r->traceparent, tp, TRACEPARENT_LEN);
		r->traceparent[TRACEPARENT_LEN] = '\0';
	}
}

size_t
http_request_id_json(const char *id, char *out, size_t cap)
{
	size_t n = 0;
	for (; *id != '\0' && n + 3 <= cap; id++) {
		if (*id == '"' || *id == '\\')
			out[n++] = '\\';
		out[n++] = *id;
	}
	out[n] = '\0';
	return n;
}
