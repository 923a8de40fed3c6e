/*
 * front_control.c - what a front says to the supervisor besides hand-offs
 * (front_forward.c), over its control socket: the connections it closed
 * (so the supervisor's table counts every connection of the server), its
 * answer to "make room", and the request bytes it borrows out of the
 * server's max_inflight_bytes and gives back.
 *
 * Borrowing waits for the supervisor's answer (LEND), within a libmicrohttpd
 * callback: whatever else the supervisor sends meanwhile (a new connection,
 * "make room") is kept, in order, for front_control_next.  A front borrows
 * only when the bytes it was lent run out, so not for every request.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "http/front_internal.h"

#define KEPT_MAX	256	/* messages that came while a LEND was awaited */
#define LEND_WAIT_MS	1000	/* then the request is refused (503) */

/* New connections that came while a LEND was awaited; read by the
 * last words too: a slot is filled before it is counted. */
static struct {
	struct front_msg m;
	int fd;			/* its descriptor (CONNECTION), or -1 */
} kept[KEPT_MAX];
static volatile sig_atomic_t kept_first, kept_count;
/* SHUTDOWN and MAKE_ROOM that came meanwhile: flags, never dropped. */
static int shutdown_kept, room_kept;
static unsigned lends_owed;		/* BORROWs sent whose LEND has not come */

