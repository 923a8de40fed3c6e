/*
 * lane.h - running a job inside a front process (lane.c): the fast lane.
 *
 * A front answers a job itself only while the job stays short: it gets
 * fast_lane_ms (or less, when its own deadline comes first).  A job still
 * running then is stopped and handed to the pool with the rest of its
 * deadline (scripts have no side effects, so running it again is safe).
 * Interpreted code stops at the soft stop; a job that ignores it (JIT
 * traces, a long C call) ends the whole process after the grace period,
 * once the front's last words (async-signal-safe) have handed its
 * connections to the supervisor.
 */
#ifndef LANE_H
#define LANE_H

#include <stdint.h>

#include "vm/vm.h"

#define LANE_DIGEST_SIZE 16

struct lane_options {
	unsigned fast_lane_ms;
	unsigned grace_ms;
	unsigned default_timeout_ms;
	unsigned max_timeout_ms;
	int allow_bytecode;
};

enum lane_verdict {
	LANE_ANSWERED,		/* out->body is the OK answer */
	LANE_HAND_OFF		/* not answered here: an error, a bad request or a
				 * job that reached the lane's limit; the pool
				 * answers it (it explains errors in full) */
};

/* Sets up the timer and the signal handler (before the sandbox).
 * last_words runs in the signal handler of a hard stop, just before the
 * process exits: only async-signal-safe calls. */
int lane_prepare(struct vm *vm, const struct lane_options *o, void (*last_words)(void));

/* Decodes the JSON request text (NUL-terminated at len) that arrived at
 * start_ns into the VM; digest names its chunk (the same bytes, the same
 * digest, however the request wrote them).  0, or -1 when the front should
 * not run it (a bad request, "usage", its deadline passed): hand it off. */
int lane_load(struct vm *vm, const char *text, size_t len, int64_t start_ns,
    struct vm_outcome *out, unsigned char digest[LANE_DIGEST_SIZE]);
/* Runs what lane_load loaded.  *run_ns: how long the job took (its
 * compile included); *not_for_lane: never run this chunk here again (it
 * was stopped at fast_lane_ms, not at its own deadline, or it asked for a
 * module, which only the pool serves). */
enum lane_verdict lane_run_loaded(struct vm *vm, struct vm_outcome *out, int64_t *run_ns,
    int *not_for_lane);
/* Drops what lane_load loaded, unrun. */
void lane_unload(struct vm *vm);

/* The absolute deadline of the job being run or last run (CLOCK_MONOTONIC
 * ns); async-signal-safe. */
int64_t lane_deadline_ns(void);

#endif
