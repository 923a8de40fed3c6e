/*
 * vm_env.c - what a job sees: the sandbox built once per worker (the safe
 * globals, private copies of library tables on first use, checked
 * string.rep, address-free tostring and string.format) and a fresh
 * environment and metatable for every job and every module it requires.
 *
 * This file must never let a job reach the real globals, the registry, a
 * table another job can see, or a memory address (tostring, %p, %s of a
 * table would tell a client where the worker's heap is).
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "vm/vm_env.h"
#include "vm/vm_internal.h"
#include "vm/vm_json.h"
#include "vm/vm_log.h"

/* string.rep refuses what would not fit in the heap before LuaJIT tries:
 * LuaJIT itself reports huge sizes as "string length overflow". */
static int
safe_string_rep(lua_State *L)
{
	size_t len, seplen = 0;
	luaL_checklstring(L, 1, &len);
	lua_Number n = luaL_checknumber(L, 2);
	luaL_optlstring(L, 3, "", &seplen);
	struct vm *vm = vm_of(L);
	if (n >= 1) {
		double total = (double)len * n + (double)seplen * (n - 1);
		double room = (double)(vm->limit - vm->used);
		if (total > room) {
			vm->memory_refused = 1;
			lua_pushliteral(L, "not enough memory");
			return lua_error(L);
		}
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

/* This job's number for the object at idx: 1, 2, 3 ... in order of first
 * tostring, forgotten when the job ends (the table lives in STATE_IDS). */
static unsigned
object_number(lua_State *L, int idx)
{
	struct vm *vm = vm_of(L);
	idx = idx > 0 ? idx : lua_gettop(L) + idx + 1;
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	lua_rawgeti(L, -1, STATE_IDS);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, STATE_IDS);
	}
	lua_pushvalue(L, idx);
	lua_rawget(L, -2);
	unsigned n = (unsigned)lua_tointeger(L, -1);
	lua_pop(L, 1);
	if (n == 0) {
		n = ++vm->next_object_id;
		lua_pushvalue(L, idx);
		lua_pushinteger(L, (lua_Integer)n);
		lua_rawset(L, -3);
	}
	lua_pop(L, 2);
	return n;
}

static int
is_addressed(int type)
{
	return type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TUSERDATA ||
	    type == LUA_TTHREAD;
}

/* Pushes the text of an object (table, function, userdata, thread) at
 * idx: its __tostring, or its type and this job's number for it
 * ("table: 0x00000001") instead of its address. */
static void
push_object_string(lua_State *L, int idx)
{
	if (luaL_callmeta(L, idx, "__tostring")) {
		if (!lua_isstring(L, -1))
			luaL_error(L, "'__tostring' must return a string");
		return;
	}
	char text[64];
	snprintf(text, sizeof(text), "%s: 0x%08x", luaL_typename(L, idx), object_number(L, idx));
	lua_pushstring(L, text);
}

/* tostring; upvalue 1 is the real one, for everything without an address. */
static int
safe_tostring(lua_State *L)
{
	luaL_checkany(L, 1);
	if (is_addressed(lua_type(L, 1))) {
		push_object_string(L, 1);
		return 1;
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
	return 1;
}

/* coroutine.resume with a bound on nesting (a coroutine resuming one that
 * resumes one ...): each level costs C stack, and 200,000 levels overflow
 * it and crash the worker.  Upvalue 1 is the real resume.  The count is
 * the VM's and is reset when the job ends, however it ends. */
static int
limited_resume(lua_State *L)
{
	struct vm *vm = vm_of(L);
	if (vm->coroutine_depth >= VM_MAX_COROUTINE_NESTING) {
		lua_pushfstring(L, "coroutines nested deeper than %d", VM_MAX_COROUTINE_NESTING);
		return lua_error(L);
	}
	vm->coroutine_depth++;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
	vm->coroutine_depth--;
	if (status != 0)
		return lua_error(L);
	return lua_gettop(L);
}

/* Whether a format string asks for %p (an address). */
static int
format_asks_address(const char *fmt, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (fmt[i] != '%')
			continue;
		i++;
		while (i < len && strchr("-+ #0123456789.", fmt[i]))
			i++;
		if (i < len && fmt[i] == 'p')
			return 1;
	}
	return 0;
}

/* string.format without addresses: objects are formatted as tostring
 * shows them, %p is refused.  Upvalue 1 is the real string.format. */
static int
safe_format(lua_State *L)
{
	size_t len;
	const char *fmt = luaL_checklstring(L, 1, &len);
	if (format_asks_address(fmt, len))
		return luaL_error(L, "bad argument #1 to 'format' (%%p is not available)");
	int n = lua_gettop(L);
	for (int i = 2; i <= n; i++) {
		if (is_addressed(lua_type(L, i))) {
			push_object_string(L, i);
			lua_replace(L, i);
		}
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, 1);
	return 1;
}

/* The message of a table error value without __tostring: its "message"
 * field (raw: no metamethod runs in the handler) when that is a string. */
