/*
 * vm_require.h - require("name") inside a job (vm_require.c).  Modules
 * come through a fetch function the worker's job loop gives (worker.c asks
 * the pool for them), so no vm*.c file ever speaks the frame protocol.
 * No Lua headers here.
 */
#ifndef VM_REQUIRE_H
#define VM_REQUIRE_H

#include <stddef.h>

struct vm;
struct lua_State;

enum vm_module_answer {
	VM_MODULE_FOUND,
	VM_MODULE_MISSING,		/* no module of that name */
	VM_MODULE_UNAVAILABLE,		/* this pool has no modules */
	VM_MODULE_TOO_LARGE
};

struct vm_module {
	const char *chunk;		/* valid until the next fetch */
	size_t len;
	int is_source;
};

/* Fetches the module `name` (a valid name) for the running job; blocks. */
typedef enum vm_module_answer vm_module_fetch_fn(void *arg, const char *name,
    struct vm_module *module);

/* Where require() finds modules; until this is called it answers that
 * modules are not available.  allow_bytecode 0: bytecode modules are
 * refused like bytecode jobs. */
void vm_require_configure(struct vm *vm, vm_module_fetch_fn *fetch, void *arg,
    int allow_bytecode);

/* The sandbox's require (a lua_CFunction, given to vm_env_open). */
int vm_require_lua(struct lua_State *L);

#endif