static int
say(const void *msg, size_t len)
{
	/* A full socket means a supervisor that is not reading: nothing
	 * waits on it here; the supervisor's count is then off until this
	 * front dies, which gives its connections back. */
	if (send(FRONT_CONTROL_FD, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len)
		return 0;
	log_debug("a message to the supervisor was not sent: %s", strerror(errno));
	return -1;
}

int
front_control_init(void)
{
	/* Bounds the wait for a LEND; every other read of the socket is
	 * non-blocking. */
	struct timeval tv = { .tv_sec = LEND_WAIT_MS / 1000,
	    .tv_usec = (LEND_WAIT_MS % 1000) * 1000 };
	return setsockopt(FRONT_CONTROL_FD, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* The fstat system call itself: libc's fstat is newfstatat, which takes a
 * path and which the sandbox refuses. */
uint64_t
front_control_inode(int fd)
{
	struct stat st;
	return fd >= 0 && syscall(SYS_fstat, fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

void
front_control_closed(uint64_t ino)
{
	if (ino == 0)
		return;
	struct {
		struct front_msg m;
		uint64_t ino;
	} msg = { .m = { .type = FRONT_MSG_CLOSED, .count = 1 }, .ino = ino };
	say(&msg, sizeof(msg));
}

static void
front_control_room(int closed_one)
{
	struct front_msg m = { .type = FRONT_MSG_ROOM, .count = closed_one ? 1 : 0 };
	say(&m, sizeof(m));
}

int
front_control_return(size_t bytes)
{
	struct front_msg m = { .type = FRONT_MSG_RETURN, .count = (uint32_t)(bytes / 1024) };
	return m.count > 0 ? say(&m, sizeof(m)) : 0;
}

/* A LEND whose BORROW gave up waiting: its bytes go back. */
static void
give_back_late(const struct front_msg *m)
{
	if (lends_owed > 0)
		lends_owed--;
	front_control_return((size_t)m->count * 1024);
}

/* A message that is no answer to BORROW: kept for front_control_next.
 * Past KEPT_MAX a new connection is closed (and said so). */
static void
keep(const struct front_msg *m, const int *fds, unsigned n)
{
	int fd = n > 0 ? fds[0] : -1;
	for (unsigned i = 1; i < n; i++)
		close(fds[i]);
	if (m->type == FRONT_MSG_SHUTDOWN || m->type == FRONT_MSG_MAKE_ROOM) {
		*(m->type == FRONT_MSG_SHUTDOWN ? &shutdown_kept : &room_kept) = 1;
	} else if (kept_count < KEPT_MAX && m->type == FRONT_MSG_CONNECTION && fd != -1) {
		unsigned i = ((unsigned)kept_first + (unsigned)kept_count) % KEPT_MAX;
		kept[i].m = *m;
		kept[i].fd = fd;
		kept_count++;
		return;
	}
	if (fd != -1) {
		front_control_closed(front_control_inode(fd));
		close(fd);
	}
}

size_t
front_control_borrow(size_t need, size_t want)
{
	struct {
		struct front_msg m;
		struct front_borrow b;
	} msg = { .m = { .type = FRONT_MSG_BORROW },
		  .b = { .want_kib = (uint32_t)((want + 1023) / 1024),
			 .need_kib = (uint32_t)((need + 1023) / 1024) } };
	if (say(&msg, sizeof(msg)) == -1)
		return 0;
	lends_owed++;
	for (;;) {
		struct front_msg m;
		int fds[FRONT_FDS_MAX];
		unsigned n;
		int rc = front_forward_receive(&m, fds, &n);
		if (rc == -1)
			return 0;
		/* LENDs come in the order of the BORROWs: earlier ones first. */
		if (rc == 1 && m.type == FRONT_MSG_LEND && lends_owed > 1) {
			give_back_late(&m);
			continue;
		}
		if (rc == 1 && m.type == FRONT_MSG_LEND) {
			lends_owed = 0;
			return (size_t)m.count * 1024;
		}
		if (rc == 1) {
			keep(&m, fds, n);
			continue;
		}
		/* Sleeps until a message comes (SO_RCVTIMEO bounds it). */
		char byte;
		ssize_t peeked = recv(FRONT_CONTROL_FD, &byte, 1, MSG_PEEK);
		if (peeked == 0)
			return 0;	/* the supervisor is gone */
		if (peeked == -1 && errno != EINTR) {
			log_warn("the supervisor did not answer a request for request bytes "
			    "within %d ms: %s", LEND_WAIT_MS, strerror(errno));
			return 0;
		}
	}
}

int
front_control_pending(void)
{
	return kept_count > 0 || shutdown_kept || room_kept;
}

int
front_control_next(struct front_msg *m, int *fds, unsigned *n)
{
	*n = 0;
	if (shutdown_kept || room_kept) {
		*m = (struct front_msg){ .type = shutdown_kept ? FRONT_MSG_SHUTDOWN :
		    FRONT_MSG_MAKE_ROOM };
		*(shutdown_kept ? &shutdown_kept : &room_kept) = 0;
		return 1;
	}
	if (kept_count > 0) {
		*m = kept[kept_first].m;
		fds[(*n)++] = kept[kept_first].fd;
		kept_first = (kept_first + 1) % KEPT_MAX;
		kept_count--;
		return 1;
	}
	for (;;) {
		int rc = front_forward_receive(m, fds, n);
		if (rc != 1 || m->type != FRONT_MSG_LEND)
			return rc;
		give_back_late(m);
	}
}

void
front_control_adopt_kept(void)
{
	struct front_msg m;
	int fds[1];
	unsigned n;
	while (kept_count > 0) {
		front_control_next(&m, fds, &n);
		if (n == 1 && m.type == FRONT_MSG_CONNECTION)
			front_forward_adopt_one(fds[0]);
		else if (n == 1)
			close(fds[0]);
	}
}

/* MAKE_ROOM: the connection idle here the longest goes (libmicrohttpd
 * sees it fail and closes it, which the supervisor hears of). */
int
front_control_make_room(struct front_conn *head)
{
	struct front_conn *oldest = NULL;
	for (struct front_conn *c = head; c != NULL; c = c->next)
		if (c->state == FRONT_IDLE && c->fd >= 0 && c->read_deadline_ns &&
		    (oldest == NULL || c->read_deadline_ns < oldest->read_deadline_ns))
			oldest = c;
	if (oldest != NULL) {
		shutdown(oldest->fd, SHUT_RDWR);
		oldest->read_deadline_ns = 0;
	}
	front_control_room(oldest != NULL);
	return oldest != NULL;
}
