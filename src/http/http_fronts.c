/*
 * http_fronts.c - front mode, the supervisor's side of front_proto.h: the
 * table of the fronts' control sockets, the messages read from them, and
 * the connections accepted here and dealt to the fronts in turn.
 *
 * A front is another process and may be buggy or taken over: every type,
 * count, length and value it sends is checked, every descriptor is checked
 * to be what its message says before it is used, and a descriptor is only
 * ever served as an HTTP connection (or, a replayed request, read).  Any
 * descriptor that arrives with a message refused here is closed.  The
 * warnings a front can cause are logged at most once every 10 s.
 *
 * The descriptors a front hands over are checked and served by
 * http_fronts_fds.c; only on internal connections (OPEN, REPLAY) are the
 * headers a front adds honoured (http_forwarded.c).
 *
 * The connections a front holds are counted here (http_fronts_conns.c):
 * the front reports those it closed, and when the table is full and a
 * client waits, one front at a time is asked to close its connection idle
 * the longest.  The request bytes a front holds are lent out of the
 * server's max_inflight_bytes (BORROW, LEND, RETURN) and come back when it
 * dies.  A replayed request is answered by http_fronts_replay.c.  This
 * file never parses HTTP.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <unistd.h>

#include "common/front_proto.h"
#include "common/frame.h"
#include "common/log.h"
#include "http/http.h"
#include "http/http_internal.h"

#define FRONTS_MAX		(2 * FRONT_SET_MAX)	/* a set, and the one a reload retires */
#define MESSAGES_PER_ROUND	256	/* per socket and event-loop round */
#define ACCEPTS_PER_ROUND	64	/* new connections per event-loop round */
#define WARN_INTERVAL_NS	(10 * 1000000000LL)

struct http_fronts {
	pthread_mutex_t lock;		/* fds and count; attach runs on another thread */
	int fds[FRONTS_MAX];
	int draining[FRONTS_MAX];	/* said FRONT_MSG_DRAINING: no new connections */
	unsigned count, next;		/* next: whose turn it is for a connection */
	uint32_t event_id;
	atomic_llong warned_ns;
	atomic_uint held_back;		/* warnings not logged since */
	/* Event-loop thread only. */
	unsigned room_next;		/* whose turn it is to make room */
	int64_t room_asked_ns;		/* a MAKE_ROOM unanswered since; 0: none */
	int room_asked;			/* the control socket asked */
	int64_t accept_again_ns;	/* accept failed for want of resources: retry then */
	int64_t per_ip_logged_ns;
};

#define ROOM_ANSWER_NS		(1000 * 1000000LL)	/* then ask another front */
#define ACCEPT_RETRY_NS		(100 * 1000000LL)	/* after EMFILE and the like */

/* Warnings ------------------------------------------------------------------ */

/* At most one every WARN_INTERVAL_NS, with the count of those held back. */
void
http_fronts_warn(struct http *http, const char *fmt, ...)
{
	struct http_fronts *f = http->fronts;
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
	/* The socket rides in its events: only that front's is read. */
	struct epoll_event ev = { .events = EPOLLIN,
	    .data.u64 = f->event_id | (uint64_t)(uint32_t)control_fd << 32 };
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
		http_fronts_warn(http, "%d fronts are attached already: closed a new one's control socket",
		    FRONTS_MAX);
	else
		log_error("cannot watch a front's control socket: %s", strerror(errno));
	close(control_fd);
}

/* Under the lock: where fd is in the table, or -1. */
static int
slot_of(const struct http_fronts *f, int fd)
{
	for (unsigned i = 0; i < f->count; i++)
		if (f->fds[i] == fd)
			return (int)i;
	return -1;
}

/* The front hung up or broke its socket: only the event-loop thread
 * removes, so the descriptor is still ours to close. */
