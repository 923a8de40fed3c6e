/*
 * http_limits.c - what bounds the front end against slow and greedy
 * clients: the server-wide budget of request bytes held in memory
 * (max_inflight_bytes), the request framing checks that keep a proxy and
 * this server reading the same body, and the connection table.
 *
 * The table tracks every open connection with the time since which it
 * waits for a request (its accept, or the end of its previous request).
 * The whole request, headers and body, must arrive within
 * request_read_timeout_s of that time, however the client trickles it:
 * libmicrohttpd's own timeout counts inactivity only.  A late connection
 * is shut down (shutdown(2), never close: the socket stays libmicrohttpd's,
 * which then sees the end of input and closes it itself).  When every
 * slot is taken and another client waits in the listen backlog, the
 * connection idle the longest makes room, so /healthz stays answerable.
 * A connection whose request was read (a job may be running) is never
 * touched here.  A front's internal connection (front mode) has the same
 * read deadline, but never makes room: a client waits behind it.  This
 * file never queues a response.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/frame.h"
#include "common/log.h"
#include "http/http_internal.h"

#define SWEEP_INTERVAL_NS	(100 * 1000000LL)
#define LOG_INTERVAL_NS		(10 * 1000000000LL)

enum conn_state {
	CONN_WAITING,		/* for a request, or for the rest of its headers */
	CONN_READING,		/* its headers are read, its body is coming */
	CONN_RECEIVED		/* all read: served, or waiting for its job */
};

struct http_conn {
	struct http_conn *prev, *next;
	int fd;
	enum conn_state state;
	int64_t since_ns;	/* waiting for a request since */
	int closing;		/* shut down by a sweep */
	int internal;		/* a front's (http_forwarded.c): never makes room */
};

int
http_limits_init(struct http *http)
{
	memset(&http->conns, 0, sizeof(http->conns));
	return pthread_mutex_init(&http->conns.lock, NULL) == 0 ? 0 : -1;
}

void
http_limits_free(struct http *http)
{
	struct http_conn *c = http->conns.head;
	while (c) {
		struct http_conn *next = c->next;
		free(c);
		c = next;
	}
	pthread_mutex_destroy(&http->conns.lock);
}

void
http_limits_connection_opened(struct http *http, struct MHD_Connection *conn,
    void **socket_context)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	struct http_conn *c = info ? calloc(1, sizeof(*c)) : NULL;
	*socket_context = c;
	if (c == NULL)
		return;
	c->fd = info->connect_fd;
	c->internal = http_forwarded_is_internal(http, conn);
	c->state = CONN_WAITING;
	c->since_ns = frame_now_ns();
	struct http_conn_table *t = &http->conns;
	pthread_mutex_lock(&t->lock);
	c->next = t->head;
	if (t->head)
		t->head->prev = c;
	t->head = c;
	t->count++;
	pthread_mutex_unlock(&t->lock);
}

void
http_limits_connection_closed(struct http *http, void *socket_context)
{
	struct http_conn *c = socket_context;
	if (c == NULL)
		return;
	struct http_conn_table *t = &http->conns;
	pthread_mutex_lock(&t->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->count--;
	pthread_mutex_unlock(&t->lock);
	free(c);
}

static void
set_state(struct http *http, struct MHD_Connection *conn, enum conn_state state)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct http_conn *c = info ? info->socket_context : NULL;
	if (c == NULL)
		return;
	pthread_mutex_lock(&http->conns.lock);
	if (state == CONN_WAITING)
		c->since_ns = frame_now_ns();
	c->state = state;
	pthread_mutex_unlock(&http->conns.lock);
}

void
http_limits_request_started(struct http *http, struct MHD_Connection *conn)
{
	set_state(http, conn, CONN_READING);
}

void
http_limits_request_received(struct http *http, struct MHD_Connection *conn)
{
	set_state(http, conn, CONN_RECEIVED);
}

void
http_limits_request_ended(struct http *http, struct MHD_Connection *conn)
{
	set_state(http, conn, CONN_WAITING);
}

/* Whether a client waits in the listen backlog.  Not while draining: the
 * listening socket is closed then (and its number may be reused). */
static int
someone_waits_to_connect(struct http *http)
{
	if (atomic_load(&http->draining))
		return 0;
	int fd = http->listen_fd;	/* front mode's, ours */
	if (fd == -1) {
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon,
		    MHD_DAEMON_INFO_LISTEN_FD);
		if (info == NULL || info->listen_fd == MHD_INVALID_SOCKET)
			return 0;
		fd = info->listen_fd;
	}
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static void
shut(struct http_conn *c)
{
	shutdown(c->fd, SHUT_RDWR);
	c->closing = 1;
}

/* Under the lock. */
static void
log_full(struct http *http, int closed_one, int64_t now)
{
	struct http_conn_table *t = &http->conns;
	if (now - t->full_logged_ns < LOG_INTERVAL_NS)
		return;
	t->full_logged_ns = now;
	if (closed_one)
		log_warn("connection table full (max_connections = %u): closed the "
		    "connection idle the longest to let a new one in", http->opts.max_connections);
	else
		log_warn("connection table full (max_connections = %u) and every "
		    "connection is busy with a request: new ones wait", http->opts.max_connections);
}

