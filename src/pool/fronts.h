/*
 * fronts.h - the set of front processes (luapool-front, src/front/): each
 * serves HTTP itself on the connections the supervisor deals it over the
 * SOCK_SEQPACKET socket common/front_proto.h describes.  fronts.c starts
 * them, keeps `count` of them running (a dead one is replaced with a
 * backoff), replaces the whole set on reload and stops them at shutdown,
 * from a thread of its own.  It never reads a
 * front's control socket: right after a start it sends the one
 * FRONT_MSG_CONFIG packet and hands the socket to the attach callback.
 * Internal to luapoold: not part of libluapool's exported API.
 */
#ifndef POOL_FRONTS_H
#define POOL_FRONTS_H

#include <stddef.h>

#include "common/front_proto.h"

#define FRONTS_MAX		FRONT_SET_MAX

struct fronts;
struct luapool;

struct fronts_options {
	unsigned count;			/* 1..FRONTS_MAX */
	const char *front_path;		/* NULL or "": process_find_front's search */
	const char *const *extra_args;	/* NULL-terminated, after the worker's
					 * arguments; copied; NULL: none */
	const char *auth_token;		/* copied; NULL or "": no auth */
	/*
	 * Takes a started front's control socket (non-blocking,
	 * close-on-exec), which the callee owns and closes from then on.
	 * Called once per front started: for the first set in fronts_start's
	 * caller, for every later one (a replacement, a reload) on the
	 * fronts' own thread, so it must be thread-safe.
	 */
	void (*attach)(void *arg, int control_fd);
	void *attach_arg;
};

/*
 * Starts o->count fronts.  Each runs the pool's worker arguments (limits,
 * --uid/--gid, --log-level as it is now), argv[0] its own path, then
 * extra_args.  NULL with err filled on failure, and then nothing was left
 * running and attach was never called.  The pool must outlive the set
 * only during this call.
 */
struct fronts *fronts_start(struct luapool *pool, const struct fronts_options *o, char *err,
    size_t errlen);

/*
 * New settings for every front: a complete new set is started with them
 * (and attached), then the old fronts get SIGTERM: they stop accepting
 * and finish what they hold; one still alive 30 s later gets SIGKILL.
 * Returns at once (the fronts' thread does the work); -1 if out of memory
 * or the token is too long for a packet (logged), and nothing changes.
 */
int fronts_reload(struct fronts *f, const char *auth_token, const char *const *extra_args);
/* Whether the fronts can be given this token (it fits their first message). */
int fronts_token_fits(const char *auth_token);

/* Shutdown, first step: SIGTERM to every front, none is replaced any
 * more.  Returns at once; watch fronts_alive to see them go.  NULL: nothing. */
void fronts_begin_stop(struct fronts *f);

/* Front processes not yet reaped, those stopping included. */
unsigned fronts_alive(const struct fronts *f);

/* SIGKILL to what still runs, reaps it, stops the thread and frees.  NULL:
 * nothing.  Call once; f is gone after. */
void fronts_free(struct fronts *f);

/* fronts_begin_stop, at most timeout_ms for the fronts to exit, then
 * fronts_free.  Blocks: for a caller with nothing else to serve. */
void fronts_stop(struct fronts *f, int timeout_ms);

#endif
