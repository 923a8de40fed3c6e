/*
 * front.c - the HTTP server of a front process (see front.h): one
 * libmicrohttpd daemon in external epoll mode, without a listening socket
 * (the supervisor deals it connections), one thread, no pool of its own.
 *
 * POST /v1/exec of a chunk known to be short (front_set.c) and plainly
 * acceptable (authorized, no "usage", bytecode not signed) runs here, in
 * the lane (vm/lane.h): one process, no hop.  The lane decodes the request
 * first, which names its chunk; a chunk not known to be short is dropped
 * there and handed on (the decoding is lost: only for the runs that teach
 * front_set.c, and for jobs long enough not to mind).  Everything else, and any
 * lane job that fails or reaches the lane's limit, is handed to the
 * supervisor as HTTP (front_forward.c), whose answer goes back to the
 * client as it came; its Server-Timing teaches front_set.c which chunks
 * are short.  Errors are therefore always explained by the supervisor.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/frame.h"
#include "common/front_proto.h"
#include "common/log.h"
#include "common/text.h"
#include "http/front.h"
#include "http/front_internal.h"
#include "http/http_options.h"
#include "vm/lane.h"

/* Below the supervisor's SIGKILL of a retired front (30 s, fronts.c), so
 * that what a front holds is always handed over first. */
#define DRAIN_MAX_NS		(25 * 1000000000LL)
#define LOOP_TICK_MS		100
/* libmicrohttpd clears a connection's memory pool for every request: 16
 * KiB holds any request head the supervisor would take (its 64 KiB also
 * buffer bodies, which a front copies out as they come). */
#define FRONT_CONNECTION_MEMORY	(16 * 1024)
#define OVER_BUDGET	"the server holds as many request bytes as it may " \
			"(max_inflight_bytes); retry later"

static struct {
	struct MHD_Daemon *daemon;
	struct vm *vm;
	struct front_options o;
	int epfd;
	struct front_conn *conns;
	unsigned in_flight;		/* requests begun and not completed */
	struct vm_outcome out;
	int resumed;			/* run MHD again before sleeping */
	int retire;			/* the VM must be replaced: drain, exit */
	int shutting_down;		/* the server drains: no lane, hand all on */
} F;

static volatile sig_atomic_t stop_asked;
static char mhd_tag, control_tag;	/* epoll data of the fixed sources */

/* Requests ------------------------------------------------------------- */

static struct front_req *
req_new(struct MHD_Connection *mhd, const char *method)
{
	struct front_req *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return NULL;
	req->mhd = mhd;
	req->fd = -1;
	req->run_ms = -1;
	req->start_ns = frame_now_ns();
	snprintf(req->method, sizeof(req->method), "%s", method);
	buffer_init(&req->body, F.o.max_body_bytes);
	buffer_init(&req->head, 0);
	buffer_init(&req->in, 0);
	buffer_init(&req->resp_headers, 0);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mhd,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	req->conn = ci ? ci->socket_context : NULL;
	return req;
}

static void
req_free(struct front_req *req)
{
	front_limits_release(req->charged);
	front_forward_end(req, F.epfd);
	buffer_free(&req->body);
	buffer_free(&req->head);
	buffer_free(&req->in);
	buffer_free(&req->resp_headers);
	free(req->resp_body);
	free(req);
}

/* The lane ------------------------------------------------------------- */

static int
authorized(const struct front_req *req)
{
	if (F.o.auth_token == NULL || F.o.auth_token[0] == '\0')
		return 1;
	const char *h = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, "Authorization");
	return h && strncasecmp(h, "Bearer ", 7) == 0 && text_secret_equal(h + 7, F.o.auth_token);
}

/* Runs req in the lane (lane_load done): answered, or its head is ready
 * to hand it on with the time it has left. */
static void
run_in_lane(struct front_req *req, const char *url)
{
	/* A hard stop replays it, writing its head from what libmicrohttpd
	 * holds (front_forward.c): nothing is built for that here. */
	req->url = url;
	req->conn->req = req;
	req->conn->state = FRONT_HANDED;
	int64_t run_ns = 0;
	int not_for_lane = 0;
	req->deadline_ns = lane_deadline_ns();
	enum lane_verdict v = lane_run_loaded(F.vm, &F.out, &run_ns, &not_for_lane);
	req->conn->state = FRONT_READING;
	req->conn->req = NULL;
	if (F.out.replace != VM_REPLACE_NO || F.out.heap_high)
		F.retire = 1;
	double run_ms = run_ns / 1e6;
	if (not_for_lane)
		front_set_demote(req->digest);
	else if (run_ns > 0 && !F.out.soft_stopped)
		front_set_observe(req->digest, run_ms);
	if (v == LANE_ANSWERED) {
		front_answer_ok(req, &F.out.body, run_ms);
		return;
	}
	/* On to the pool with the time it has left. */
	if (front_forward_build_head(req, url, 1) == 0)
		front_forward_set_deadline(req, req->deadline_ns, frame_now_ns());
}

