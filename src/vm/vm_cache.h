/*
 * vm_cache.h - chunk to function, verified and cached (vm_cache.c).
 */
#ifndef VM_CACHE_H
#define VM_CACHE_H

#include "vm/vm.h"

struct lua_State;

/* Pushes the job's (or a module's) function onto L, the running thread of
 * vm's state, from the cache or verified and loaded; -1 with the outcome
 * set when the chunk is refused.  Inside a protected call. */
int vm_cache_push_function(struct lua_State *L, struct vm *vm, const struct vm_job *job,
    struct vm_outcome *out);
/* Frees the cached bytes (the functions go with the Lua state). */
void vm_cache_free(struct vm *vm);

#endif
