/*
 * front.c - the HTTP server of a front process (see front.h): one
 * libmicrohttpd daemon in external epoll mode on the shared listening
 * socket, one thread, no pool of its own.
 *
 * POST /v1/exec of a chunk known to be short (front_set.c) and plainly
 * acceptable (authorized, no "usage", bytecode not signed) runs here, in
 * the lane (vm/lane.h): one process, no hop.  Everything else, and any
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
#include "common/sha256.h"
#include "common/text.h"
#include "daemon/jsonscan.h"
#include "daemon/metrics.h"
#include "http/front.h"
#include "http/front_internal.h"
#include "http/http_options.h"
#include "http/problem.h"
#include "vm/lane.h"

#define DRAIN_MAX_NS		(30 * 1000000000LL)
#define STATS_EVERY_NS		(100 * 1000000LL)
#define LOOP_TICK_MS		100

static struct {
	struct MHD_Daemon *daemon;
	struct vm *vm;
	struct front_options o;
	int epfd;
	struct front_conn *conns;
	unsigned in_flight;		/* requests begun and not completed */
	uint64_t id_seed, id_count;
	struct vm_outcome out;
	struct front_observation obs[FRONT_OBSERVATIONS_MAX];
	unsigned nobs;
	int64_t obs_sent_ns;
	int resumed;			/* run MHD again before sleeping */
	int retire;			/* the VM must be replaced: drain, exit */
} F;

static volatile sig_atomic_t stop_asked;
static char mhd_tag, control_tag, listen_tag;	/* epoll data of the fixed sources */

/* Observations --------------------------------------------------------- */

static void
send_stats(void)
{
	if (F.nobs == 0)
		return;
	char packet[FRONT_PACKET_MAX];
	struct front_msg m = { .type = FRONT_MSG_STATS, .count = F.nobs };
	memcpy(packet, &m, sizeof(m));
	memcpy(packet + sizeof(m), F.obs, F.nobs * sizeof(F.obs[0]));
	if (send(FRONT_CONTROL_FD, packet, sizeof(m) + F.nobs * sizeof(F.obs[0]),
	    MSG_NOSIGNAL) == -1)
		log_debug("stats to the supervisor: %s", strerror(errno));
	F.nobs = 0;
	F.obs_sent_ns = frame_now_ns();
}

static void
observe(enum metrics_route route, unsigned status, const struct front_req *req)
{
	struct front_observation *o = &F.obs[F.nobs++];
	o->route = (uint16_t)route;
	o->status = (uint16_t)status;
	o->seconds = (float)((frame_now_ns() - req->start_ns) / 1e9);
	o->run_seconds = req->run_ms >= 0 ? (float)(req->run_ms / 1000.0) : -1.0f;
	if (F.nobs == FRONT_OBSERVATIONS_MAX)
		send_stats();
}

/* Requests ------------------------------------------------------------- */

static struct front_req *
req_new(struct MHD_Connection *mhd, const char *method)
{
	struct front_req *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return NULL;
	req->io_kind = 1;
	req->mhd = mhd;
	req->fd = -1;
	req->run_ms = -1;
	req->start_ns = frame_now_ns();
	snprintf(req->method, sizeof(req->method), "%s", method);
	buffer_init(&req->body, F.o.max_body_bytes + 1);
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
	front_forward_end(req, F.epfd);
	buffer_free(&req->body);
	buffer_free(&req->head);
	buffer_free(&req->in);
	buffer_free(&req->resp_headers);
	free(req->resp_body);
	free(req);
}

static void
take_request_id(struct front_req *req)
{
	const char *given = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, "X-Request-Id");
	if (given != NULL && text_is_visible(given, sizeof(req->request_id) - 1)) {
		memcpy(req->request_id, given, strlen(given) + 1);
		return;
	}
	uint64_t id = text_mix64(F.id_seed + F.id_count++);
	for (int i = 15; i >= 0; i--, id >>= 4)
		req->request_id[i] = text_hex_digits[id & 15];
	req->request_id[16] = '\0';
}

/* A problem the front answers itself (the body too large, the supervisor
 * unreachable): the same body the supervisor would give. */
static void
answer_problem(struct front_req *req, const char *code, const char *detail)
{
	size_t len = 0;
	char *body = problem_body_for_job(code, detail, NULL, &len);
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
	req->status = (unsigned)problem_status(code);
	req->ready = 1;
	req->run_ms = -1;
	observe(METRICS_ROUTE_OTHER, req->status, req);
}

static enum MHD_Result
queue_answer(struct front_req *req)
{
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

/* The lane ------------------------------------------------------------- */

static int
authorized(const struct front_req *req)
{
	if (F.o.auth_token == NULL || F.o.auth_token[0] == '\0')
		return 1;
	const char *h = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, "Authorization");
	return h && strncasecmp(h, "Bearer ", 7) == 0 && text_secret_equal(h + 7, F.o.auth_token);
}

/* A /v1/exec whose chunk the lane can know: exactly one of "bytecode" and
 * "source", no "usage".  Its digest names the chunk as the client wrote it. */