/* A /v1/exec the lane may take: decoded here (which also names its
 * chunk), run here when the chunk is known to be short. */
static void
try_lane(struct front_req *req, const char *url)
{
	if (lane_load(F.vm, req->body.data, req->body.len, req->start_ns, &F.out,
	    req->digest) == -1) {
		if (F.out.replace != VM_REPLACE_NO)
			F.retire = 1;
		return;		/* the supervisor explains */
	}
	req->eligible = 1;
	if (front_set_is_short(req->digest))
		run_in_lane(req, url);
	else
		lane_unload(F.vm);
}

/* The hand-off ---------------------------------------------------------- */

static void
hand_off(struct front_req *req, const char *url)
{
	if (req->head.len == 0 && front_forward_build_head(req, url, 0) == -1) {
		front_answer_problem(req, "internal_error", "out of memory");
		return;
	}
	if (front_forward_start(req, F.epfd) == -1) {
		front_answer_problem(req, "internal_error", "the supervisor cannot be reached");
		return;
	}
	req->conn->req = req;
	req->conn->state = FRONT_HANDED;
	MHD_suspend_connection(req->mhd);
	req->suspended = 1;
}

/* What the pool's answer says of the chunk: its run time, except that a
 * job stopped at its deadline (504; a hard stop reports no run time) or
 * one whose worker died (5xx) is long whatever the numbers say. */
static void
learn_from_pool(struct front_req *req)
{
	if (req->status >= 500)
		front_set_observe(req->digest, (double)F.o.fast_lane_ms);
	else if (req->run_ms >= 0)
		front_set_observe(req->digest, req->run_ms);
}

static void
on_handoff_ready(struct front_req *req)
{
	int rc = front_forward_io(req, F.epfd);
	if (rc == 0)
		return;
	front_forward_end(req, F.epfd);
	req->conn->state = FRONT_READING;
	req->conn->req = NULL;
	if (rc == -1)
		front_answer_problem(req, "internal_error", "the supervisor gave no answer");
	else if (req->eligible)
		learn_from_pool(req);
	if (req->suspended) {
		req->suspended = 0;
		MHD_resume_connection(req->mhd);
		F.resumed = 1;
	}
}

static void
handle(struct front_req *req, const char *url)
{
	if (req->too_large) {
		char detail[64];
		snprintf(detail, sizeof(detail), "the body is larger than %zu bytes",
		    F.o.max_body_bytes);
		if (req->over_budget)	/* a chunked body, as the supervisor says it */
			front_answer_problem(req, "overloaded", OVER_BUDGET);
		else
			front_answer_problem(req, "payload_too_large", detail);
		buffer_append(&req->resp_headers, "Connection\0close", 17);
		return;
	}
	/* The decoder wants the text NUL-terminated: a buffer always keeps a
	 * spare byte past its length. */
	if (req->body.data != NULL)
		req->body.data[req->body.len] = '\0';
	/* Not while the server drains, nor on a VM that must be replaced. */
	if (!F.shutting_down && !F.retire && strcmp(req->method, "POST") == 0 &&
	    strcmp(url, "/v1/exec") == 0 &&
	    F.o.bytecode_mode != HTTP_BYTECODE_SIGNED && req->body.len > 0 && authorized(req)) {
		try_lane(req, url);
		if (req->ready)
			return;
	}
	hand_off(req, url);
}

/* libmicrohttpd callbacks ------------------------------------------------ */

static enum MHD_Result
refuse_early(struct front_req *req, const char *code, const char *detail)
{
	front_answer_problem(req, code, detail);
	/* The body was not read: the connection cannot carry another request. */
	buffer_append(&req->resp_headers, "Connection\0close", 17);
	return front_answer_queue(req);
}

static int
charge(struct front_req *req, size_t n)
{
	if (front_limits_charge(n) == -1)
		return -1;
	req->charged += n;
	return 0;
}

/* The headers are in: what they decide before any body is read. */
static enum MHD_Result
start_reading(struct front_req *req)
{
	const char *why = front_limits_framing(req->mhd);
	if (why != NULL)
		return refuse_early(req, "invalid_request", why);
	const char *cl = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, "Content-Length");
	unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
	if (n > F.o.max_body_bytes) {
		char detail[64];
		snprintf(detail, sizeof(detail), "the body is larger than %zu bytes",
		    F.o.max_body_bytes);
		return refuse_early(req, "payload_too_large", detail);
	}
	if (n > 0) {
		if (charge(req, (size_t)n + 1) == -1) {
			return refuse_early(req, "overloaded", OVER_BUDGET);
		}
		buffer_reserve_exact(&req->body, (size_t)n);	/* one copy */
	}
	return MHD_YES;
}