static const char *
table_error_message(lua_State *L)
{
	lua_pushliteral(L, "message");
	lua_rawget(L, 1);
	if (lua_type(L, -1) == LUA_TSTRING)
		return lua_tostring(L, -1);
	lua_pop(L, 1);
	return NULL;
}

/* Whether the error at 1 is one require() passes on from a module, whose
 * traceback and value were kept where it was raised (on_module_error). */
static int
is_passed_on_from_module(lua_State *L)
{
	lua_rawgeti(L, lua_upvalueindex(1), STATE_MODULE_ERROR);
	int passed = !lua_isnil(L, -1) && lua_rawequal(L, 1, -1);
	lua_pop(L, 1);
	return passed;
}

/* Keeps the traceback and a table error value of the error at 1 (nil
 * otherwise: a table a module raised and the job caught is not this
 * error's value; the slot exists, so storing nil allocates nothing). */
static void
keep_error_details(lua_State *L)
{
	if (lua_istable(L, 1))
		lua_pushvalue(L, 1);
	else
		lua_pushnil(L);
	lua_rawseti(L, lua_upvalueindex(1), STATE_ERROR_VALUE);
	luaL_traceback(L, L, NULL, 1);
	lua_rawseti(L, lua_upvalueindex(1), STATE_TRACEBACK);
}

/* Error handler of every job: keeps the message, stores the traceback and
 * a table error value (vm.c encodes it as the answer's error_value). */
static int
on_job_error(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	int keep = !is_passed_on_from_module(L);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1))
			msg = lua_tostring(L, -1);
		else if (!lua_istable(L, 1) || (msg = table_error_message(L)) == NULL)
			msg = lua_pushfstring(L, "(error object is a %s value)",
			    luaL_typename(L, 1));
	}
	if (keep)
		keep_error_details(L);
	lua_pushstring(L, msg);
	return 1;
}

/* Error handler of a module's main chunk (vm_require.c): the job's
 * details, taken where the error was raised, and the error itself
 * unchanged, marked so that the handlers it passes through on its way
 * out keep them. */
static int
on_module_error(lua_State *L)
{
	lua_settop(L, 1);
	if (!is_passed_on_from_module(L)) {
		keep_error_details(L);
		lua_pushvalue(L, 1);
		lua_rawseti(L, lua_upvalueindex(1), STATE_MODULE_ERROR);
	}
	return 1;
}

/* The job's loaded modules, created on first use; `modules` in the
 * sandbox, which lends it to package.loaded. */
static int
job_modules(lua_State *L)
{
	vm_env_push_loaded(L, vm_of(L));
	return 1;
}

/*
 * The sandbox, written in Lua because it is mostly tables.  Receives the
 * real globals, the json table, the state table (slot 1: the running
 * job's environment, slot 2: the last traceback), the address-free
 * tostring and string.format, the bounded coroutine.resume, print and the
 * log table (vm_log.c), require (vm_require.c) and the function that gives
 * the job's loaded modules (package.loaded, made per environment around
 * that one table); returns the __index function that lends a
 * job's environment the safe globals.  Each job gets its own metatable
 * around that function (vm_env_push), so nothing a job could reach in its
 * metatable is shared with the next job.
 */
static const char sandbox_source[] =
	"local G, json, state, safe_tostring, safe_format, limited_resume, print, log,\n"
	"  require, modules = ...\n"
	"local pairs, rawset, real_load, real_setfenv = G.pairs, G.rawset, G.load, G.setfenv\n"
	"local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end\n"
	"local base = {}\n"
	"for _, k in G.ipairs{'assert','error','ipairs','next','pairs','pcall','select',\n"
	"  'tonumber','tostring','type','unpack','xpcall','rawequal','rawget','rawset',\n"
	"  'setmetatable','getmetatable'} do base[k] = G[k] end\n"
	"base._VERSION = G._VERSION\n"
	"base.tostring = safe_tostring\n"
	"base.print = print\n"
	"base.require = require\n"
	"function base.load(chunk, name, mode, env)\n"
	"  local f, err = real_load(chunk, name, 't')\n"
	"  if not f then return nil, err end\n"
	"  real_setfenv(f, env or state[1])\n"
	"  return f\n"
	"end\n"
	"function base.loadstring(s, name) return base.load(s, name) end\n"
	"local math = copy(G.math) math.randomseed = nil\n"
	"G.string.dump, G.string.format = nil, safe_format\n"
	"local string = copy(G.string)\n"
	"local os = { clock = G.os.clock, time = G.os.time, date = G.os.date,\n"
	"  difftime = G.os.difftime }\n"
	"local coroutine = copy(G.coroutine)\n"
	"coroutine.resume = limited_resume\n"
	"local error, select = G.error, G.select\n"
	"local function wrapped(ok, ...)\n"
	"  if ok then return ... end\n"
	"  error((...), 0)\n"
	"end\n"
	"function coroutine.wrap(f)\n"
	"  local co = coroutine.create(f)\n"
	"  return function(...) return wrapped(limited_resume(co, ...)) end\n"
	"end\n"
	"local libs = { string = string, table = G.table, math = math, bit = G.bit,\n"
	"  coroutine = coroutine, os = os, json = json, log = log }\n"
	"local function index(env, k)\n"
	"  local lib = libs[k]\n"
	"  if lib then lib = copy(lib) rawset(env, k, lib) return lib end\n"
	"  if k == '_G' then rawset(env, '_G', env) return env end\n"
	"  local v = base[k]\n"
	"  if v == nil and k == 'package' then\n"
	"    v = { loaded = modules() } rawset(env, 'package', v)\n"
	"  end\n"
	"  return v\n"
	"end\n"
	"G.getmetatable('').__metatable = false\n"
	"return index\n";

