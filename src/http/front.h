/*
 * front.h - the HTTP server of a front process (front*.c): libmicrohttpd
 * on the connections the supervisor deals it, the fast lane for short
 * jobs, and the hand-off of everything else to the supervisor
 * (docs/ARCHITECTURE.md).
 */
#ifndef FRONT_H
#define FRONT_H

#include <stddef.h>

#include "vm/vm.h"

struct front_options {
	unsigned fast_lane_ms;
	size_t max_body_bytes;
	size_t max_result_bytes;
	size_t max_inflight_bytes;	/* the server's, lent out by the supervisor */
	size_t max_answer_bytes;	/* an answer from the supervisor */
	unsigned max_connections;
	unsigned request_read_timeout_s;
	int bytecode_mode;		/* enum http_bytecode_mode */
	const char *auth_token;		/* NULL: no auth */
	int access_log;			/* the supervisor logs what this front answers */
};

/* Serves the connections dealt to it on FRONT_CONTROL_FD until told to
 * stop (SIGTERM) or the supervisor goes away; returns the process exit
 * status.  The VM must be set up for the lane (lane_prepare with
 * front_last_words).  `lock_down` runs once, when the HTTP server and its
 * epoll set exist and before the first connection is taken: the seccomp
 * filter goes on there (main.c); it returns only if the front may serve. */
int front_serve(struct vm *vm, const struct front_options *o, void (*lock_down)(void));

/* The lane's last words (lane_prepare): hands every connection this front
 * holds to the supervisor before the process dies. */
void front_last_words(void);

#endif