static void
take_upload(struct front_req *req, const char *data, size_t size)
{
	if (req->too_large)
		return;
	size_t room = req->charged > req->body.len ? req->charged - req->body.len : 0;
	req->over_budget = size > room && charge(req, size - room) == -1;
	if (req->over_budget || buffer_append(&req->body, data, size) == -1) {
		req->too_large = 1;
		buffer_free(&req->body);
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *mhd, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct front_req *req = *con_cls;
	if (req == NULL) {
		req = req_new(mhd, method);
		if (req == NULL || req->conn == NULL) {
			free(req);
			return MHD_NO;
		}
		*con_cls = req;
		req->conn->state = FRONT_READING;
		F.in_flight++;
		req->url = url;
		/* The URL goes into the request line of a hand-off as it came
		 * (undecoded, see start_daemon): nothing that could end it. */
		for (const char *p = url; *p; p++)
			if ((unsigned char)*p <= 0x20 || *p == 0x7f)
				return refuse_early(req, "invalid_request", "the path has a control byte or a space");
		return start_reading(req);
	}
	if (*upload_data_size) {
		take_upload(req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	front_limits_request_received(req->conn);
	if (!req->ready && !req->suspended && req->fd == -1)
		handle(req, url);
	return req->ready ? front_answer_queue(req) : MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *mhd, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)mhd;
	(void)toe;
	struct front_req *req = *con_cls;
	if (req == NULL)
		return;
	*con_cls = NULL;
	if (req->conn != NULL) {
		req->conn->state = FRONT_IDLE;
		req->conn->req = NULL;
		front_limits_wait_for_request(req->conn);
	}
	F.in_flight--;
	req_free(req);
}

static void
on_connection(void *cls, struct MHD_Connection *mhd, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct front_conn *c = calloc(1, sizeof(*c));
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mhd,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (c == NULL) {
			/* Untracked here: its slot in the supervisor's table
			 * is given back now rather than never. */
			front_control_closed(front_control_inode(ci ? ci->connect_fd : -1));
			return;
		}
		c->fd = ci ? ci->connect_fd : -1;
		c->ino = front_control_inode(c->fd);
		c->state = FRONT_IDLE;
		front_forward_name_client(c, mhd);
		front_limits_wait_for_request(c);
		c->next = F.conns;
		if (F.conns)
			F.conns->prev = c;
		F.conns = c;
		*socket_context = c;
		return;
	}
	struct front_conn *c = *socket_context;
	if (c == NULL)
		return;
	front_control_closed(c->ino);
	if (c->prev)
		c->prev->next = c->next;
	else
		F.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	*socket_context = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("libmicrohttpd: %s", line);
}

void
front_last_words(void)
{
	/* Once: a fault in the middle must not hand the same sockets twice. */
	static volatile sig_atomic_t said;
	if (said)
		return;
	said = 1;
	front_forward_hand_over(F.conns);
	front_control_adopt_kept();
}

/* The loop ------------------------------------------------------------- */

static void
on_stop_signal(int sig)
{
	(void)sig;
	stop_asked = 1;
}

/* A connection the supervisor dealt us; libmicrohttpd closes it if it
 * cannot take it (limits). */
static void
serve_connection(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint64_t ino = front_control_inode(fd);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1) {
		close(fd);
		front_control_closed(ino);
		return;
	}
	if (MHD_add_connection(F.daemon, fd, (struct sockaddr *)&ss, sl) != MHD_YES) {
		log_debug("a new connection was refused (limits)");
		front_control_closed(ino);
	}
}

/* New connections that come anyway (sent before the supervisor read this)
 * are idle at the end, and adopted back. */
static void
say_draining(void)
{
	struct front_msg m = { .type = FRONT_MSG_DRAINING };
	send(FRONT_CONTROL_FD, &m, sizeof(m), MSG_NOSIGNAL);
}

/* The path is handed to the supervisor as the client wrote it, so that
 * it is decoded once, there: decoded here, %0D%0A would end the request
 * line of the hand-off. */
static size_t
keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* The request line is in: from here the connection holds bytes of a
 * request, and is no longer idle (nothing to hand over as it is). */
static void *
on_request_line(void *cls, const char *uri, struct MHD_Connection *mhd)
{
	(void)cls;
	(void)uri;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mhd,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct front_conn *c = ci ? ci->socket_context : NULL;
	if (c != NULL)
		c->state = FRONT_READING;
	return NULL;
}