void
http_limits_log_full(struct http *http, int closed_one)
{
	pthread_mutex_lock(&http->conns.lock);
	log_full(http, closed_one, frame_now_ns());
	pthread_mutex_unlock(&http->conns.lock);
}

/* In front mode the table is every client connection of the server. */
static int
table_full(struct http *http)
{
	unsigned n = http->fronts_conns ? http_fronts_conns_count(http) : http->conns.count;
	return n >= http->opts.max_connections;
}

int
http_limits_sweep(struct http *http)
{
	struct http_conn_table *t = &http->conns;
	int64_t now = frame_now_ns();
	pthread_mutex_lock(&t->lock);
	if (now < t->next_sweep_ns) {
		int ms = (int)((t->next_sweep_ns - now) / 1000000) + 1;
		pthread_mutex_unlock(&t->lock);
		return ms;
	}
	t->next_sweep_ns = now + SWEEP_INTERVAL_NS;
	unsigned timeout_s = atomic_load(&http->request_read_timeout_s);
	int64_t deadline = (int64_t)timeout_s * 1000000000LL;
	unsigned closed = 0;
	struct http_conn *idle = NULL;
	for (struct http_conn *c = t->head; c; c = c->next) {
		if (c->closing || c->state == CONN_RECEIVED)
			continue;
		if (now - c->since_ns >= deadline) {
			shut(c);
			closed++;
			continue;
		}
		if (c->state == CONN_WAITING && !c->internal &&
		    (idle == NULL || c->since_ns < idle->since_ns))
			idle = c;
	}
	/* Room for a waiting client: our own connection idle the longest,
	 * else (front mode) one a front holds, which it says (ROOM). */
	int ask_fronts = 0;
	if (closed == 0 && table_full(http) && someone_waits_to_connect(http)) {
		if (idle)
			shut(idle);
		if (idle || http->fronts == NULL)
			log_full(http, idle != NULL, now);
		else
			ask_fronts = 1;
	}
	t->closed_unlogged += closed;
	if (t->closed_unlogged && now - t->closed_logged_ns >= LOG_INTERVAL_NS) {
		log_warn("closed %u connection%s that did not send a whole request within %u s "
		    "(request_read_timeout_s)", t->closed_unlogged,
		    t->closed_unlogged == 1 ? "" : "s", timeout_s);
		t->closed_logged_ns = now;
		t->closed_unlogged = 0;
	}
	pthread_mutex_unlock(&t->lock);
	if (ask_fronts)
		http->room_wanted = 1;	/* the event loop asks them */
	return (int)(SWEEP_INTERVAL_NS / 1000000);
}

/* Framing ------------------------------------------------------------------ */

/* libmicrohttpd 0.9.75 takes the first Content-Length and lets
 * Transfer-Encoding win over it; a proxy in front may pick another: refuse
 * what two readers could frame differently (RFC 9112, 6.3). */
int
http_limits_check_framing(struct request *r)
{
	const char *why = http_framing_refusal(&r->headers.framing);
	if (why == NULL)
		return 0;
	http_request_prepare_problem(r, "invalid_request", why, NULL);
	return -1;
}

/* The budget ---------------------------------------------------------------- */

int
http_limits_charge(struct request *r, size_t n)
{
	struct http *http = r->http;
	size_t max = atomic_load(&http->max_inflight_bytes);
	size_t before = atomic_fetch_add(http_request_budget(r), n);
	if (before + n > max) {
		atomic_fetch_sub(http_request_budget(r), n);
		http_request_prepare_problemf(r, "overloaded", "the server holds as many request "
		    "bytes as it may (max_inflight_bytes = %zu); retry later", max);
		return -1;
	}
	r->charged += n;
	return 0;
}

/* Gives the body's memory and its charge back (a body refused midway). */
static void
release_body(struct request *r)
{
	atomic_fetch_sub(http_request_budget(r), r->body_charged);
	r->charged -= r->body_charged;
	r->body_charged = 0;
	buffer_free(&r->body);
}

static int
charge_body_growth(struct request *r)
{
	if (r->body.cap <= r->body_charged)
		return 0;
	if (http_limits_charge(r, r->body.cap - r->body_charged) == -1)
		return -1;
	r->body_charged = r->body.cap;
	return 0;
}

int
http_limits_reserve_body(struct request *r, size_t content_length)
{
	if (buffer_reserve_exact(&r->body, content_length) == -1) {
		http_request_prepare_problem(r, "overloaded", "out of memory for the body", NULL);
		return -1;
	}
	if (charge_body_growth(r) == -1) {
		buffer_free(&r->body);
		return -1;
	}
	return 0;
}

void
http_limits_take_upload(struct request *r, const char *data, size_t size)
{
	if (r->prepared)
		return;
	if (buffer_append(&r->body, data, size) == -1) {
		http_request_prepare_problemf(r, "payload_too_large",
		    "the body is larger than %zu bytes", r->body.limit);
		r->close_connection = 1;
		release_body(r);
		return;
	}
	r->in_bytes += size;
	if (charge_body_growth(r) == -1) {
		r->close_connection = 1;
		release_body(r);
	}
}
