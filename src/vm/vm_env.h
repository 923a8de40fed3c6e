/*
 * vm_env.h - the sandbox and each job's environment (vm_env.c).
 */
#ifndef VM_ENV_H
#define VM_ENV_H

#include <stddef.h>

struct vm;
struct lua_State;

/* Opens the libraries and builds the sandbox, whose `require` is the
 * given C function (vm_require.c); 0, or -1 with err filled. */
int vm_env_open(struct vm *vm, int (*require)(struct lua_State *), char *err, size_t errlen);
/* Pushes a new environment for one job: ctx, its own metatable. */
void vm_env_push(struct vm *vm);
/* Pushes a new environment for a module of the running job onto L: like
 * the job's (ctx, its own metatable), but load() keeps the job's. */
void vm_env_push_module_env(struct lua_State *L, struct vm *vm);
/* Pushes the running job's loaded-modules table (package.loaded) onto L,
 * made on first use and dropped with the job. */
void vm_env_push_loaded(struct lua_State *L, struct vm *vm);
/* Gives the function at idx (a cached chunk that just ran) an empty
 * environment, so the job's globals and ctx die with the job instead of
 * staying reachable from the cache. */
void vm_env_forget(struct lua_State *L, struct vm *vm, int idx);
/* Clears the state table slots a job used (environment, ids, request ...). */
void vm_env_clear(struct vm *vm);

#endif
