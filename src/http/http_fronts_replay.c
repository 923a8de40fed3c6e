/*
 * http_fronts_replay.c - front mode: a request a front read but could not
 * answer (it was stopped or crashed holding it; FRONT_MSG_REPLAY) answered
 * here.  A relay thread of its own feeds the request, from the front's
 * memfd, to an internal connection and copies the answer to the client,
 * with blocking I/O bounded by socket timeouts.  It touches nothing of
 * struct http, so http_stop never waits for one; its connection is not
 * counted in the connection table (at most RELAYS_MAX at once, each
 * closed after its answer).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "http/http_internal.h"

#define RELAYS_MAX		64	/* replayed requests answered at once */
#define REPLAY_SLACK_BYTES	(64 * 1024)	/* a request's head beside its body */
#define RELAY_SLACK_MS		5000	/* past max_timeout_ms, a relay gives up */

/* One replayed request on its way: our end of the internal connection,
 * the request's bytes, the client. */
struct relay {
	int end, memfd, client;
	off_t size;
	int64_t deadline_ns;	/* the client must take the answer by then */
};

/* Relays outlive nothing but themselves: a count of the file's own. */
static atomic_uint relays_running;

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

const char *
http_fronts_replay(struct http *http, int client, int memfd)
{
	const char *refused = NULL;
	struct sockaddr_storage ss;
	socklen_t len;
	struct stat st;
	int pair[2] = { -1, -1 };
	struct relay *rl = NULL;
	int counted = 0;
	size_t max = atomic_load(&http->max_body_bytes) + REPLAY_SLACK_BYTES;
	if (!http_fronts_fds_is_stream(client, 0, &ss, &len) || fstat(memfd, &st) == -1 ||
	    !S_ISREG(st.st_mode) || st.st_size <= 0 || (uintmax_t)st.st_size > max) {
		refused = "no client connection, or no request of at most max_body_bytes + 64 KiB";
		goto fail;
	}
	if (atomic_fetch_add(&relays_running, 1) >= RELAYS_MAX) {
		atomic_fetch_sub(&relays_running, 1);
		refused = "64 replayed requests are being answered already: closed a client's "
		    "connection";
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
	if (http_fronts_fds_serve_internal(http, served) == -1)
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
		return NULL;
	log_error("cannot start the thread of a replayed request");
fail:
	/* Closing our end tells libmicrohttpd the request ended. */
	for (int i = 0; i < 2; i++)
		if (pair[i] != -1)
			close(pair[i]);
	close(client);
	close(memfd);
	free(rl);
	if (counted)
		atomic_fetch_sub(&relays_running, 1);
	return refused;
}