static int
start_daemon(void)
{
	/* No listening socket: the supervisor accepts and deals connections
	 * out (FRONT_MSG_CONNECTION), so the fronts share them evenly. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET;
	F.daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
	    MHD_OPTION_URI_LOG_CALLBACK, on_request_line, NULL,
	    MHD_OPTION_CONNECTION_LIMIT, F.o.max_connections,
	    /* max_connections_per_ip is the supervisor's: it counts every
	     * connection of the server where it accepts them. */
	    MHD_OPTION_CONNECTION_TIMEOUT, F.o.request_read_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FRONT_CONNECTION_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
	    MHD_OPTION_END);
	if (F.daemon == NULL)
		return -1;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(F.daemon,
	    MHD_DAEMON_INFO_EPOLL_FD);
	F.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event mhd = { .events = EPOLLIN, .data.ptr = &mhd_tag };
	struct epoll_event control = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = &control_tag };
	if (info == NULL || F.epfd == -1 ||
	    epoll_ctl(F.epfd, EPOLL_CTL_ADD, info->epoll_fd, &mhd) == -1 ||
	    epoll_ctl(F.epfd, EPOLL_CTL_ADD, FRONT_CONTROL_FD, &control) == -1)
		return -1;
	return 0;
}

/* The supervisor's messages: new connections to serve.  -1 when it is
 * gone (then so are we). */
static int
take_connections(void)
{
	for (int round = 0; round < 64; round++) {
		struct front_msg m;
		int fds[FRONT_FDS_MAX];
		unsigned n;
		int rc = front_control_next(&m, fds, &n);
		if (rc <= 0)
			return rc;
		if (m.type == FRONT_MSG_MAKE_ROOM)
			F.resumed |= front_control_make_room(F.conns);
		else if (m.type == FRONT_MSG_SHUTDOWN)
			F.shutting_down = 1;
		for (unsigned i = 0; i < n; i++) {
			if (m.type == FRONT_MSG_CONNECTION && i == 0)
				serve_connection(fds[i]);
			else
				close(fds[i]);
		}
	}
	return 0;
}

static int
wait_events(void)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	int timeout = LOOP_TICK_MS;
	if (MHD_get_timeout(F.daemon, &mhd_ms) == MHD_YES && mhd_ms < (unsigned)timeout)
		timeout = (int)mhd_ms;
	if (F.resumed || front_control_pending()) {
		timeout = 0;
		F.resumed = 0;
	}
	if (front_control_pending() && take_connections() == -1)
		return -1;
	struct epoll_event ev[32];
	int n = epoll_wait(F.epfd, ev, 32, timeout);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &mhd_tag)
			continue;
		if (ev[i].data.ptr == &control_tag) {
			if (take_connections() == -1)
				return -1;
			continue;
		}
		on_handoff_ready(ev[i].data.ptr);
	}
	return 0;
}

int
front_serve(struct vm *vm, const struct front_options *o, void (*lock_down)(void))
{
	F.vm = vm;
	F.o = *o;
	F.epfd = -1;
	front_set_init(o->fast_lane_ms);
	front_limits_init(o->max_inflight_bytes, o->request_read_timeout_s);
	front_forward_init(o->max_answer_bytes);
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)frame_now_ns() ^ (uint64_t)getpid() << 32;
	front_answer_init(seed, o->access_log);
	buffer_init(&F.out.body, o->max_result_bytes + 64);
	buffer_init(&F.out.traceback, 16384);
	buffer_init(&F.out.logs, 0);	/* bounded by max_log_bytes (vm_log.c) */
	buffer_init(&F.out.error_value, o->max_result_bytes);
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (front_crash_catch(front_last_words) == -1) {
		log_error("crash handlers: %s", strerror(errno));
		return 1;
	}
	if (start_daemon() == -1 || front_control_init() == -1) {
		log_error("cannot serve HTTP: %s", strerror(errno));
		return 1;
	}
	/* Everything that needs more than the sandbox allows is done. */
	lock_down();
	int64_t drain_until = 0;
	for (;;) {
		MHD_run(F.daemon);
		if ((stop_asked || F.retire) && drain_until == 0) {
			say_draining();
			front_answer_close_connections();
			drain_until = frame_now_ns() + DRAIN_MAX_NS;
		}
		if (drain_until && (F.in_flight == 0 || frame_now_ns() > drain_until))
			break;
		if (front_answer_stats_due())
			front_answer_send_stats();
		front_limits_sweep(F.conns);
		if (wait_events() == -1)
			return 0;	/* the supervisor is gone: so are we */
	}
	front_answer_send_stats();
	/* What is idle goes on at the supervisor, with the bytes the kernel
	 * holds for it; nothing here reads from those sockets again.  Past
	 * the drain's bound, what is still handed on is replayed there too. */
	if (F.in_flight == 0) {
		front_forward_adopt_idle(F.conns);
		front_control_adopt_kept();
		front_forward_adopt_undelivered();
	} else {
		front_last_words();
	}
	return 0;
}
