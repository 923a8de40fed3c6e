/*
 * test_fronts_host.c - the supervisor's side of front mode (issue 11,
 * src/http/http_fronts*.c) without a front process: the HTTP layer runs in
 * front mode in a thread of this process (its own event loop and a pool
 * of one worker), and the test plays a front on a SOCK_SEQPACKET control
 * socket it attaches from another thread, as src/pool/fronts.c does: it
 * is dealt the connections the server accepts until it says it drains,
 * opens internal connections, hands over client connections and replayed
 * requests, sends statistics, and sends what a broken front might.
 * Everything stays on 127.0.0.1; every wait is bounded.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/front_proto.h"
#include "daemon/metrics.h"
#include "daemon/scripts.h"
#include "http/http.h"
#include "luapool.h"
#include "support/httpc.h"
#include "support/server.h"
#include "support/support.h"

#define WAIT_MS 10000
#define QUIET_MS 300		/* long enough for a message that was coming */
#define IO_TIMEOUT_MS 10000
#define MAX_TIMEOUT_MS 10000
#define BUSY_SOURCE "local t=os.clock() while os.clock()-t<0.15 do end return 'done'"
#define TWO_BODY "{\"source\":\"return 1+1\"}"

/* The HTTP layer in front mode, on a thread of its own. */
static struct {
	pthread_t thread;
	atomic_int state;		/* 0 starting, 1 serving, -1 failed */
	atomic_int stop;
	struct http *http;
	char err[256];
} host;

static int control = -1;		/* the test's end: it plays the front */

static void *
host_run(void *arg)
{
	(void)arg;
	struct luapool_options po;
	struct luapool_error pe;
	luapool_options_init(&po);
	po.workers = 1;
	po.external_dispatch = 1;	/* this thread runs the dispatcher */
	po.max_timeout_ms = MAX_TIMEOUT_MS;
	/* BUSY_SOURCE fits, even at nice 19 (the pool lowers a long job) on a
	 * machine busy with other suites. */
	po.default_timeout_ms = MAX_TIMEOUT_MS;
	po.worker_path = server_worker_path();
	struct luapool *pool = luapool_new_with(&po, &pe);
	struct scripts *scripts = scripts_new(NULL, 16);
	if (pool == NULL || scripts == NULL) {
		snprintf(host.err, sizeof(host.err), "pool: %.200s", pool ? "no store" : pe.message);
		atomic_store(&host.state, -1);
		goto out;
	}
	struct http_options o = {
		.host = "127.0.0.1", .port = 0,
		.max_body_bytes = 1 << 20, .max_inflight_bytes = 64 << 20,
		.request_read_timeout_s = 10, .max_timeout_ms = MAX_TIMEOUT_MS,
		.default_timeout_ms = po.default_timeout_ms, .max_connections = 64,
		.max_connections_per_ip = 8, .connection_timeout_s = 30,
		.threads = 0, .fronts = 1, .access_log = 1,
		.memory_limit_mb = po.memory_limit_mb, .max_result_bytes = po.max_result_bytes,
		.max_json_depth = po.max_json_depth, .max_log_bytes = po.max_log_bytes,
	};
	host.http = http_start(&o, pool, scripts, host.err, sizeof(host.err));
	if (host.http == NULL) {
		atomic_store(&host.state, -1);
		goto out;
	}
	atomic_store(&host.state, 1);
	while (!atomic_load(&host.stop))
		http_serve_once(host.http, -1, 20);
	luapool_shutdown(pool);
	for (int i = 0; i < 100 && http_in_flight(host.http) > 0; i++)
		http_serve_once(host.http, -1, 10);
	http_stop(host.http);
out:
	if (pool)
		luapool_free(pool);
	scripts_free(scripts);
	return NULL;
}

static void
bound_io(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_MS / 1000 };
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

static void
setup(void)
{
	atomic_store(&host.state, 0);
	atomic_store(&host.stop, 0);
	ck_assert_int_eq(pthread_create(&host.thread, NULL, host_run, NULL), 0);
	int64_t end = support_now_ms() + WAIT_MS;
	while (atomic_load(&host.state) == 0 && support_now_ms() < end)
		usleep(5000);
	ck_assert_msg(atomic_load(&host.state) == 1, "http_start: %s", host.err);
	int pair[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	ck_assert_int_eq(fcntl(pair[0], F_SETFL, O_NONBLOCK), 0);
	http_fronts_attach(host.http, pair[0]);	/* from this thread, not the loop's */
	control = pair[1];
	bound_io(control);
}

static void
teardown(void)
{
	if (control != -1)
		close(control);
	control = -1;
	atomic_store(&host.stop, 1);
	pthread_join(host.thread, NULL);
}

/* The front's side ------------------------------------------------------------ */

/* One packet on the control socket with these descriptors. */
static void
send_packet(const void *bytes, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FRONT_FDS_MAX)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)bytes, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds > 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	ck_assert_int_eq(sendmsg(control, &msg, MSG_NOSIGNAL), (ssize_t)len);
}

