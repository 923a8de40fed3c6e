/*
 * http_fronts.c - front mode, the supervisor's side of front_proto.h: the
 * table of the fronts' control sockets, the messages read from them, and
 * the connections those messages hand over to libmicrohttpd.
 *
 * A front is another process and may be buggy or taken over: every type,
 * count, length and value it sends is checked, every descriptor is checked
 * to be what its message says before it is used, and a descriptor is only
 * ever served as an HTTP connection (or, a replayed request, read).  Any
 * descriptor that arrives with a message refused here is closed.  The
 * warnings a front can cause are logged at most once every 10 s.
 *
 * Internal connections (the socketpair ends of OPEN and REPLAY) reach
 * libmicrohttpd with an AF_UNIX address of sizeof(sa_family_t) bytes:
 * 0.9.75 copies the address as given and its per-IP limit lets any
 * address that is neither sockaddr_in nor sockaddr_in6 through, so such a
 * connection is known by its family and never counts against
 * max_connections_per_ip.  Only on them are the headers a front adds
 * (FRONT_HEADER_CLIENT, FRONT_HEADER_DEADLINE) honoured.
 *
 * A replayed request is answered by a relay thread of its own (a front
 * died holding it): it feeds the request to an internal connection and
 * copies the answer to the client, with blocking I/O bounded by socket
 * timeouts.  It touches nothing of struct http, so http_stop never waits
 * for one.  This file never parses HTTP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/front_proto.h"
#include "common/frame.h"
#include "common/log.h"
#include "daemon/metrics.h"
#include "http/http.h"
#include "http/http_internal.h"

#define FRONTS_MAX		64	/* control sockets attached at once */
#define RELAYS_MAX		64	/* replayed requests answered at once */
#define MESSAGES_PER_ROUND	256	/* per socket and event-loop round */
#define ACCEPTS_PER_ROUND	64	/* new connections per event-loop round */
#define REPLAY_SLACK_BYTES	(64 * 1024)	/* a request's head beside its body */
#define RELAY_SLACK_MS		5000	/* past max_timeout_ms, a relay gives up */
#define WARN_INTERVAL_NS	(10 * 1000000000LL)

struct http_fronts {
	pthread_mutex_t lock;		/* fds and count; attach runs on another thread */
	int fds[FRONTS_MAX];
	int draining[FRONTS_MAX];	/* said FRONT_MSG_DRAINING: no new connections */
	unsigned count, next;		/* next: whose turn it is for a connection */
	uint32_t event_id;
	atomic_llong warned_ns;
	atomic_uint held_back;		/* warnings not logged since */
};

/* One replayed request on its way: our end of the internal connection,
 * the request's bytes, the client. */
struct relay {
	int end, memfd, client;
	off_t size;
	int64_t deadline_ns;	/* the client must take the answer by then */
};

/* Relays outlive nothing but themselves: a count of the file's own. */
static atomic_uint relays_running;

/* The address of every internal connection: the family alone. */
static const struct sockaddr_un internal_address = { .sun_family = AF_UNIX };

/* Warnings ------------------------------------------------------------------ */

static void front_warn(struct http_fronts *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* At most one every WARN_INTERVAL_NS, with the count of those held back. */
static void
front_warn(struct http_fronts *f, const char *fmt, ...)
{
	int64_t now = frame_now_ns();
	long long last = atomic_load(&f->warned_ns);
	if ((last != 0 && now - last < WARN_INTERVAL_NS) ||
	    !atomic_compare_exchange_strong(&f->warned_ns, &last, now)) {
		atomic_fetch_add(&f->held_back, 1);
		return;
	}
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	unsigned held = atomic_exchange(&f->held_back, 0);
	log_warn("front: %s (at most one such warning every 10 s; %u held back)", line, held);
}

static void
close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
}

/* The table ----------------------------------------------------------------- */

int
http_fronts_init(struct http *http, uint32_t event_id)
{
	struct http_fronts *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	if (pthread_mutex_init(&f->lock, NULL) != 0) {
		free(f);
		return -1;
	}
	f->event_id = event_id;
	http->fronts = f;
	return 0;
}

void
http_fronts_free(struct http *http)
{
	struct http_fronts *f = http->fronts;
	if (f == NULL)
		return;
	close_all(f->fds, (int)f->count);
	pthread_mutex_destroy(&f->lock);
	free(f);
	http->fronts = NULL;
}