static void
detach(struct http *http, int fd)
{
	struct http_fronts *f = http->fronts;
	pthread_mutex_lock(&f->lock);
	int i = slot_of(f, fd);
	if (i >= 0) {
		f->count--;
		f->fds[i] = f->fds[f->count];
		f->draining[i] = f->draining[f->count];
	}
	pthread_mutex_unlock(&f->lock);
	/* What it held died with it, or came back (ADOPT, REPLAY) before. */
	http_fronts_lend_front_gone(http, fd);
	http_fronts_conns_front_gone(http, fd);
	epoll_ctl(http->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

/* Messages ------------------------------------------------------------------ */

static void
mark_draining(struct http_fronts *f, int fd)
{
	pthread_mutex_lock(&f->lock);
	int i = slot_of(f, fd);
	if (i >= 0)
		f->draining[i] = 1;
	pthread_mutex_unlock(&f->lock);
}

/* Sends a header-only message; -1 if it could not go at once. */
static int
tell(int fd, uint32_t type, uint32_t count)
{
	struct front_msg m = { .type = type, .count = count };
	return send(fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -1;
}

static void
take_closed(struct http *http, int from, const unsigned char *payload, size_t len,
    uint32_t count)
{
	uint64_t inos[FRONT_CLOSED_MAX];
	if (count == 0 || count > FRONT_CLOSED_MAX || len != count * sizeof(uint64_t)) {
		http_fronts_warn(http, "CLOSED of %zu bytes for %u connections: dropped", len, count);
		return;
	}
	memcpy(inos, payload, len);
	http_fronts_conns_closed_by(http, from, inos, count);
}

/* Acts on one message; takes ownership of fds (nfds of them). */
static void
take_message(struct http *http, int from, const unsigned char *packet, size_t len, int *fds,
    int nfds)
{
	struct http_fronts *f = http->fronts;
	struct sockaddr_storage ss;
	socklen_t addrlen;
	struct front_msg m;
	if (len < sizeof(m)) {
		http_fronts_warn(http, "a message of %zu bytes: dropped", len);
		goto drop;
	}
	memcpy(&m, packet, sizeof(m));
	if ((m.type == FRONT_MSG_STATS || m.type == FRONT_MSG_ACCESS) && nfds == 0) {
		int bad = (m.type == FRONT_MSG_STATS ? http_fronts_take_stats :
		    http_fronts_take_access)(packet + sizeof(m), len - sizeof(m), m.count);
		if (bad)
			http_fronts_warn(http, "a report (type %u) of %zu bytes with %d invalid entries "
			    "(-1: all)", m.type, len, bad);
		return;
	}
	if (m.type == FRONT_MSG_CLOSED && nfds == 0) {
		take_closed(http, from, packet + sizeof(m), len - sizeof(m), m.count);
		return;
	}
	if (m.type == FRONT_MSG_BORROW && nfds == 0) {
		if (http_fronts_lend(http, from, packet + sizeof(m), len - sizeof(m)) == -1)
			http_fronts_warn(http, "BORROW of %zu bytes: dropped", len);
		return;
	}
	/* The other messages are the header alone. */
	if (len != sizeof(m))
		goto invalid;
	switch (m.type) {
	case FRONT_MSG_DRAINING:
		if (nfds != 0)
			goto invalid;
		mark_draining(f, from);
		return;
	case FRONT_MSG_RETURN:
		if (nfds != 0)
			goto invalid;
		if (http_fronts_lend_take_back(http, from, m.count) == -1)
			http_fronts_warn(http, "RETURN of %u KiB it was not lent: dropped", m.count);
		return;
	case FRONT_MSG_ROOM:
		if (nfds != 0 || m.count > 1 || f->room_asked_ns == 0 || from != f->room_asked)
			goto invalid;	/* not asked */
		f->room_asked_ns = 0;
		http->room_answer = 1 + (int)m.count;	/* logged by the event loop */
		return;
	case FRONT_MSG_OPEN:
		if (nfds != 1)
			goto invalid;
		if (!http_fronts_fds_is_stream(fds[0], 1, &ss, &addrlen)) {
			http_fronts_warn(http, "OPEN with a descriptor that is no Unix stream socket: "
			    "closed it");
			goto drop;
		}
		http_fronts_fds_serve_internal(http, fds[0]);
		return;
	case FRONT_MSG_ADOPT:
		if (nfds < 1)
			goto invalid;
		for (int i = 0; i < nfds; i++) {
			if (http_fronts_fds_is_stream(fds[i], 0, &ss, &addrlen)) {
				http_fronts_fds_serve(http, fds[i], (const struct sockaddr *)&ss, addrlen);
			} else {
				http_fronts_warn(http, "ADOPT with a descriptor that is no TCP connection: "
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
		const char *refused = http_fronts_replay(http, fds[first_is_file ? 1 : 0],
		    fds[first_is_file ? 0 : 1]);
		if (refused != NULL)
			http_fronts_warn(http, "REPLAY refused: %s", refused);
		return;
	}
	default:
		break;
	}
invalid:
	http_fronts_warn(http, "a message of type %u with %zu bytes and %d descriptors: dropped",
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
			http_fronts_warn(http, "a message longer than %d bytes or with more than "
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
http_fronts_serve(struct http *http, int fd)
{
	struct http_fronts *f = http->fronts;
	if (f == NULL)
		return;
	/* Only a socket still attached: its number may have been reused. */
	pthread_mutex_lock(&f->lock);
	int attached = slot_of(f, fd) >= 0;
	pthread_mutex_unlock(&f->lock);
	if (attached && serve_control(http, fd) == -1)
		detach(http, fd);
}

/* New connections -------------------------------------------------------- */

/* Hands fd to the next front in turn that takes it: the control socket
 * of that front, or -1 if none did. */
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
			given = f->fds[i];
	}
	pthread_mutex_unlock(&f->lock);
	return given;
}

/* The table is full: the listening socket waits (the kernel keeps its
 * backlog) until a connection closes; http_fronts_accept_again. */
static void
pause_accepting(struct http *http)
{
	if (http->listen_paused || http->listen_fd == -1)
		return;
	epoll_ctl(http->epfd, EPOLL_CTL_DEL, http->listen_fd, NULL);
	http->listen_paused = 1;
}

void
http_fronts_accept_again(struct http *http)
{
	if (!http->listen_paused || http->listen_fd == -1 ||
	    http_fronts_conns_count(http) >= http->opts.max_connections ||
	    frame_now_ns() < http->fronts->accept_again_ns)
		return;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = HTTP_EVENT_LISTEN };
	if (epoll_ctl(http->epfd, EPOLL_CTL_ADD, http->listen_fd, &ev) == 0)
		http->listen_paused = 0;
}

static void
refuse_per_ip(struct http *http, int fd, const struct sockaddr_storage *ss)
{
	struct http_fronts *f = http->fronts;
	int64_t now = frame_now_ns();
	close(fd);
	if (now - f->per_ip_logged_ns < WARN_INTERVAL_NS)
		return;
	f->per_ip_logged_ns = now;
	char ip[INET6_ADDRSTRLEN] = "?";
	const void *a = ss->ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	inet_ntop(ss->ss_family, a, ip, sizeof(ip));
	log_warn("closed a new connection from %s: max_connections_per_ip (%u) of its "
	    "connections are open (at most one such warning every 10 s)", ip,
	    http->opts.max_connections_per_ip);
}

void
http_fronts_accept(struct http *http)
{
	for (int i = 0; i < ACCEPTS_PER_ROUND; i++) {
		if (http_fronts_conns_count(http) >= http->opts.max_connections) {
			pause_accepting(http);
			return;
		}
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(http->listen_fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			/* Out of descriptors or memory: the socket stays readable,
			 * so stop watching it for a while instead of spinning. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				http_fronts_warn(http, "accept: %s", strerror(errno));
				http->fronts->accept_again_ns = frame_now_ns() + ACCEPT_RETRY_NS;
				pause_accepting(http);
			}
			return;
		}
		uint64_t ino;
		enum http_admission verdict = http_fronts_conns_admit(http, fd, &ss, &ino);
		if (verdict == HTTP_PER_IP_LIMIT) {
			refuse_per_ip(http, fd, &ss);
			continue;
		}
		if (verdict != HTTP_ADMITTED) {
			close(fd);
			continue;
		}
		/* Without a front to take it (none up, all draining, the
		 * server draining) this process serves it, as without fronts,
		 * and counts it as it does its own. */
		int front = atomic_load(&http->draining) ? -1 : give_to_a_front(http->fronts, fd);
		if (front != -1)
			close(fd);
		else	/* its entry is then held by libmicrohttpd's copy */
			http_fronts_fds_serve(http, fd, (const struct sockaddr *)&ss, len);
		http_fronts_conns_dealt(http, ino, front);
	}
}

void
http_fronts_make_room(struct http *http)
{
	struct http_fronts *f = http->fronts;
	int64_t now = frame_now_ns();
	if (f->room_asked_ns != 0 && now - f->room_asked_ns < ROOM_ANSWER_NS)
		return;
	f->room_asked_ns = 0;
	pthread_mutex_lock(&f->lock);
	for (unsigned tries = 0; tries < f->count && f->room_asked_ns == 0; tries++) {
		unsigned i = f->room_next++ % f->count;
		if (!f->draining[i] && tell(f->fds[i], FRONT_MSG_MAKE_ROOM, 0) == 0) {
			f->room_asked_ns = now;
			f->room_asked = f->fds[i];
		}
	}
	pthread_mutex_unlock(&f->lock);
}

void
http_fronts_shutdown(struct http *http)
{
	struct http_fronts *f = http->fronts;
	if (f == NULL)
		return;
	if (http->listen_fd != -1) {
		if (!http->listen_paused)
			epoll_ctl(http->epfd, EPOLL_CTL_DEL, http->listen_fd, NULL);
		close(http->listen_fd);
		http->listen_fd = -1;
	}
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->count; i++)
		tell(f->fds[i], FRONT_MSG_SHUTDOWN, 0);
	pthread_mutex_unlock(&f->lock);
}
