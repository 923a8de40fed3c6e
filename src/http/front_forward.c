/*
 * front_forward.c - what a front hands to the supervisor (front_proto.h).
 *
 * A request the front does not answer itself goes, as HTTP, over a fresh
 * socketpair whose other end the supervisor serves as an internal
 * connection: the supervisor's server stays the one place that knows every
 * route, problem and limit.  The request asks for "Connection: close", so
 * the answer is whatever comes back before the end of the stream.
 *
 * When the process must die in the middle of a job (hard stop), the
 * front's last words hand its connections over: the idle ones as they are
 * (their next request is still in the kernel), and every request handed
 * to the lane or the supervisor as a replay: the client's connection with
 * the request written out in full.  Everything needed is built before the
 * job runs: the signal handler only formats a number and makes system
 * calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "common/frame.h"
#include "common/front_proto.h"
#include "http/front_internal.h"
#include "vm/lane.h"

/* The largest answer taken from an internal connection (front.h). */
static size_t answer_max = (size_t)FRAME_MAX_PAYLOAD;

void
front_forward_init(size_t max_answer_bytes)
{
	answer_max = max_answer_bytes;
}

/* Headers about the client's connection, or ours to set: not forwarded. */
static const char *const hop_headers[] = {
	"Connection", "Keep-Alive", "Content-Length", "Transfer-Encoding", "TE",
	"Upgrade", "Expect", "Proxy-Connection", "Trailer", NULL
};

static int
is_hop_header(const char *name)
{
	if (strncasecmp(name, "X-Luapoold-", 11) == 0)
		return 1;	/* only the front may say these */
	for (const char *const *h = hop_headers; *h; h++)
		if (strcasecmp(name, *h) == 0)
			return 1;
	return 0;
}

struct head_builder {
	struct buffer *b;
	int bad;
};

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct head_builder *hb = cls;
	if (key == NULL || value == NULL || is_hop_header(key))
		return MHD_YES;
	hb->bad |= buffer_append_string(hb->b, key);
	hb->bad |= buffer_append(hb->b, ": ", 2);
	hb->bad |= buffer_append_string(hb->b, value);
	hb->bad |= buffer_append(hb->b, "\r\n", 2);
	return MHD_YES;
}

void
front_forward_name_client(struct front_conn *c, struct MHD_Connection *mhd)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mhd,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	c->client[0] = '\0';
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr,
		    c->client, sizeof(c->client));
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr,
		    c->client, sizeof(c->client));
}

int
front_forward_build_head(struct front_req *req, const char *url, int with_deadline)
{
	struct buffer *b = &req->head;
	struct head_builder hb = { .b = b };
	buffer_reset(b);
	req->deadline_at = 0;
	hb.bad |= buffer_append_string(b, req->method) | buffer_append_char(b, ' ') |
	    buffer_append_string(b, url) | buffer_append_string(b, " HTTP/1.1\r\n");
	MHD_get_connection_values(req->mhd, MHD_HEADER_KIND, add_header, &hb);
	if (req->conn->client[0] != '\0')
		hb.bad |= buffer_append_string(b, FRONT_HEADER_CLIENT ": ") |
		    buffer_append_string(b, req->conn->client) | buffer_append(b, "\r\n", 2);
	if (with_deadline) {
		hb.bad |= buffer_append_string(b, FRONT_HEADER_DEADLINE ": ");
		req->deadline_at = b->len;
		hb.bad |= buffer_append(b, "0000000000\r\n", FRONT_DEADLINE_DIGITS + 2);
	}
	char length[64];
	int n = snprintf(length, sizeof(length), "Connection: close\r\nContent-Length: %zu\r\n\r\n",
	    req->body.len);
	hb.bad |= buffer_append(b, length, (size_t)n);
	if (hb.bad) {
		buffer_reset(b);	/* never a head cut short */
		req->deadline_at = 0;
		return -1;
	}
	return 0;
}

/* Async-signal-safe: digits only, into room that is already there. */
void
front_forward_set_deadline(struct front_req *req, int64_t deadline_ns, int64_t now_ns)
{
	if (req->deadline_at == 0)
		return;
	int64_t left = (deadline_ns - now_ns) / 1000000;
	uint64_t ms = left > 1 ? (uint64_t)left : 1;	/* the pool says if it is too late */
	char *at = req->head.data + req->deadline_at;
	for (int i = FRONT_DEADLINE_DIGITS - 1; i >= 0; i--, ms /= 10)
		at[i] = (char)('0' + ms % 10);
}

/* One message on the control socket, with descriptors; async-signal-safe. */
static int
send_control(uint32_t type, const int *fds, unsigned nfds)
{
	struct front_msg m = { .type = type, .count = 0 };
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * FRONT_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t n;
	do
		n = sendmsg(FRONT_CONTROL_FD, &msg, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)sizeof(m) ? 0 : -1;
}