static int
take_digest(struct front_req *req)
{
	const char *text = req->body.data, *v = NULL, *s = NULL, *u = NULL;
	size_t len = req->body.len, vl = 0, sl = 0, ul = 0;
	if (len == 0)
		return 0;
	enum jsonscan_result b = jsonscan_member(text, len, "bytecode", &v, &vl);
	enum jsonscan_result src = jsonscan_member(text, len, "source", &s, &sl);
	if (jsonscan_member(text, len, "usage", &u, &ul) != JSONSCAN_ABSENT)
		return 0;
	if (!((b == JSONSCAN_FOUND && src == JSONSCAN_ABSENT) ||
	    (b == JSONSCAN_ABSENT && src == JSONSCAN_FOUND)))
		return 0;
	struct sha256 h;
	unsigned char out[SHA256_SIZE];
	sha256_init(&h);
	sha256_update(&h, b == JSONSCAN_FOUND ? "b" : "s", 1);
	sha256_update(&h, b == JSONSCAN_FOUND ? v : s, b == JSONSCAN_FOUND ? vl : sl);
	sha256_final(&h, out);
	memcpy(req->digest, out, sizeof(req->digest));
	return 1;
}

static void
answer_from_lane(struct front_req *req, double run_ms)
{
	req->resp_body = malloc(F.out.body.len ? F.out.body.len : 1);
	if (req->resp_body == NULL)
		return;		/* the supervisor answers it */
	memcpy(req->resp_body, F.out.body.data, F.out.body.len);
	req->resp_len = F.out.body.len;
	take_request_id(req);
	char timing[64];
	snprintf(timing, sizeof(timing), "queue;dur=0.000, run;dur=%.3f", run_ms);
	buffer_reset(&req->resp_headers);
	int bad = buffer_append(&req->resp_headers, "Content-Type\0application/json", 30) |
	    buffer_append(&req->resp_headers, "X-Request-Id", 13) |
	    buffer_append(&req->resp_headers, req->request_id, strlen(req->request_id) + 1) |
	    buffer_append(&req->resp_headers, "Server-Timing", 14) |
	    buffer_append(&req->resp_headers, timing, strlen(timing) + 1);
	if (bad) {
		free(req->resp_body);
		req->resp_body = NULL;
		return;
	}
	req->status = 200;
	req->run_ms = run_ms;
	req->ready = 1;
	observe(METRICS_ROUTE_EXEC, 200, req);
}

/* Runs req in the lane: answered, or its head is ready to hand it on
 * with the time it has left. */
static void
run_in_lane(struct front_req *req, const char *url)
{
	if (front_forward_build_head(req, url, 1) == -1)
		return;
	req->conn->req = req;
	req->conn->state = FRONT_HANDED;	/* a hard stop replays it */
	int64_t run_ns = 0;
	enum lane_verdict v = lane_run(F.vm, req->body.data, req->body.len, req->start_ns,
	    &F.out, &run_ns);
	req->conn->state = FRONT_READING;
	req->conn->req = NULL;
	if (F.out.replace != VM_REPLACE_NO || F.out.heap_high)
		F.retire = 1;
	double run_ms = run_ns / 1e6;
	if (F.out.soft_stopped)
		front_set_demote(req->digest);
	else if (run_ns > 0)
		front_set_observe(req->digest, run_ms);
	if (v == LANE_ANSWERED)
		answer_from_lane(req, run_ms);
	else
		front_forward_set_deadline(req, lane_deadline_ns(), frame_now_ns());
}

/* The hand-off ---------------------------------------------------------- */

static void
hand_off(struct front_req *req, const char *url)
{
	if (req->head.len == 0 && front_forward_build_head(req, url, 0) == -1) {
		answer_problem(req, "internal_error", "out of memory");
		return;
	}
	if (front_forward_start(req, F.epfd) == -1) {
		answer_problem(req, "internal_error", "the supervisor cannot be reached");
		return;
	}
	req->conn->req = req;
	req->conn->state = FRONT_HANDED;
	MHD_suspend_connection(req->mhd);
	req->suspended = 1;
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
		answer_problem(req, "internal_error", "the supervisor gave no answer");
	else if (req->eligible && req->run_ms >= 0)
		front_set_observe(req->digest, req->run_ms);
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
		answer_problem(req, "payload_too_large", "the request body is larger than max_body_bytes");
		return;
	}
	/* jsonscan wants the text NUL-terminated; the body has a spare byte. */
	if (buffer_append_char(&req->body, '\0') == 0)
		req->body.len--;
	if (strcmp(req->method, "POST") == 0 && strcmp(url, "/v1/exec") == 0 &&
	    F.o.bytecode_mode != HTTP_BYTECODE_SIGNED && authorized(req))
		req->eligible = take_digest(req);
	if (req->eligible && front_set_is_short(req->digest)) {
		run_in_lane(req, url);
		if (req->ready)
			return;
	}
	hand_off(req, url);
}

