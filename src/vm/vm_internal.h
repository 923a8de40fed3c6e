/*
 * vm_internal.h - the worker VM's state, shared by the vm*.c files only
 * (never by the worker loop, which sees vm.h).  Includes the Lua headers,
 * so it must never be included outside src/vm/.
 */
#ifndef VM_INTERNAL_H
#define VM_INTERNAL_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "vm/vm.h"
#include "vm/vm_require.h"

/* Slots of the state table in the registry. */
enum {
	STATE_ENV = 1,		/* the running job's environment */
	STATE_TRACEBACK,	/* the last error's traceback */
	STATE_CONTEXT,		/* the loaded request's context */
	STATE_REQUEST,		/* the loaded request */
	STATE_IDS,		/* this job's object -> number, for tostring */
	STATE_ERROR_VALUE,	/* the last error's value, when a table */
	STATE_MODULES,		/* this job's loaded modules (package.loaded) */
	STATE_MODULE_ERROR,	/* an error require() passes on from a module:
				 * its traceback was taken where it was raised */
	STATE_LAST = STATE_MODULE_ERROR
};

/* Coroutines resuming coroutines: deeper nesting is a Lua error, not a C
 * stack overflow (each level costs a few KiB of C stack). */
#define VM_MAX_COROUTINE_NESTING 200

struct cache_entry {
	uint64_t hash;
	uint64_t last_used;
	size_t len;
	char *bytes;		/* kind byte + chunk, compared on every hit */
	int ref;		/* the loaded function in the registry, or LUA_NOREF */
	int fresh_each_run;	/* has upvalues: loaded anew for every job */
};

struct vm {
	lua_State *L;
	size_t used, limit;
	size_t peak;			/* largest `used` since the request was loaded */
	int memory_refused;
	volatile int interrupted;
	struct vm_limits limits;
	int index_ref, state_ref, handler_ref;
	int spent_env_ref;		/* what a chunk's environment becomes after its job */
	int collect_failed;		/* a full collection ran out of memory: replace */
	void (*lua_done)(void);		/* see vm_on_lua_done */
	void (*lua_start)(void);	/* see vm_on_lua_start */
	int module_handler_ref;		/* error handler of a module's main chunk */
	struct cache_entry *cache;
	unsigned cache_count;
	/* What vm_request_load prepared for vm_run_loaded. */
	struct vm_job loaded;
	int loaded_ok, loaded_compile, loaded_check;
	char loaded_name[72];
	unsigned char *decoded;		/* base64-decoded bytecode */
	size_t cache_bytes;
	uint64_t clock;
	unsigned next_object_id;	/* tostring numbers, per job */
	unsigned coroutine_depth;	/* nested coroutine.resume, per job */
	struct buffer log;		/* the job's print and log.* entries (vm_log.c) */
	int log_truncated;		/* the marker is written: drop the rest */
	/* require() (vm_require.c): where modules come from, and per job
	 * the requests made and the chain of modules being loaded. */
	vm_module_fetch_fn *fetch_module;
	void *fetch_module_arg;
	int modules_allow_bytecode;
	unsigned modules_requested;
	unsigned module_depth;
	char module_chain[LUAPOOL_MAX_MODULES][LUAPOOL_MODULE_NAME_MAX + 1];
	enum vm_replace module_replace;	/* a module LuaJIT refused: replace me */
};

/* The vm a Lua state belongs to (the allocator's user data). */
static inline struct vm *
vm_of(lua_State *L)
{
	void *ud;
	lua_getallocf(L, &ud);
	return ud;
}

#endif