static void
send_message(uint32_t type, uint32_t count, const void *payload, size_t len, const int *fds,
    int nfds)
{
	static unsigned char packet[2 * FRONT_PACKET_MAX];
	struct front_msg m = { .type = type, .count = count };
	ck_assert_uint_le(sizeof(m) + len, sizeof(packet));
	memcpy(packet, &m, sizeof(m));
	if (len)
		memcpy(packet + sizeof(m), payload, len);
	send_packet(packet, sizeof(m) + len, fds, nfds);
}

/* An internal connection: the end the test keeps (the server has the other). */
static int
open_internal(void)
{
	int pair[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
	send_message(FRONT_MSG_OPEN, 0, NULL, 0, &pair[0], 1);
	close(pair[0]);
	bound_io(pair[1]);
	return pair[1];
}

/* A TCP connection through a listening socket of the test's own (the
 * server's is the server's to accept on): returns the client's end, the
 * accepted end in *accepted, as a front would hold it. */
static int
connect_through_own_listener(int *accepted)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	int client = httpc_connect(ntohs(sin.sin_port), IO_TIMEOUT_MS);
	ck_assert_int_ge(client, 0);
	*accepted = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(*accepted, 0);
	close(lfd);
	return client;
}

/* A client connection handed over with ADOPT; returns the client's end. */
static int
adopt_new_client(void)
{
	int accepted;
	int client = connect_through_own_listener(&accepted);
	send_message(FRONT_MSG_ADOPT, 1, NULL, 0, &accepted, 1);
	close(accepted);
	return client;
}

/* Whether the server sends the front a packet within timeout_ms. */
static int
server_speaks_within(int timeout_ms)
{
	struct pollfd pfd = { .fd = control, .events = POLLIN };
	return poll(&pfd, 1, timeout_ms) == 1;
}

/*
 * The FRONT_MSG_CONNECTION the server deals the front for `client`, a
 * connection to its port: one packet, one descriptor, a TCP socket whose
 * peer is client and which carries its bytes.  Returns that descriptor
 * (the caller closes).
 */
static int
expect_connection_of(int client)
{
	ck_assert_msg(server_speaks_within(WAIT_MS), "no connection was dealt");
	struct front_msg m;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FRONT_FDS_MAX)];
	} cbuf;
	memset(&cbuf, 0, sizeof(cbuf));
	unsigned char packet[FRONT_PACKET_MAX];
	struct iovec iov = { .iov_base = packet, .iov_len = sizeof(packet) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf) };
	ssize_t n = recvmsg(control, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	ck_assert_int_eq(n, (ssize_t)sizeof(m));
	ck_assert_int_eq(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC), 0);
	memcpy(&m, packet, sizeof(m));
	ck_assert_uint_eq(m.type, FRONT_MSG_CONNECTION);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->cmsg_level, SOL_SOCKET);
	ck_assert_int_eq(c->cmsg_type, SCM_RIGHTS);
	ck_assert_uint_eq(c->cmsg_len, CMSG_LEN(sizeof(int)));
	ck_assert_ptr_null(CMSG_NXTHDR(&msg, c));
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	int type = 0;
	socklen_t optlen = sizeof(type);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen), 0);
	ck_assert_int_eq(type, SOCK_STREAM);
	struct sockaddr_in peer, mine;
	socklen_t peerlen = sizeof(peer), minelen = sizeof(mine);
	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&peer, &peerlen), 0);
	ck_assert_int_eq(getsockname(client, (struct sockaddr *)&mine, &minelen), 0);
	ck_assert_uint_eq(peerlen, minelen);
	ck_assert_int_eq(peer.sin_family, AF_INET);
	ck_assert_int_eq(mine.sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(peer.sin_port), ntohs(mine.sin_port));
	ck_assert_uint_eq(ntohl(peer.sin_addr.s_addr), ntohl(mine.sin_addr.s_addr));
	/* And it is that connection: what the client sends arrives on it. */
	ck_assert_int_eq(httpc_send(client, "ping", 4), 0);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
	char got[8];
	ck_assert_int_eq(recv(fd, got, sizeof(got), MSG_DONTWAIT), 4);
	ck_assert_int_eq(memcmp(got, "ping", 4), 0);
	return fd;
}