void
http_fronts_attach(void *arg, int control_fd)
{
	struct http *http = arg;
	struct http_fronts *f = http->fronts;
	if (f == NULL) {
		log_error("a front's control socket, but the server is not in front mode");
		close(control_fd);
		return;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = f->event_id };
	pthread_mutex_lock(&f->lock);
	int full = f->count >= FRONTS_MAX;
	int added = !full && epoll_ctl(http->epfd, EPOLL_CTL_ADD, control_fd, &ev) == 0;
	if (added) {
		f->draining[f->count] = 0;
		f->fds[f->count++] = control_fd;
	}
	pthread_mutex_unlock(&f->lock);
	if (added)
		return;
	if (full)
		front_warn(f, "%d fronts are attached already: closed a new one's control socket",
		    FRONTS_MAX);
	else
		log_error("cannot watch a front's control socket: %s", strerror(errno));
	close(control_fd);
}

/* The front hung up or broke its socket: only the event-loop thread
 * removes, so the descriptor is still ours to close. */
static void
detach(struct http *http, int fd)
{
	struct http_fronts *f = http->fronts;
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->count; i++) {
		if (f->fds[i] == fd) {
			f->count--;
			f->fds[i] = f->fds[f->count];
			f->draining[i] = f->draining[f->count];
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	epoll_ctl(http->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

/* Descriptors ---------------------------------------------------------------- */

static int
socket_option(int fd, int option)
{
	int value = -1;
	socklen_t len = sizeof(value);
	if (getsockopt(fd, SOL_SOCKET, option, &value, &len) == -1 || len != sizeof(value))
		return -1;
	return value;
}

/* Whether fd is a connected stream socket of the Unix domain (unix_domain
 * 1) or of the internet (0), with its peer's address in *ss, *len. */
static int
is_connected_stream(int fd, int unix_domain, struct sockaddr_storage *ss, socklen_t *len)
{
	struct stat st;
	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	int domain = socket_option(fd, SO_DOMAIN);
	if (socket_option(fd, SO_TYPE) != SOCK_STREAM || socket_option(fd, SO_ACCEPTCONN) != 0)
		return 0;
	*len = sizeof(*ss);
	if (getpeername(fd, (struct sockaddr *)ss, len) == -1 || ss->ss_family != domain)
		return 0;
	if (unix_domain)
		return domain == AF_UNIX;
	/* What libmicrohttpd's per-IP limit takes the address by: its size. */
	return (domain == AF_INET && *len == sizeof(struct sockaddr_in)) ||
	    (domain == AF_INET6 && *len == sizeof(struct sockaddr_in6));
}

/* Hands fd to libmicrohttpd, which closes it in every case.  Non-blocking
 * first: in epoll mode 0.9.75 would go on with a blocking socket if it
 * could not make it non-blocking itself, and stall the event loop. */
static int
add_connection(struct http *http, int fd, const struct sockaddr *addr, socklen_t len)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		close(fd);
		return -1;
	}
	if (MHD_add_connection(http->daemon, fd, addr, len) != MHD_YES) {
		/* Past a connection limit, logged by http_log_mhd. */
		log_debug("libmicrohttpd refused a front's connection: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
add_internal(struct http *http, int fd)
{
	return add_connection(http, fd, (const struct sockaddr *)&internal_address,
	    sizeof(sa_family_t));
}

/* Replay -------------------------------------------------------------------- */

static int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Every send and receive on fd gives up after ms. */
static int
bound_io(int fd, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 ? 0 : -1;
}

/* To the client: its socket's flags are never changed (a front may have
 * handed the same socket over twice, and libmicrohttpd may serve the
 * other copy), so MSG_DONTWAIT and poll up to the relay's deadline. */
static int
send_to_client(const struct relay *rl, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(rl->client, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;
		int64_t left = (rl->deadline_ns - frame_now_ns()) / 1000000;
		struct pollfd pfd = { .fd = rl->client, .events = POLLOUT };
		if (left <= 0 || poll(&pfd, 1, (int)(left > 60000 ? 60000 : left)) < 0)
			return -1;
	}
	return 0;
}

static void *
relay_run(void *arg)
{
	struct relay *rl = arg;
	char buf[16384];
	off_t off = 0;
	/* If the server answers before it read everything (413, say) and
	 * closes, the send fails: its answer is still relayed below. */
	while (off < rl->size) {
		size_t want = rl->size - off < (off_t)sizeof(buf) ? (size_t)(rl->size - off) :
		    sizeof(buf);
		ssize_t n = pread(rl->memfd, buf, want, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto done;	/* a request cut short would only wait */
		if (send_all(rl->end, buf, (size_t)n) == -1)
			break;
		off += n;
	}
	for (;;) {
		ssize_t n = recv(rl->end, buf, sizeof(buf), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0 || send_to_client(rl, buf, (size_t)n) == -1)
			break;
	}
	shutdown(rl->client, SHUT_WR);
done:
	close(rl->end);
	close(rl->memfd);
	close(rl->client);
	free(rl);
	atomic_fetch_sub(&relays_running, 1);
	return NULL;
}

/* FRONT_MSG_REPLAY: takes ownership of both descriptors. */
static void
replay(struct http *http, int client, int memfd)
{
	struct http_fronts *f = http->fronts;
	struct sockaddr_storage ss;
	socklen_t len;
	struct stat st;
	int pair[2] = { -1, -1 };
	struct relay *rl = NULL;
	int counted = 0;
	size_t max = atomic_load(&http->max_body_bytes) + REPLAY_SLACK_BYTES;
	if (!is_connected_stream(client, 0, &ss, &len) || fstat(memfd, &st) == -1 ||
	    !S_ISREG(st.st_mode) || st.st_size <= 0 || (uintmax_t)st.st_size > max) {
		front_warn(f, "a replay without a client connection and a request of at most "
		    "%zu bytes: refused", max);
		goto fail;
	}
	if (atomic_fetch_add(&relays_running, 1) >= RELAYS_MAX) {
		atomic_fetch_sub(&relays_running, 1);
		front_warn(f, "%d replayed requests are being answered already: closed a client's "
		    "connection", RELAYS_MAX);
		goto fail;
	}
	counted = 1;
	unsigned ms = http->opts.max_timeout_ms + RELAY_SLACK_MS;
	if ((rl = malloc(sizeof(*rl))) == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == -1 ||
	    bound_io(pair[1], ms) == -1) {
		log_error("cannot answer a replayed request: %s", strerror(errno));
		goto fail;
	}
	*rl = (struct relay){ .end = pair[1], .memfd = memfd, .client = client,
	    .size = st.st_size, .deadline_ns = frame_now_ns() + (int64_t)ms * 1000000 };
	int served = pair[0];
	pair[0] = -1;		/* libmicrohttpd's now, even if it refuses */
	if (add_internal(http, served) == -1)
		goto fail;
	pthread_attr_t attr;
	pthread_t thread;
	int started = pthread_attr_init(&attr) == 0;
	if (started) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&thread, &attr, relay_run, rl) == 0;
		pthread_attr_destroy(&attr);
	}
	if (started)
		return;
	log_error("cannot start the thread of a replayed request");
fail:
	/* Closing our end tells libmicrohttpd the request ended. */
	close_all((int[]){ pair[0], pair[1], client, memfd }, 4);
	free(rl);
	if (counted)
		atomic_fetch_sub(&relays_running, 1);
}

/* Messages ------------------------------------------------------------------ */

/* Acts on one message; takes ownership of fds (nfds of them). */
static void
mark_draining(struct http_fronts *f, int fd)
{
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->count; i++)
		if (f->fds[i] == fd)
			f->draining[i] = 1;
	pthread_mutex_unlock(&f->lock);
}

static void
take_message(struct http *http, int from, const unsigned char *packet, size_t len, int *fds,
    int nfds)
{
	struct http_fronts *f = http->fronts;
	struct sockaddr_storage ss;
	socklen_t addrlen;
	struct front_msg m;
	if (len < sizeof(m)) {
		front_warn(f, "a message of %zu bytes: dropped", len);
		goto drop;
	}
	memcpy(&m, packet, sizeof(m));
	if ((m.type == FRONT_MSG_STATS || m.type == FRONT_MSG_ACCESS) && nfds == 0) {
		int bad = (m.type == FRONT_MSG_STATS ? http_fronts_take_stats :
		    http_fronts_take_access)(packet + sizeof(m), len - sizeof(m), m.count);
		if (bad)
			front_warn(f, "a report (type %u) of %zu bytes with %d invalid entries "
			    "(-1: all)", m.type, len, bad);
		return;
	}
	/* The other messages are the header alone; count is for STATS. */
	if (len != sizeof(m))
		goto invalid;
	switch (m.type) {
	case FRONT_MSG_DRAINING:
		if (nfds != 0)
			goto invalid;
		mark_draining(f, from);
		return;
	case FRONT_MSG_OPEN:
		if (nfds != 1)
			goto invalid;
		if (!is_connected_stream(fds[0], 1, &ss, &addrlen)) {
			front_warn(f, "OPEN with a descriptor that is no Unix stream socket: "
			    "closed it");
			goto drop;
		}
		add_internal(http, fds[0]);
		return;
	case FRONT_MSG_ADOPT:
		if (nfds < 1)
			goto invalid;
		for (int i = 0; i < nfds; i++) {
			if (is_connected_stream(fds[i], 0, &ss, &addrlen)) {
				add_connection(http, fds[i], (const struct sockaddr *)&ss, addrlen);
			} else {
				front_warn(f, "ADOPT with a descriptor that is no TCP connection: "
				    "closed it");
				close(fds[i]);
			}
		}
		return;
	case FRONT_MSG_REPLAY: {
		if (nfds != 2)
			goto invalid;
		/* The client is the socket, the request the file, in any order. */
		struct stat st;
		int first_is_file = fstat(fds[0], &st) == 0 && S_ISREG(st.st_mode);
		replay(http, fds[first_is_file ? 1 : 0], fds[first_is_file ? 0 : 1]);
		return;
	}
	default:
		break;
	}
invalid:
	front_warn(f, "a message of type %u with %zu bytes and %d descriptors: dropped",
	    m.type, len, nfds);
drop:
	close_all(fds, nfds);
}

/* The descriptors of a message (SCM_RIGHTS), at most FRONT_FDS_MAX; any
 * beyond are closed (the kernel truncates first, but never trust). */
static int
take_descriptors(struct msghdr *msg, int *fds)
{
	int nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (nfds < FRONT_FDS_MAX)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	return nfds;
}

/* Whether the front hung up: recvmsg's 0 is also an empty packet. */
static int
hung_up(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

/* Reads one control socket.  -1: the front is gone (or its socket broke). */
static int
serve_control(struct http *http, int fd)
{
	for (int round = 0; round < MESSAGES_PER_ROUND; round++) {
		union {
			struct front_msg msg;
			unsigned char bytes[FRONT_PACKET_MAX];
		} packet;
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * FRONT_FDS_MAX)];
		} control;
		struct iovec iov = { .iov_base = packet.bytes, .iov_len = sizeof(packet.bytes) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
		    .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		int fds[FRONT_FDS_MAX];
		int nfds = take_descriptors(&msg, fds);
		if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			front_warn(http->fronts, "a message longer than %d bytes or with more than "
			    "%d descriptors: dropped", FRONT_PACKET_MAX, FRONT_FDS_MAX);
			close_all(fds, nfds);
			continue;
		}
		if (n == 0 && nfds == 0 && hung_up(fd))
			return -1;
		take_message(http, fd, packet.bytes, (size_t)n, fds, nfds);
	}
	return 0;
}

