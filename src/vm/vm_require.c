/*
 * vm_require.c - require("name") inside a job.  A module is a stored
 * script: the worker fetches its chunk through the function it was given
 * (worker.c asks the pool), then it is verified and cached like any chunk
 * (vm_cache.c, under the module's name), run once per job in a fresh
 * environment of its own (vm_env.c: ctx and the safe globals, nothing of
 * the job's), and its value kept in the job's loaded table, which
 * package.loaded shows, until the job ends.
 *
 * Nothing here may outlive the job: the loaded table is a slot of the
 * state table that vm_env_clear empties with the request counts, so every
 * job gets fresh module instances.  Bounded: LUAPOOL_MAX_MODULES fetches
 * per job (the pool enforces the same bound), names as the script store
 * has them.
 */
#include <stdio.h>
#include <string.h>

#include "common/frame.h"
#include "vm/vm_cache.h"
#include "vm/vm_env.h"
#include "vm/vm_internal.h"

void
vm_require_configure(struct vm *vm, vm_module_fetch_fn *fetch, void *arg, int allow_bytecode)
{
	vm->fetch_module = fetch;
	vm->fetch_module_arg = arg;
	vm->modules_allow_bytecode = allow_bytecode;
}

/* The script store's names: 1 to 64 of [A-Za-z0-9_.-], not starting with '.'. */
static int
is_valid_name(const char *name, size_t len)
{
	if (len == 0 || len > LUAPOOL_MODULE_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/* Where name is in the chain of modules being loaded, or -1. */
static int
chain_position(const struct vm *vm, const char *name)
{
	for (unsigned i = 0; i < vm->module_depth; i++)
		if (strcmp(vm->module_chain[i], name) == 0)
			return (int)i;
	return -1;
}

/* Raises "module 'a' requires itself: a -> b -> a". */
static int
raise_cycle(lua_State *L, struct vm *vm, const char *name, unsigned first)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "module '%s' requires itself: ", name);
	luaL_addvalue(&b);
	for (unsigned i = first; i < vm->module_depth; i++) {
		luaL_addstring(&b, vm->module_chain[i]);
		luaL_addstring(&b, " -> ");
	}
	luaL_addstring(&b, name);
	luaL_pushresult(&b);
	return lua_error(L);
}

/* Pushes the module's function, fetched, verified and loaded (or cached). */
static void
push_module_function(lua_State *L, struct vm *vm, const char *name)
{
	if (vm->fetch_module == NULL)
		luaL_error(L, "modules are not available (require '%s')", name);
	if (vm->modules_requested >= LUAPOOL_MAX_MODULES)
		luaL_error(L, "module '%s': a job may require at most %d modules", name,
		    (int)LUAPOOL_MAX_MODULES);
	vm->modules_requested++;
	struct vm_module m = { NULL, 0, 0 };
	switch (vm->fetch_module(vm->fetch_module_arg, name, &m)) {
	case VM_MODULE_FOUND:
		break;
	case VM_MODULE_MISSING:
		luaL_error(L, "module '%s' not found", name);
		break;
	case VM_MODULE_TOO_LARGE:
		luaL_error(L, "module '%s' is larger than %d MiB", name,
		    (int)(FRAME_MODULE_MAX_BYTES >> 20));
		break;
	default:
		luaL_error(L, "modules are not available (require '%s')", name);
	}
	if (!m.is_source && !vm->modules_allow_bytecode)
		luaL_error(L, "module '%s' is bytecode, and bytecode is disabled on this server",
		    name);
	struct vm_job job = { .chunk = m.chunk, .chunk_len = m.len, .is_source = m.is_source,
	    .name = name };
	struct vm_outcome refused;
	memset(&refused, 0, sizeof(refused));
	if (vm_cache_push_function(L, vm, &job, &refused) == -1) {
		if (refused.replace != VM_REPLACE_NO)
			vm->module_replace = refused.replace;
		luaL_error(L, "module '%s': %s", name, refused.message);
	}
}

/*
 * require(name): the job's loaded value, or the module run once now.  Its
 * chunk runs under lua_pcall so the chain of modules being loaded (a
 * cycle's witness) is undone whatever happens; the error then goes on
 * unchanged (a pcall in the job sees what the module raised), with the
 * traceback taken where it was raised (vm_env.c's module handler).
 */
int
vm_require_lua(lua_State *L)
{
	struct vm *vm = vm_of(L);
	size_t len;
	const char *name = luaL_checklstring(L, 1, &len);
	if (!is_valid_name(name, len))
		return luaL_error(L, "bad argument #1 to 'require' (module names are 1 to %d "
		    "characters of A-Z a-z 0-9 _ . - and do not start with '.')",
		    (int)LUAPOOL_MODULE_NAME_MAX);
	int loading = chain_position(vm, name);
	if (loading >= 0)
		return raise_cycle(L, vm, name, (unsigned)loading);
	lua_settop(L, 1);
	vm_env_push_loaded(L, vm);				/* 2: loaded */
	lua_pushvalue(L, 1);
	lua_rawget(L, 2);
	if (lua_toboolean(L, -1))
		return 1;
	lua_pop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->module_handler_ref);	/* 3 */
	push_module_function(L, vm, name);			/* 4 */
	vm_env_push_module_env(L, vm);
	lua_setfenv(L, 4);
	memcpy(vm->module_chain[vm->module_depth], name, len + 1);
	vm->module_depth++;
	lua_pushvalue(L, 4);			/* 5: called, 4 kept */
	lua_pushvalue(L, 1);			/* the chunk gets its name, as in Lua */
	int status = lua_pcall(L, 1, 1, 3);
	vm->module_depth--;
	vm_env_forget(L, vm, 4);
	if (status != 0)
		return lua_error(L);		/* not loaded: a later require tries again */
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);		/* nothing returned: loaded = true */
	}
	lua_pushvalue(L, 1);
	lua_pushvalue(L, -2);
	lua_rawset(L, 2);
	return 1;
}