int
front_forward_start(struct front_req *req, int epfd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if (send_control(FRONT_MSG_OPEN, &sv[1], 1) == -1) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
	req->fd = sv[0];
	req->sent = 0;
	buffer_reset(&req->in);
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = req };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, req->fd, &ev) == -1) {
		close(req->fd);
		req->fd = -1;
		return -1;
	}
	return 0;
}

void
front_forward_end(struct front_req *req, int epfd)
{
	if (req->fd == -1)
		return;
	epoll_ctl(epfd, EPOLL_CTL_DEL, req->fd, NULL);
	close(req->fd);
	req->fd = -1;
}

static int
write_some(struct front_req *req, int epfd)
{
	size_t total = req->head.len + req->body.len;
	while (req->sent < total) {
		struct iovec iov[2];
		int n = 0;
		if (req->sent < req->head.len)
			iov[n++] = (struct iovec){ req->head.data + req->sent, req->head.len - req->sent };
		size_t body_off = req->sent > req->head.len ? req->sent - req->head.len : 0;
		if (req->body.len > body_off)
			iov[n++] = (struct iovec){ req->body.data + body_off, req->body.len - body_off };
		ssize_t w = writev(req->fd, iov, n);
		if (w > 0) {
			req->sent += (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno == EAGAIN)
			return 0;
		if (w == -1 && (errno == EPIPE || errno == ECONNRESET)) {
			/* The supervisor answered from the head alone (401, 413,
			 * 503) and closed: read what it said. */
			req->sent = total;
			break;
		}
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = req };
	return epoll_ctl(epfd, EPOLL_CTL_MOD, req->fd, &ev);
}

/* "run;dur=1.234" in a Server-Timing value: the job's run time. */
static double
run_ms_of(const char *value, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i++)
		if (memcmp(value + i, "run;dur=", 8) == 0)
			return strtod(value + i + 8, NULL);
	return -1;
}

static int
is_dropped_answer_header(const char *name, size_t len)
{
	static const char *const dropped[] = {
		"Connection", "Content-Length", "Date", "Transfer-Encoding", "Keep-Alive", NULL
	};
	for (const char *const *d = dropped; *d; d++)
		if (strlen(*d) == len && strncasecmp(name, *d, len) == 0)
			return 1;
	return 0;
}

/* The supervisor's answer: "HTTP/1.1 NNN ...", headers, body. */
static int
parse_answer(struct front_req *req)
{
	struct buffer *in = &req->in;
	if (buffer_append_char(in, '\0') == -1)
		return -1;
	in->len--;
	char *end = strstr(in->data, "\r\n\r\n");
	if (end == NULL || in->len < 12 || strncmp(in->data, "HTTP/1.", 7) != 0)
		return -1;
	unsigned status = (unsigned)strtoul(in->data + 9, NULL, 10);
	if (status < 100 || status > 599)
		return -1;
	size_t body_at = (size_t)(end + 4 - in->data);
	size_t body_len = in->len - body_at;
	buffer_reset(&req->resp_headers);
	req->run_ms = -1;
	int bad = 0;
	char *line = strstr(in->data, "\r\n") + 2;
	while (line < end) {
		char *eol = strstr(line, "\r\n");
		char *colon = memchr(line, ':', (size_t)(eol - line));
		if (colon != NULL) {
			size_t nlen = (size_t)(colon - line);
			char *v = colon + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
				size_t cl = (size_t)strtoull(v, NULL, 10);
				if (cl < body_len)
					body_len = cl;
			} else if (!is_dropped_answer_header(line, nlen)) {
				if (nlen == 13 && strncasecmp(line, "Server-Timing", 13) == 0)
					req->run_ms = run_ms_of(v, (size_t)(eol - v));
				bad |= buffer_append(&req->resp_headers, line, nlen) |
				    buffer_append_char(&req->resp_headers, '\0') |
				    buffer_append(&req->resp_headers, v, (size_t)(eol - v)) |
				    buffer_append_char(&req->resp_headers, '\0');
			}
		}
		line = eol + 2;
	}
	if (bad)
		return -1;
	free(req->resp_body);
	req->resp_body = malloc(body_len ? body_len : 1);
	if (req->resp_body == NULL)
		return -1;
	memcpy(req->resp_body, in->data + body_at, body_len);
	req->resp_len = body_len;
	req->status = status;
	req->ready = 1;
	buffer_free(in);
	return 1;
}

