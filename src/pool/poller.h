/*
 * poller.h - the dispatcher's epoll set (poller.c).  Dispatcher thread only.
 */
#ifndef POOL_POLLER_H
#define POOL_POLLER_H

#include <stdint.h>

#include "pool/pool_internal.h"

#define EVENT_WAKE	0u
#define EVENT_SOCKET	1u
#define EVENT_PIDFD	2u
#define EVENT_LOG	3u	/* the worker's stderr pipe (worker_log.c) */

/* The epoll key of one event source: kind in the low 2 bits, worker index above. */
uint64_t poller_key(unsigned kind, unsigned index);
/* epoll_ctl(op) for fd with events under key; logs a failure. */
void poller_watch(struct luapool *pool, int fd, uint32_t events, uint64_t key, int op);
/* Forgets and closes a worker's socket (no-op when already closed). */
void poller_close_socket(struct luapool *pool, struct worker *w);

#endif