/* libmicrohttpd callbacks ------------------------------------------------ */

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
		const char *cl = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, "Content-Length");
		if (cl != NULL && strtoull(cl, NULL, 10) > F.o.max_body_bytes)
			req->too_large = 1;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!req->too_large &&
		    buffer_append(&req->body, upload_data, *upload_data_size) == -1) {
			req->too_large = 1;
			buffer_free(&req->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!req->ready && !req->suspended && req->fd == -1)
		handle(req, url);
	return req->ready ? queue_answer(req) : MHD_YES;
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
		if (c == NULL)
			return;
		c->fd = ci ? ci->connect_fd : -1;
		c->state = FRONT_IDLE;
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
	front_forward_hand_over(F.conns);
}

/* The loop ------------------------------------------------------------- */

static void
on_stop_signal(int sig)
{
	(void)sig;
	stop_asked = 1;
}

static int
start_daemon(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET;
	if (getsockname(FRONT_LISTEN_FD, (struct sockaddr *)&ss, &sl) == 0 &&
	    ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	F.daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_CONNECTION_LIMIT, F.o.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, F.o.max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, F.o.request_read_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
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
	/* Exclusive: a new connection wakes one front, and a front busy in
	 * a job is not waiting, so the idle ones take the connections. */
	struct epoll_event listen = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &listen_tag };
	if (info == NULL || F.epfd == -1 ||
	    epoll_ctl(F.epfd, EPOLL_CTL_ADD, info->epoll_fd, &mhd) == -1 ||
	    epoll_ctl(F.epfd, EPOLL_CTL_ADD, FRONT_CONTROL_FD, &control) == -1 ||
	    epoll_ctl(F.epfd, EPOLL_CTL_ADD, FRONT_LISTEN_FD, &listen) == -1)
		return -1;
	return 0;
}

/* One connection per round: the fronts share new connections instead of
 * the first one awake taking a whole burst. */
static void
accept_one(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(FRONT_LISTEN_FD, (struct sockaddr *)&ss, &sl,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return;		/* another front took it, or the table is full */
	/* On failure libmicrohttpd closes the socket itself. */
	if (MHD_add_connection(F.daemon, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
		log_debug("a new connection was refused (limits)");
}

static void
stop_accepting(void)
{
	epoll_ctl(F.epfd, EPOLL_CTL_DEL, FRONT_LISTEN_FD, NULL);
	close(FRONT_LISTEN_FD);
}

/* Whether the supervisor is still there (it says nothing after CONFIG). */
static int
supervisor_gone(void)
{
	char byte;
	ssize_t n = recv(FRONT_CONTROL_FD, &byte, 1, MSG_DONTWAIT);
	return n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR);
}

static int
wait_events(void)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	int timeout = LOOP_TICK_MS;
	if (MHD_get_timeout(F.daemon, &mhd_ms) == MHD_YES && mhd_ms < (unsigned)timeout)
		timeout = (int)mhd_ms;
	if (F.resumed) {
		timeout = 0;
		F.resumed = 0;
	}
	struct epoll_event ev[32];
	int n = epoll_wait(F.epfd, ev, 32, timeout);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &mhd_tag)
			continue;
		if (ev[i].data.ptr == &listen_tag) {
			accept_one();
			continue;
		}
		if (ev[i].data.ptr == &control_tag) {
			if (supervisor_gone())
				return -1;
			continue;
		}
		on_handoff_ready(ev[i].data.ptr);
	}
	return 0;
}

int
front_serve(struct vm *vm, const struct front_options *o)
{
	F.vm = vm;
	F.o = *o;
	F.epfd = -1;
	front_set_init(o->fast_lane_ms);
	if (getrandom(&F.id_seed, sizeof(F.id_seed), GRND_NONBLOCK) != sizeof(F.id_seed))
		F.id_seed = (uint64_t)frame_now_ns() ^ (uint64_t)getpid() << 32;
	buffer_init(&F.out.body, o->max_result_bytes + 64);
	buffer_init(&F.out.traceback, 16384);
	buffer_init(&F.out.logs, 0);	/* bounded by max_log_bytes (vm_log.c) */
	buffer_init(&F.out.error_value, o->max_result_bytes);
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (start_daemon() == -1) {
		log_error("cannot serve HTTP: %s", strerror(errno));
		return 1;
	}
	int64_t drain_until = 0;
	for (;;) {
		MHD_run(F.daemon);
		if ((stop_asked || F.retire) && drain_until == 0) {
			stop_accepting();
			drain_until = frame_now_ns() + DRAIN_MAX_NS;
		}
		if (drain_until && (F.in_flight == 0 || frame_now_ns() > drain_until))
			break;
		if (F.nobs && frame_now_ns() - F.obs_sent_ns > STATS_EVERY_NS)
			send_stats();
		if (wait_events() == -1)
			return 0;	/* the supervisor is gone: so are we */
	}
	send_stats();
	/* What is idle goes on at the supervisor, with the bytes the kernel
	 * holds for it; nothing here reads from those sockets again. */
	front_forward_adopt_idle(F.conns);
	return 0;
}
