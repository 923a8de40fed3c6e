/*
 * front_limits.c - the limits a front keeps itself, the same as the
 * supervisor's (http_limits.c) so that a client sees one server:
 * conflicting framing is refused before any body is read, the request
 * bytes a front holds are lent by the supervisor out of the server's one
 * max_inflight_bytes (a front keeps a little spare, so that small
 * requests do not ask each time), and a connection that takes longer than
 * request_read_timeout_s to send a whole request, or stays idle that long,
 * is closed.
 */
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/frame.h"
#include "common/log.h"
#include "http/front_internal.h"
#include "http/http_framing.h"

#define SWEEP_EVERY_NS (100 * 1000000LL)
#define LOG_EVERY_NS (10 * 1000000000LL)

static size_t held, lent, spare;
static int64_t read_timeout_ns, next_sweep_ns, logged_ns;
static unsigned closed_unlogged;

void
front_limits_init(size_t inflight_budget, unsigned read_timeout_s)
{
	held = 0;
	lent = 0;
	/* Enough for many small requests, a small part of the whole even
	 * with many fronts (at most 64, each keeping up to twice this). */
	spare = inflight_budget / 256 < 1024 * 1024 ? inflight_budget / 256 : 1024 * 1024;
	read_timeout_ns = (int64_t)read_timeout_s * 1000000000;
}

static enum MHD_Result
look_at_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	if (key != NULL && value != NULL)
		http_framing_see(cls, key, value);
	return MHD_YES;
}

const char *
front_limits_framing(struct MHD_Connection *mhd)
{
	struct http_framing f = { 0 };
	MHD_get_connection_values(mhd, MHD_HEADER_KIND, look_at_framing, &f);
	return http_framing_refusal(&f);
}

int
front_limits_charge(size_t n)
{
	if (held + n > lent) {
		size_t need = held + n - lent;
		size_t got = front_control_borrow(need, need + spare);
		lent += got;
		if (got < need)
			return -1;
	}
	held += n;
	return 0;
}

void
front_limits_release(size_t n)
{
	held -= n < held ? n : held;
	if (lent > held + 2 * spare) {
		size_t back = (lent - held - spare) / 1024 * 1024;
		if (front_control_return(back) == 0)
			lent -= back;
	}
}

void
front_limits_wait_for_request(struct front_conn *c)
{
	c->read_deadline_ns = frame_now_ns() + read_timeout_ns;
}

void
front_limits_request_received(struct front_conn *c)
{
	c->read_deadline_ns = 0;
}

void
front_limits_sweep(struct front_conn *head)
{
	int64_t now = frame_now_ns();
	if (now < next_sweep_ns)
		return;
	next_sweep_ns = now + SWEEP_EVERY_NS;
	for (struct front_conn *c = head; c != NULL; c = c->next)
		if (c->read_deadline_ns && now > c->read_deadline_ns && c->fd >= 0 &&
		    c->state != FRONT_HANDED) {
			/* libmicrohttpd sees the socket fail and closes it. */
			shutdown(c->fd, SHUT_RDWR);
			c->read_deadline_ns = 0;
			closed_unlogged++;
		}
	/* The supervisor's words, so one grep finds both. */
	if (closed_unlogged && now - logged_ns >= LOG_EVERY_NS) {
		log_warn("closed %u connection%s that did not send a whole request within %lld s "
		    "(request_read_timeout_s)", closed_unlogged, closed_unlogged == 1 ? "" : "s",
		    (long long)(read_timeout_ns / 1000000000));
		logged_ns = now;
		closed_unlogged = 0;
	}
}