void
http_fronts_serve(struct http *http)
{
	struct http_fronts *f = http->fronts;
	if (f == NULL)
		return;
	int fds[FRONTS_MAX];
	pthread_mutex_lock(&f->lock);
	unsigned n = f->count;
	memcpy(fds, f->fds, n * sizeof(fds[0]));
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < n; i++)
		if (serve_control(http, fds[i]) == -1)
			detach(http, fds[i]);
}

/* New connections -------------------------------------------------------- */

/* Hands fd to the next front in turn that takes it: 0, or -1 if none did. */
static int
give_to_a_front(struct http_fronts *f, int fd)
{
	struct front_msg m = { .type = FRONT_MSG_CONNECTION };
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	int given = -1;
	pthread_mutex_lock(&f->lock);
	for (unsigned tries = 0; tries < f->count && given == -1; tries++) {
		unsigned i = f->next++ % f->count;
		if (!f->draining[i] &&
		    sendmsg(f->fds[i], &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(m))
			given = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return given;
}

void
http_fronts_accept(struct http *http)
{
	for (int i = 0; i < ACCEPTS_PER_ROUND; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(http->listen_fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE)
				front_warn(http->fronts, "accept: %s", strerror(errno));
			return;
		}
		/* Without a front to take it (none up, all draining, the
		 * server draining) this process serves it, as without fronts. */
		if (!atomic_load(&http->draining) && give_to_a_front(http->fronts, fd) == 0) {
			close(fd);
			continue;
		}
		add_connection(http, fd, (const struct sockaddr *)&ss, len);
	}
}
