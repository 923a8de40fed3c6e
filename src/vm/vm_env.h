/*
 * vm_env.h - the sandbox and each job's environment (vm_env.c).
 */
#ifndef VM_ENV_H
#define VM_ENV_H

#include <stddef.h>

struct vm;

/* Opens the libraries and builds the sandbox; 0, or -1 with err filled. */
int vm_env_open(struct vm *vm, char *err, size_t errlen);
/* Pushes a new environment for one job: ctx, its own metatable. */
void vm_env_push(struct vm *vm);
/* Clears the state table slots a job used (environment, ids, request ...). */
void vm_env_clear(struct vm *vm);

#endif