int
front_forward_io(struct front_req *req, int epfd)
{
	if (req->sent < req->head.len + req->body.len && write_some(req, epfd) == -1)
		return -1;
	for (;;) {
		if (buffer_reserve(&req->in, 65536) == -1 || req->in.len > answer_max)
			return -1;
		ssize_t n = read(req->fd, req->in.data + req->in.len, req->in.cap - req->in.len - 1);
		if (n > 0) {
			req->in.len += (size_t)n;
			continue;
		}
		if (n == 0)
			return parse_answer(req);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		/* A reset after an answer (it closed with our body unread). */
		return req->in.len > 0 ? parse_answer(req) : -1;
	}
}

/* Async-signal-safe from here on. */

static void
adopt(const int *fds, unsigned n)
{
	if (n > 0)
		send_control(FRONT_MSG_ADOPT, fds, n);
}

void
front_forward_adopt_one(int fd)
{
	adopt(&fd, 1);
	close(fd);
}

void
front_forward_adopt_idle(struct front_conn *head)
{
	int fds[FRONT_FDS_MAX];
	unsigned n = 0;
	for (struct front_conn *c = head; c != NULL; c = c->next) {
		if (c->state != FRONT_IDLE || c->fd < 0)
			continue;
		fds[n++] = c->fd;
		if (n == FRONT_FDS_MAX) {
			adopt(fds, n);
			n = 0;
		}
	}
	adopt(fds, n);
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

static void
write_str(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
}

static void
write_number(int fd, uint64_t n)
{
	char digits[24];
	int i = sizeof(digits);
	do
		digits[--i] = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	write_all(fd, digits + i, sizeof(digits) - (size_t)i);
}

static enum MHD_Result
write_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	int fd = *(const int *)cls;
	if (key != NULL && value != NULL && !is_hop_header(key)) {
		write_str(fd, key);
		write_all(fd, ": ", 2);
		write_str(fd, value);
		write_all(fd, "\r\n", 2);
	}
	return MHD_YES;
}

/* The head of a lane job, written where front_forward_build_head would
 * have put it: libmicrohttpd is not running (the job is), so walking its
 * header list allocates nothing and takes no lock. */
static void
write_lane_head(int fd, struct front_conn *c, struct front_req *req)
{
	write_str(fd, req->method);
	write_all(fd, " ", 1);
	write_str(fd, req->url);
	write_str(fd, " HTTP/1.1\r\n");
	MHD_get_connection_values(req->mhd, MHD_HEADER_KIND, write_header, &fd);
	if (c->client[0] != '\0') {
		write_str(fd, FRONT_HEADER_CLIENT ": ");
		write_str(fd, c->client);
		write_all(fd, "\r\n", 2);
	}
	int64_t left = (req->deadline_ns - frame_now_ns()) / 1000000;
	write_str(fd, FRONT_HEADER_DEADLINE ": ");
	write_number(fd, left > 1 ? (uint64_t)left : 1);
	write_str(fd, "\r\nConnection: close\r\nContent-Length: ");
	write_number(fd, req->body.len);
	write_str(fd, "\r\n\r\n");
}

static void
replay(struct front_conn *c)
{
	struct front_req *req = c->req;
	int memfd = memfd_create("luapoold-replay", MFD_CLOEXEC);
	if (memfd == -1)
		return;
	if (req->head.len == 0 && req->url != NULL) {
		write_lane_head(memfd, c, req);
	} else {
		front_forward_set_deadline(req, req->deadline_ns, frame_now_ns());
		write_all(memfd, req->head.data, req->head.len);
	}
	write_all(memfd, req->body.data, req->body.len);
	int fds[2] = { c->fd, memfd };
	send_control(FRONT_MSG_REPLAY, fds, 2);
	close(memfd);
}

int
front_forward_receive(struct front_msg *m, int *fds, unsigned *nfds)
{
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * FRONT_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	*nfds = 0;
	ssize_t n = recvmsg(FRONT_CONTROL_FD, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == 0)
		return -1;
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (*nfds < FRONT_FDS_MAX)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (n != (ssize_t)sizeof(*m))
		m->type = 0;	/* not one of ours: its descriptors are the caller's to close */
	return 1;
}

/* Connections the supervisor dealt that this front never took (they wait
 * in the control socket): back to it.  Async-signal-safe. */
void
front_forward_adopt_undelivered(void)
{
	struct front_msg m;
	int fds[FRONT_FDS_MAX];
	unsigned n;
	for (int round = 0; round < 1024 && front_forward_receive(&m, fds, &n) == 1; round++)
		adopt(fds, n);
}

void
front_forward_hand_over(struct front_conn *head)
{
	front_forward_adopt_idle(head);
	front_forward_adopt_undelivered();
	for (struct front_conn *c = head; c != NULL; c = c->next)
		if (c->state == FRONT_HANDED && c->req != NULL && c->fd >= 0)
			replay(c);
}
