/*
 * frame.c - reading and writing frames (see frame.h).  Used blocking by the
 * worker; the pool does its own non-blocking I/O with the same header.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"

int64_t
frame_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
frame_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n >= 0) {
			p += n;
			len -= (size_t)n;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

int
frame_send(int fd, struct frame_header *h, const void *payload, size_t len)
{
	h->length = (uint32_t)len;
	struct iovec iov[2] = {
		{ .iov_base = h, .iov_len = sizeof(*h) },
		{ .iov_base = (void *)(uintptr_t)payload, .iov_len = len },
	};
	ssize_t n;
	do
		n = writev(fd, iov, len ? 2 : 1);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	size_t done = (size_t)n;
	if (done < sizeof(*h)) {
		if (frame_write_all(fd, (char *)h + done, sizeof(*h) - done) == -1)
			return -1;
		done = sizeof(*h);
	}
	done -= sizeof(*h);
	if (done < len)
		return frame_write_all(fd, (const char *)payload + done, len - done);
	return 0;
}

void
frame_split_error(const char *payload, size_t len, struct frame_error *out)
{
	const char *end = payload + len;
	const char *parts[5] = { NULL };
	const char *p = payload;
	for (int i = 0; i < 5 && p < end; i++) {
		parts[i] = p;
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		p = nul ? nul + 1 : end;
	}
	out->code = parts[0] ? parts[0] : end;
	out->message = parts[1] ? parts[1] : end;
	out->traceback = parts[2] && *parts[2] ? parts[2] : NULL;
	out->logs = parts[3] && *parts[3] ? parts[3] : NULL;
	out->error_value = parts[4] && *parts[4] ? parts[4] : NULL;
}
