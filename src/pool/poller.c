/*
 * poller.c - the dispatcher's epoll set: one key per event source (the
 * wake-up eventfd, each worker's socket, pidfd and stderr pipe) and
 * registration.
 * Knows nothing of jobs; never blocks.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "pool/poller.h"

uint64_t
poller_key(unsigned kind, unsigned index)
{
	return ((uint64_t)index << 2) | kind;
}

void
poller_watch(struct luapool *pool, int fd, uint32_t events, uint64_t key, int op)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };
	if (epoll_ctl(pool->epfd, op, fd, &ev) == -1)
		log_error("epoll_ctl: %s", strerror(errno));
}

void
poller_close_socket(struct luapool *pool, struct worker *w)
{
	if (w->fd == -1)
		return;
	epoll_ctl(pool->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
}