static void
ask(int fd, const char *method, const char *path, const char *headers, const char *body,
    struct httpc_response *r)
{
	ck_assert_int_eq(httpc_send_request(fd, method, path, headers, body,
	    body ? strlen(body) : 0), 0);
	ck_assert_msg(httpc_read_response(fd, r) == 0, "no answer to %s %s", method, path);
}

static void
expect_healthz(int fd)
{
	struct httpc_response r;
	ask(fd, "GET", "/healthz", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"ok\",\"workers\":1}");
	httpc_response_free(&r);
}

/* Whether the server closed its end of fd's connection within WAIT_MS. */
static int
closed_by_server(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;
	return poll(&pfd, 1, WAIT_MS) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/* A metric's value in GET /metrics (asked on an internal connection), 0
 * when the series is absent. */
static long
metric(const char *series)
{
	int fd = open_internal();
	struct httpc_response r;
	ask(fd, "GET", "/metrics", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	char line[160];
	snprintf(line, sizeof(line), "\n%s ", series);
	const char *at = strstr(r.body, line);
	long n = at ? strtol(at + strlen(line), NULL, 10) : 0;
	httpc_response_free(&r);
	close(fd);
	return n;
}

/* Tests ------------------------------------------------------------------------- */

START_TEST(a_new_connection_should_be_dealt_to_a_front)
{
	ck_assert_uint_ne(http_port(host.http), 0);
	int client = httpc_connect(http_port(host.http), IO_TIMEOUT_MS);
	ck_assert_int_ge(client, 0);
	int dealt = expect_connection_of(client);
	/* Dealt, not shared: the server answers nothing on it. */
	ck_assert(!server_speaks_within(QUIET_MS));
	struct pollfd pfd = { .fd = client, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	close(dealt);
	close(client);
}
END_TEST

START_TEST(a_draining_front_should_be_dealt_no_more_connections)
{
	int client = httpc_connect(http_port(host.http), IO_TIMEOUT_MS);
	ck_assert_int_ge(client, 0);
	close(expect_connection_of(client));
	close(client);
	send_message(FRONT_MSG_DRAINING, 0, NULL, 0, NULL, 0);
	/* The server reads a front's packets in order: once the internal
	 * connection opened after DRAINING is served, DRAINING was taken. */
	int fd = open_internal();
	expect_healthz(fd);
	close(fd);
	/* The server serves the next client itself, and tells the front nothing. */
	client = httpc_connect(http_port(host.http), IO_TIMEOUT_MS);
	ck_assert_int_ge(client, 0);
	expect_healthz(client);
	ck_assert_msg(!server_speaks_within(QUIET_MS), "a draining front was dealt a connection");
	close(client);
}
END_TEST

START_TEST(front_mode_should_need_the_event_loop)
{
	struct http_options o = { .host = "127.0.0.1", .fronts = 1, .threads = 2,
		.max_connections = 8 };
	char err[256];
	ck_assert_ptr_null(http_start(&o, NULL, NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "http_threads"));
}
END_TEST

START_TEST(an_opened_internal_connection_should_be_served)
{
	int fd = open_internal();
	expect_healthz(fd);
	expect_healthz(fd);		/* kept alive between requests */
	struct httpc_response r;
	ask(fd, "POST", "/v1/exec", NULL, TWO_BODY, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"result\":2}");
	httpc_response_free(&r);
	close(fd);
}
END_TEST

START_TEST(an_adopted_client_connection_should_be_served)
{
	int client = adopt_new_client();
	expect_healthz(client);
	struct httpc_response r;
	ask(client, "POST", "/v1/exec", NULL, TWO_BODY, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"result\":2}");
	httpc_response_free(&r);
	close(client);
}
END_TEST

START_TEST(a_replayed_request_should_be_answered_on_the_client_connection)
{
	int accepted;
	int client = connect_through_own_listener(&accepted);
	/* The request as the front read it from the client. */
	char request[512];
	int n = snprintf(request, sizeof(request), "POST /v1/exec HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/json\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(TWO_BODY), TWO_BODY);
	int memfd = memfd_create("replay", MFD_CLOEXEC);
	ck_assert_int_ge(memfd, 0);
	ck_assert_int_eq(write(memfd, request, (size_t)n), n);
	int fds[2] = { accepted, memfd };
	send_message(FRONT_MSG_REPLAY, 0, NULL, 0, fds, 2);
	close(accepted);
	close(memfd);
	struct httpc_response r;
	ck_assert_int_eq(httpc_read_response(client, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"result\":2}");
	ck_assert(httpc_closes(&r));
	httpc_response_free(&r);
	ck_assert(closed_by_server(client));
	close(client);
}
END_TEST

START_TEST(bad_messages_should_be_dropped_with_their_descriptors)
{
	/* Each carries a socketpair end: the server must close it, which the
	 * test sees as the end of input on the other. */
	static const struct { uint32_t type; int nfds; } cases[] = {
		{ 99, 1 },			/* unknown type */
		{ FRONT_MSG_OPEN, 2 },		/* one too many */
		{ FRONT_MSG_ADOPT, 1 },		/* a Unix socket is no client */
		{ FRONT_MSG_REPLAY, 1 },	/* one too few */
		{ FRONT_MSG_STATS, 1 },		/* no descriptors with statistics */
		{ FRONT_MSG_CONFIG, 1 },	/* the supervisor's own message */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int a[2], b[2];
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
		int fds[2] = { a[0], b[0] };
		send_message(cases[i].type, 0, NULL, 0, fds, cases[i].nfds);
		close(a[0]);
		close(b[0]);
		ck_assert_msg(closed_by_server(a[1]), "case %zu: descriptor kept", i);
		if (cases[i].nfds == 2)
			ck_assert_msg(closed_by_server(b[1]), "case %zu: second descriptor kept", i);
		close(a[1]);
		close(b[1]);
	}
	/* OPEN with a regular file, a listening socket, and a header cut short
	 * or followed by bytes it should not have. */
	int memfd = memfd_create("not-a-socket", MFD_CLOEXEC);
	send_message(FRONT_MSG_OPEN, 0, NULL, 0, &memfd, 1);
	close(memfd);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&un, sizeof(sa_family_t)), 0);	/* autobind */
	ck_assert_int_eq(listen(lfd, 1), 0);
	send_message(FRONT_MSG_OPEN, 0, NULL, 0, &lfd, 1);
	close(lfd);
	send_packet("\2\0\0", 3, NULL, 0);
	int a[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
	send_message(FRONT_MSG_OPEN, 0, "extra", 5, &a[0], 1);
	close(a[0]);
	ck_assert(closed_by_server(a[1]));
	close(a[1]);
	/* A packet longer than FRONT_PACKET_MAX: truncated, dropped, its
	 * descriptor closed. */
	static char big[FRONT_PACKET_MAX + 100];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
	send_message(FRONT_MSG_OPEN, 0, big, sizeof(big) - sizeof(struct front_msg), &a[0], 1);
	close(a[0]);
	ck_assert(closed_by_server(a[1]));
	close(a[1]);
	/* A REPLAY whose request file is too large. */
	int client[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client), 0);
	memfd = memfd_create("huge", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(memfd, (off_t)(2 << 20)), 0);
	int fds[2] = { client[0], memfd };
	send_message(FRONT_MSG_REPLAY, 0, NULL, 0, fds, 2);
	close(client[0]);
	close(memfd);
	ck_assert(closed_by_server(client[1]));
	close(client[1]);
	/* The same control socket still works. */
	int fd = open_internal();
	expect_healthz(fd);
	close(fd);
}
END_TEST

START_TEST(statistics_should_reach_the_metrics_when_valid)
{
	const char *series = "luapoold_requests_total{route=\"info\",status=\"204\"}";
	const char *other = "luapoold_requests_total{route=\"info\",status=\"other\"}";
	ck_assert_int_eq(metric(series), 0);
	ck_assert_int_eq(metric("luapoold_job_run_seconds_count"), 0);
	struct front_observation o[2] = {
		{ .route = METRICS_ROUTE_INFO, .status = 204, .seconds = 0.01f, .run_seconds = 0.002f },
		{ .route = METRICS_ROUTE_INFO, .status = 204, .seconds = 0.01f, .run_seconds = -1 },
	};
	send_message(FRONT_MSG_STATS, 2, o, sizeof(o), NULL, 0);
	ck_assert_int_eq(metric(series), 2);
	ck_assert_int_eq(metric("luapoold_job_run_seconds_count"), 1);
	/* Invalid entries are skipped, the valid ones beside them counted. */
	struct front_observation bad[5] = {
		{ .route = METRICS_ROUTE_INFO, .status = 42, .seconds = 0.01f, .run_seconds = -1 },
		{ .route = METRICS_ROUTE_COUNT, .status = 204, .seconds = 0.01f, .run_seconds = -1 },
		{ .route = METRICS_ROUTE_INFO, .status = 204, .seconds = -1, .run_seconds = -1 },
		{ .route = METRICS_ROUTE_INFO, .status = 204, .seconds = 0.01f, .run_seconds = 2e6f },
		{ .route = METRICS_ROUTE_INFO, .status = 204, .seconds = 0.01f, .run_seconds = 0.5f },
	};
	send_message(FRONT_MSG_STATS, 5, bad, sizeof(bad), NULL, 0);
	/* A count that does not match the length drops the whole message. */
	send_message(FRONT_MSG_STATS, 2, o, sizeof(o[0]), NULL, 0);
	send_message(FRONT_MSG_STATS, 0xffffffffu, o, sizeof(o), NULL, 0);
	ck_assert_int_eq(metric(series), 3);
	ck_assert_int_eq(metric(other), 0);
	ck_assert_int_eq(metric("luapoold_job_run_seconds_count"), 2);
}
END_TEST

START_TEST(front_headers_should_count_on_internal_connections_only)
{
	/* The log goes to a file for this test (Check runs it in a process of
	 * its own). */
	char path[] = "/tmp/luapoold-fronts-XXXXXX";
	int logfd = mkstemp(path);
	ck_assert_int_ge(logfd, 0);
	unlink(path);
	ck_assert_int_eq(dup2(logfd, STDERR_FILENO), STDERR_FILENO);
	const char *body = "{\"source\":\"" BUSY_SOURCE "\"}";
	const char *headers = "X-Luapoold-Deadline-Ms: 50\r\nX-Luapoold-Client: 203.0.113.7\r\n";
	/* Internal: the front's deadline cuts the job short. */
	int fd = open_internal();
	struct httpc_response r;
	ask(fd, "POST", "/v1/exec", headers, body, &r);
	ck_assert_int_eq(r.status, 504);
	httpc_response_free(&r);
	/* Values out of range are ignored. */
	ask(fd, "POST", "/v1/exec", "X-Luapoold-Deadline-Ms: 99999999999\r\n"
	    "X-Luapoold-Client: 203.0.113.999\r\n", body, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"result\":\"done\"}");
	httpc_response_free(&r);
	close(fd);
	/* A client's connection: both headers are ignored. */
	int client = adopt_new_client();
	ask(client, "POST", "/v1/exec", "X-Luapoold-Deadline-Ms: 50\r\n"
	    "X-Luapoold-Client: 198.51.100.9\r\n", body, &r);
	ck_assert_int_eq(r.status, 200);
	httpc_response_free(&r);
	close(client);
	/* The access log names the forwarded client, and nobody else. */
	char log[16384];
	ssize_t n = -1;
	for (int64_t end = support_now_ms() + WAIT_MS; support_now_ms() < end; usleep(5000)) {
		n = pread(logfd, log, sizeof(log) - 1, 0);
		log[n > 0 ? n : 0] = '\0';
		if (strstr(log, " 504 ") && strstr(log, " 200 ") &&
		    strstr(strstr(log, " 200 ") + 1, " 200 "))
			break;
	}
	ck_assert_msg(strstr(log, " client=203.0.113.7") != NULL, "log:\n%s", log);
	ck_assert_msg(strstr(log, "198.51.100.9") == NULL, "log:\n%s", log);
	ck_assert_msg(strstr(log, "client=203.0.113.999") == NULL, "log:\n%s", log);
	close(logfd);
}
END_TEST

START_TEST(a_front_that_hangs_up_should_be_detached)
{
	close(control);
	/* Another front takes its place and is served. */
	int pair[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	ck_assert_int_eq(fcntl(pair[0], F_SETFL, O_NONBLOCK), 0);
	http_fronts_attach(host.http, pair[0]);
	control = pair[1];
	bound_io(control);
	int fd = open_internal();
	expect_healthz(fd);
	close(fd);
}
END_TEST

static Suite *
fronts_host_suite(void)
{
	Suite *s = suite_create("fronts_host");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_new_connection_should_be_dealt_to_a_front);
	tcase_add_test(tc, a_draining_front_should_be_dealt_no_more_connections);
	tcase_add_test(tc, front_mode_should_need_the_event_loop);
	tcase_add_test(tc, an_opened_internal_connection_should_be_served);
	tcase_add_test(tc, an_adopted_client_connection_should_be_served);
	tcase_add_test(tc, a_replayed_request_should_be_answered_on_the_client_connection);
	tcase_add_test(tc, bad_messages_should_be_dropped_with_their_descriptors);
	tcase_add_test(tc, statistics_should_reach_the_metrics_when_valid);
	tcase_add_test(tc, front_headers_should_count_on_internal_connections_only);
	tcase_add_test(tc, a_front_that_hangs_up_should_be_detached);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fronts_host_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