/* What open_sandbox gets through lua_cpcall. */
struct sandbox_call {
	struct vm *vm;
	lua_CFunction require;
};

static int
open_sandbox(lua_State *L)
{
	const struct sandbox_call *call = lua_touserdata(L, 1);
	struct vm *vm = call->vm;
	luaL_openlibs(L);
	/* The real string.rep, checked; the sandbox copies string after this. */
	lua_getglobal(L, "string");
	lua_getfield(L, -1, "rep");
	lua_pushcclosure(L, safe_string_rep, 1);
	lua_setfield(L, -2, "rep");
	lua_pop(L, 1);

	lua_createtable(L, STATE_LAST, 0);	/* state */
	lua_pushvalue(L, -1);
	vm->state_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, on_job_error, 1);
	vm->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, on_module_error, 1);
	vm->module_handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	if (luaL_loadbuffer(L, sandbox_source, sizeof(sandbox_source) - 1, "=sandbox") != 0)
		return lua_error(L);
	lua_pushvalue(L, LUA_GLOBALSINDEX);
	vm_json_open(L, vm->limits.max_depth);
	lua_pushvalue(L, -4);			/* state */
	lua_getglobal(L, "tostring");
	lua_pushcclosure(L, safe_tostring, 1);
	lua_getglobal(L, "string");
	lua_getfield(L, -1, "format");
	lua_remove(L, -2);
	lua_pushcclosure(L, safe_format, 1);
	lua_getglobal(L, "coroutine");
	lua_getfield(L, -1, "resume");
	lua_remove(L, -2);
	lua_pushcclosure(L, limited_resume, 1);
	vm_log_push_functions(L, -3);		/* print and log, with safe tostring */
	lua_pushcfunction(L, call->require);
	lua_pushcfunction(L, job_modules);
	lua_call(L, 10, 1);
	vm->index_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	vm->spent_env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

void
vm_env_forget(lua_State *L, struct vm *vm, int idx)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->spent_env_ref);
	lua_setfenv(L, idx < 0 ? idx - 1 : idx);
}

/* Builds the sandbox in a fresh state: 0, or -1 with err filled. */
int
vm_env_open(struct vm *vm, int (*require)(struct lua_State *), char *err, size_t errlen)
{
	struct sandbox_call call = { vm, require };
	if (lua_cpcall(vm->L, open_sandbox, &call) != 0) {
		snprintf(err, errlen, "sandbox: %s", lua_tostring(vm->L, -1));
		return -1;
	}
	lua_settop(vm->L, 0);
	return 0;
}

/* A fresh environment on L: ctx and a metatable of its own. */
static void
push_fresh_env(lua_State *L, struct vm *vm)
{
	lua_createtable(L, 0, 4);
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	lua_rawgeti(L, -1, STATE_CONTEXT);
	lua_remove(L, -2);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
	}
	lua_setfield(L, -2, "ctx");
	/* A metatable of its own: even a job that got hold of it (it is
	 * hidden by __metatable) could change nothing the next job sees. */
	lua_createtable(L, 0, 2);
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->index_ref);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
}

void
vm_env_push(struct vm *vm)
{
	lua_State *L = vm->L;
	push_fresh_env(L, vm);
	/* load() inside the job binds to this environment. */
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, STATE_ENV);
	lua_pop(L, 1);
}
void
vm_env_push_module_env(struct lua_State *L, struct vm *vm)
{
	push_fresh_env(L, vm);
}

void
vm_env_push_loaded(struct lua_State *L, struct vm *vm)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	lua_rawgeti(L, -1, STATE_MODULES);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, STATE_MODULES);
	}
	lua_remove(L, -2);
}

/* Forgets what the last job left in the state table. */
void
vm_env_clear(struct vm *vm)
{
	lua_State *L = vm->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	/* Only slots that hold something: storing nil in a missing slot
	 * could allocate, and this runs outside any protected call. */
	for (int slot = STATE_ENV; slot <= STATE_LAST; slot++) {
		lua_rawgeti(L, -1, slot);
		int used = !lua_isnil(L, -1);
		lua_pop(L, 1);
		if (used) {
			lua_pushnil(L);
			lua_rawseti(L, -2, slot);
		}
	}
	lua_pop(L, 1);
	vm->next_object_id = 0;
	vm->coroutine_depth = 0;
	vm->modules_requested = 0;
	vm->module_depth = 0;
	vm->module_replace = VM_REPLACE_NO;
}
