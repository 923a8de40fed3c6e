/*
 * worker_args.h - the command line shared by luapool-worker and
 * luapool-front (worker_args.c), and the process set-up both need.
 */
#ifndef WORKER_ARGS_H
#define WORKER_ARGS_H

#include <stddef.h>
#include <sys/types.h>

#include "vm/worker.h"

/* Who the process becomes when started as root (--uid/--gid). */
struct worker_identity {
	int switch_user;
	uid_t uid;
	gid_t gid;
};

/* An option the worker does not know: 0 if the caller took it, -1 if
 * nobody does (the process then exits with a message). */
typedef int (*worker_args_extra_fn)(void *arg, const char *key, unsigned long value);

/* "--key value" pairs, every value a decimal number; a bad one ends the
 * process with a message.  Keys the worker does not know go to extra. */
void worker_args_parse(int argc, char **argv, struct worker_options *o, pid_t *parent,
    struct worker_identity *id, worker_args_extra_fn extra, void *arg);
/* A decimal argument, or the end of the process with a message. */
unsigned long worker_args_number(const char *name, const char *value);
/* RLIMIT_AS for these options (see docs/OPERATIONS.md). */
size_t worker_args_address_space(const struct worker_options *o);
/* stdin reads nothing and stdout writes nowhere; stderr stays the pool's
 * log pipe. */
void worker_args_quiet_stdio(void);

#endif
