/*
 * worker.h - the worker process's job loop: read a frame, parse the JSON
 * request, arm the job's deadline, run it in the VM, answer.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stddef.h>

#include "vm/vm.h"

struct worker_options {
	struct vm_limits vm;
	unsigned grace_ms;
	unsigned default_timeout_ms;
	unsigned max_timeout_ms;
	int allow_bytecode;
	size_t max_request_bytes;
};

/* Serves jobs on FRAME_WORKER_FD until the pool closes it.  Returns the
 * process exit status. */
int worker_run(struct vm *vm, const struct worker_options *opts);

/* Sets up the deadline timer and its signal handler (before the sandbox). */
int worker_prepare_deadlines(struct vm *vm);

#endif
