/*
 * vm.c - one LuaJIT state per worker process: heap limit, sandbox, fresh
 * environment per job, bytecode cache, run and compile.
 *
 * The state lives as long as the worker; a job only ever sees its own
 * global table, whose metatable lends it the safe globals and hands out
 * private copies of the library tables on first use, so nothing a job
 * writes survives it.  This file must never let a job reach the real
 * globals, the registry, or a library table shared with the next job.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <luajit.h>

#include "common/base64.h"
#include "vm/vm.h"
#include "vm/vm_json.h"

#define CACHE_MAX_BYTES (16u * 1024u * 1024u)

/* Slots of the state table (see sandbox_source). */
enum { STATE_ENV = 1, STATE_TRACEBACK, STATE_CONTEXT, STATE_REQUEST };

struct cache_entry {
	uint64_t hash;
	uint64_t last_used;
	size_t len;
	char *bytes;		/* kind byte + chunk, compared on every hit */
	int ref;		/* the loaded function in the registry */
};

struct vm {
	lua_State *L;
	size_t used, limit;
	int memory_refused;
	volatile int interrupted;
	struct vm_limits limits;
	int env_mt_ref, state_ref, handler_ref;
	struct cache_entry *cache;
	unsigned cache_count;
	/* What vm_load_request prepared for vm_run_loaded. */
	struct vm_job loaded;
	int loaded_ok, loaded_compile;
	char loaded_name[72];
	unsigned char *decoded;		/* base64-decoded bytecode */
	size_t cache_bytes;
	uint64_t clock;
};

/* Job data for the protected runner. */
struct run_call {
	struct vm *vm;
	const struct vm_job *job;
	struct vm_outcome *out;
	int compile_only;
};

static void *
counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct vm *vm = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		vm->used -= old;
		return NULL;
	}
	if (nsize > old && vm->used - old + nsize > vm->limit) {
		vm->memory_refused = 1;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p == NULL) {
		vm->memory_refused = 1;
		return NULL;
	}
	vm->used = vm->used - old + nsize;
	return p;
}

static struct vm *
vm_of(lua_State *L)
{
	void *ud;
	lua_getallocf(L, &ud);
	return ud;
}

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

static void
deadline_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	luaL_error(L, "deadline exceeded");
}

void
vm_interrupt(struct vm *vm)
{
	vm->interrupted = 1;
	lua_sethook(vm->L, deadline_hook, LUA_MASKCOUNT | LUA_MASKCALL | LUA_MASKRET, 1);
}

/* Error handler of every job: keeps the message, stores the traceback. */
static int
on_job_error(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1))
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
			    luaL_typename(L, 1));
	}
	luaL_traceback(L, L, NULL, 1);
	lua_rawseti(L, lua_upvalueindex(1), STATE_TRACEBACK);
	lua_pushstring(L, msg);
	return 1;
}

/*
 * The sandbox, written in Lua because it is mostly tables.  Receives the
 * real globals, the json table and the state table (slot 1: the running
 * job's environment, slot 2: the last traceback); returns the metatable
 * every job environment gets.
 */
static const char sandbox_source[] =
	"local G, json, state = ...\n"
	"local pairs, rawset, real_load, real_setfenv = G.pairs, G.rawset, G.load, G.setfenv\n"
	"local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end\n"
	"local base = {}\n"
	"for _, k in G.ipairs{'assert','error','ipairs','next','pairs','pcall','select',\n"
	"  'tonumber','tostring','type','unpack','xpcall','rawequal','rawget','rawset',\n"
	"  'setmetatable','getmetatable'} do base[k] = G[k] end\n"
	"base._VERSION = G._VERSION\n"
	"function base.load(chunk, name, mode, env)\n"
	"  local f, err = real_load(chunk, name, 't')\n"
	"  if not f then return nil, err end\n"
	"  real_setfenv(f, env or state[1])\n"
	"  return f\n"
	"end\n"
	"function base.loadstring(s, name) return base.load(s, name) end\n"
	"local math = copy(G.math) math.randomseed = nil\n"
	"local string = copy(G.string) string.dump = nil\n"
	"local os = { clock = G.os.clock, time = G.os.time, date = G.os.date,\n"
	"  difftime = G.os.difftime }\n"
	"local libs = { string = string, table = G.table, math = math, bit = G.bit,\n"
	"  coroutine = G.coroutine, os = os, json = json }\n"
	"local mt = { __metatable = false }\n"
	"function mt.__index(env, k)\n"
	"  local lib = libs[k]\n"
	"  if lib then lib = copy(lib) rawset(env, k, lib) return lib end\n"
	"  if k == '_G' then rawset(env, '_G', env) return env end\n"
	"  return base[k]\n"
	"end\n"
	"G.getmetatable('').__metatable = false\n"
	"G.string.dump = nil\n"
	"return mt\n";

static int
open_sandbox(lua_State *L)
{
	struct vm *vm = lua_touserdata(L, 1);
	luaL_openlibs(L);
	/* The real string.rep, checked; the sandbox copies string after this. */
	lua_getglobal(L, "string");
	lua_getfield(L, -1, "rep");
	lua_pushcclosure(L, safe_string_rep, 1);
	lua_setfield(L, -2, "rep");
	lua_pop(L, 1);

	lua_newtable(L);			/* state */
	lua_pushvalue(L, -1);
	vm->state_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, on_job_error, 1);
	vm->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	if (luaL_loadbuffer(L, sandbox_source, sizeof(sandbox_source) - 1, "=sandbox") != 0)
		return lua_error(L);
	lua_pushvalue(L, LUA_GLOBALSINDEX);
	vm_json_open(L, vm->limits.max_depth);
	lua_pushvalue(L, -4);			/* state */
	lua_call(L, 3, 1);
	vm->env_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

struct vm *
vm_new(const struct vm_limits *limits, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (vm == NULL)
		goto fail;
	vm->limits = *limits;
	vm->limit = limits->memory_bytes;
	vm->cache = calloc(limits->cache_entries ? limits->cache_entries : 1, sizeof(*vm->cache));
	if (vm->cache == NULL)
		goto fail;
	vm->L = lua_newstate(counting_alloc, vm);
	if (vm->L == NULL) {
		snprintf(err, errlen, "lua_newstate failed");
		goto fail;
	}
	if (lua_cpcall(vm->L, open_sandbox, vm) != 0) {
		snprintf(err, errlen, "sandbox: %s", lua_tostring(vm->L, -1));
		goto fail;
	}
	lua_settop(vm->L, 0);
	return vm;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	vm_free(vm);
	return NULL;
}

void
vm_free(struct vm *vm)
{
	if (vm == NULL)
		return;
	if (vm->L)
		lua_close(vm->L);
	for (unsigned i = 0; i < vm->cache_count; i++)
		free(vm->cache[i].bytes);
	free(vm->cache);
	free(vm->decoded);
	free(vm);
}

const char *
vm_version(void)
{
	return LUAJIT_VERSION;
}

static uint64_t
hash_chunk(char kind, const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ (unsigned char)kind;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static struct cache_entry *
cache_find(struct vm *vm, uint64_t hash, char kind, const char *chunk, size_t len)
{
	for (unsigned i = 0; i < vm->cache_count; i++) {
		struct cache_entry *e = &vm->cache[i];
		if (e->hash == hash && e->len == len + 1 && e->bytes[0] == kind &&
		    memcmp(e->bytes + 1, chunk, len) == 0)
			return e;
	}
	return NULL;
}

static void
cache_evict_oldest(struct vm *vm)
{
	unsigned oldest = 0;
	for (unsigned i = 1; i < vm->cache_count; i++)
		if (vm->cache[i].last_used < vm->cache[oldest].last_used)
			oldest = i;
	struct cache_entry *e = &vm->cache[oldest];
	luaL_unref(vm->L, LUA_REGISTRYINDEX, e->ref);
	vm->cache_bytes -= e->len;
	free(e->bytes);
	*e = vm->cache[--vm->cache_count];
}

/* Takes the function on top of the stack into the cache (leaves it there). */
static void
cache_store(struct vm *vm, uint64_t hash, char kind, const char *chunk, size_t len)
{
	if (vm->limits.cache_entries == 0 || len + 1 > CACHE_MAX_BYTES / 4)
		return;
	while (vm->cache_count > 0 && (vm->cache_count >= vm->limits.cache_entries ||
	    vm->cache_bytes + len + 1 > CACHE_MAX_BYTES))
		cache_evict_oldest(vm);
	char *bytes = malloc(len + 1);
	if (bytes == NULL)
		return;
	bytes[0] = kind;
	memcpy(bytes + 1, chunk, len);
	lua_pushvalue(vm->L, -1);
	struct cache_entry *e = &vm->cache[vm->cache_count++];
	e->hash = hash;
	e->len = len + 1;
	e->bytes = bytes;
	e->last_used = ++vm->clock;
	e->ref = luaL_ref(vm->L, LUA_REGISTRYINDEX);
	vm->cache_bytes += len + 1;
}

static void
set_outcome(struct vm_outcome *out, enum luapool_status status, const char *code,
    const char *message)
{
	out->status = status;
	out->code = code;
	snprintf(out->message, sizeof(out->message), "%s", message);
}

static int
is_bytecode(const char *chunk, size_t len)
{
	return len >= 4 && chunk[0] == '\033' && chunk[1] == 'L' && chunk[2] == 'J';
}

/* Pushes the job's function, from the cache or freshly loaded.  -1 with
 * the outcome set when the chunk does not load. */
static int
push_job_function(struct run_call *rc)
{
	struct vm *vm = rc->vm;
	const struct vm_job *job = rc->job;
	lua_State *L = vm->L;
	char kind = job->is_source ? 's' : 'b';
	uint64_t hash = hash_chunk(kind, job->chunk, job->chunk_len);
	struct cache_entry *e = cache_find(vm, hash, kind, job->chunk, job->chunk_len);
	if (e != NULL) {
		e->last_used = ++vm->clock;
		lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref);
		rc->out->cache_hit = 1;
		return 0;
	}
	rc->out->cache_miss = 1;
	if (!job->is_source && !is_bytecode(job->chunk, job->chunk_len)) {
		set_outcome(rc->out, LUAPOOL_E_BYTECODE, "invalid_bytecode",
		    "not LuaJIT bytecode (it must start with \\033LJ, as luajit -b writes it)");
		return -1;
	}
	char chunkname[80];
	snprintf(chunkname, sizeof(chunkname), "=%.64s", job->name ? job->name : "job");
	int rc_load = luaL_loadbufferx(L, job->chunk, job->chunk_len, chunkname,
	    job->is_source ? "t" : "b");
	if (rc_load != 0) {
		if (rc_load == LUA_ERRMEM)
			lua_error(L);
		const char *msg = lua_tostring(L, -1);
		if (job->is_source)
			set_outcome(rc->out, LUAPOOL_E_COMPILE, "compile_error", msg);
		else
			set_outcome(rc->out, LUAPOOL_E_BYTECODE, "invalid_bytecode", msg);
		lua_pop(L, 1);
		return -1;
	}
	cache_store(vm, hash, kind, job->chunk, job->chunk_len);
	return 0;
}

static void
push_environment(struct run_call *rc)
{
	lua_State *L = rc->vm->L;
	lua_createtable(L, 0, 4);
	lua_rawgeti(L, LUA_REGISTRYINDEX, rc->vm->state_ref);
	lua_rawgeti(L, -1, STATE_CONTEXT);
	lua_remove(L, -2);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
	}
	lua_setfield(L, -2, "ctx");
	lua_rawgeti(L, LUA_REGISTRYINDEX, rc->vm->env_mt_ref);
	lua_setmetatable(L, -2);
	/* load() inside the job binds to this environment. */
	lua_rawgeti(L, LUA_REGISTRYINDEX, rc->vm->state_ref);
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, STATE_ENV);
	lua_pop(L, 1);
}

/* Copies a traceback without the addresses of C functions ("at 0x5599..."),
 * which would tell a client where the worker's code is mapped. */
static void
append_traceback(struct buffer *out, const char *tb, size_t len)
{
	const char *end = tb + len;
	while (tb < end) {
		const char *at = memmem(tb, (size_t)(end - tb), " at 0x", 6);
		if (at == NULL) {
			buffer_append(out, tb, (size_t)(end - tb));
			return;
		}
		buffer_append(out, tb, (size_t)(at - tb));
		tb = at + 6;
		while (tb < end && isxdigit((unsigned char)*tb))
			tb++;
	}
}

static void
classify_failure(struct run_call *rc, int status)
{
	struct vm *vm = rc->vm;
	lua_State *L = vm->L;
	const char *msg = lua_tostring(L, -1);
	if (msg == NULL)
		msg = "error";
	if (vm->interrupted) {
		rc->out->soft_stopped = 1;
		set_outcome(rc->out, LUAPOOL_E_DEADLINE, "deadline_exceeded",
		    "deadline exceeded (the job was stopped)");
	} else if (status == LUA_ERRMEM || vm->memory_refused) {
		snprintf(rc->out->message, sizeof(rc->out->message),
		    "memory limit of %zu MiB exceeded", vm->limit >> 20);
		rc->out->status = LUAPOOL_E_MEMORY;
		rc->out->code = "memory_limit_exceeded";
	} else {
		set_outcome(rc->out, LUAPOOL_E_SCRIPT, "script_error", msg);
		lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
		lua_rawgeti(L, -1, STATE_TRACEBACK);
		size_t len;
		const char *tb = lua_tolstring(L, -1, &len);
		if (tb)
			append_traceback(&rc->out->traceback, tb, len);
		lua_pop(L, 2);
	}
}

static void
encode_result(struct run_call *rc)
{
	struct buffer *body = &rc->out->body;
	char err[512];
	buffer_append_string(body, "{\"result\":");
	enum vm_json_result r = vm_json_encode(rc->vm->L, -1, body, "result",
	    rc->vm->limits.max_depth, err, sizeof(err));
	if (r == VM_JSON_OK && buffer_append_char(body, '}') == 0) {
		set_outcome(rc->out, LUAPOOL_OK, "ok", "");
	} else if (r == VM_JSON_NOT_SERIALIZABLE) {
		set_outcome(rc->out, LUAPOOL_E_RESULT, "result_not_serializable", err);
	} else {
		snprintf(rc->out->message, sizeof(rc->out->message),
		    "result larger than max_result_bytes (%zu bytes)", rc->vm->limits.max_result_bytes);
		rc->out->status = LUAPOOL_E_RESULT;
		rc->out->code = "result_too_large";
	}
}

/* Runs inside lua_cpcall: an out-of-memory anywhere lands in vm_run. */
static int
run_protected(lua_State *L)
{
	struct run_call *rc = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, rc->vm->handler_ref);	/* 1 */
	if (push_job_function(rc) == -1)			/* 2 */
		return 0;
	push_environment(rc);					/* 3 */
	lua_pushvalue(L, 3);
	lua_setfenv(L, 2);
	lua_pop(L, 1);
	int status = lua_pcall(L, 0, 1, 1);
	if (status != 0) {
		classify_failure(rc, status);
		return 0;
	}
	encode_result(rc);
	return 0;
}

static void
reset_outcome(struct vm_outcome *out)
{
	out->status = LUAPOOL_OK;
	out->code = "ok";
	out->message[0] = '\0';
	out->cache_hit = out->cache_miss = out->soft_stopped = out->heap_high = 0;
	buffer_reset(&out->body);
	buffer_reset(&out->traceback);
}

/* Clears what a job leaves in the state: stack, hook, its environment. */
static void
after_job(struct vm *vm, int collect)
{
	lua_State *L = vm->L;
	lua_settop(L, 0);
	lua_sethook(L, NULL, 0, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	for (int slot = STATE_ENV; slot <= STATE_REQUEST; slot++) {
		lua_pushnil(L);
		lua_rawseti(L, -2, slot);
	}
	lua_pop(L, 1);
	free(vm->decoded);
	vm->decoded = NULL;
	vm->loaded_ok = 0;
	if (collect || vm->used > vm->limit / 2)
		lua_gc(L, LUA_GCCOLLECT, 0);
	vm->interrupted = 0;
	vm->memory_refused = 0;
}

/* Request loading ---------------------------------------------------------- */

struct load_call {
	struct vm *vm;
	struct vm_request *request;
	struct vm_outcome *out;
};

static int
load_failed(struct vm_outcome *out, enum luapool_status status, const char *code,
    const char *message)
{
	set_outcome(out, status, code, message);
	return -1;
}

/* Field `key` of the request table at index 1, raw; pushes it. */
static int
request_field(lua_State *L, const char *key)
{
	lua_pushstring(L, key);
	lua_rawget(L, 1);
	return lua_type(L, -1);
}

static int
is_json_null(lua_State *L, int index)
{
	return lua_type(L, index) == LUA_TLIGHTUSERDATA && lua_touserdata(L, index) == NULL;
}

static int
take_request_timeout(lua_State *L, struct vm_request *req, struct vm_outcome *out)
{
	int type = request_field(L, "timeout_ms");
	if (type == LUA_TNIL || is_json_null(L, -1))
		return 0;
	lua_Number t = lua_tonumber(L, -1);
	if (type != LUA_TNUMBER || t < 1 || t != (lua_Number)(long long)t)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "timeout_ms must be a positive integer");
	if (t > req->max_timeout_ms) {
		snprintf(out->message, sizeof(out->message),
		    "timeout_ms %.0f is above the limit of %u", t, req->max_timeout_ms);
		out->status = LUAPOOL_E_INVALID;
		out->code = "invalid_request";
		return -1;
	}
	req->timeout_ms = (unsigned)t;
	return 0;
}

static int
take_request_context(struct vm *vm, lua_State *L, struct vm_outcome *out)
{
	int type = request_field(L, "context");
	if (type == LUA_TNIL || is_json_null(L, -1))
		return 0;
	if (type != LUA_TTABLE || lua_getmetatable(L, -1))
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"context\" must be an object");
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, STATE_CONTEXT);
	lua_pop(L, 1);
	return 0;
}

static int
take_request_bytecode(struct vm *vm, lua_State *L, struct vm_request *req,
    struct vm_outcome *out)
{
	if (!req->allow_bytecode)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "bytecode is disabled on this server (allow_bytecode = no); send source");
	size_t len;
	const char *b64 = lua_tolstring(L, -1, &len);
	vm->decoded = malloc(base64_decoded_max(len) + 1);
	if (vm->decoded == NULL)
		return load_failed(out, LUAPOOL_E_MEMORY, "memory_limit_exceeded", "out of memory");
	long n = base64_decode(b64, len, vm->decoded);
	if (n < 0)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_base64",
		    "\"bytecode\" is not valid base64");
	if (n == 0)
		return load_failed(out, LUAPOOL_E_BYTECODE, "invalid_bytecode", "\"bytecode\" is empty");
	vm->loaded.chunk = (const char *)vm->decoded;
	vm->loaded.chunk_len = (size_t)n;
	vm->loaded.is_source = 0;
	return 0;
}

static int
take_request_chunk(struct vm *vm, lua_State *L, struct vm_request *req, struct vm_outcome *out)
{
	if (req->chunk_len) {
		if (!req->chunk_is_source && !req->allow_bytecode)
			return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
			    "bytecode is disabled on this server");
		vm->loaded.chunk = req->chunk;
		vm->loaded.chunk_len = req->chunk_len;
		vm->loaded.is_source = req->chunk_is_source;
		return 0;
	}
	int bc_type = request_field(L, "bytecode");
	int src_type = request_field(L, "source");
	if (bc_type != LUA_TNIL && src_type != LUA_TNIL)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "give either \"bytecode\" or \"source\", not both");
	if (src_type == LUA_TSTRING) {
		/* The string lives in the request table until the run ends. */
		vm->loaded.chunk = lua_tolstring(L, -1, &vm->loaded.chunk_len);
		vm->loaded.is_source = 1;
		return 0;
	}
	if (src_type != LUA_TNIL)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"source\" must be a string");
	if (req->compile)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"source\" (a string) is required");
	if (bc_type == LUA_TNIL)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "the request needs \"bytecode\" (base64) or \"source\"");
	if (bc_type != LUA_TSTRING)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"bytecode\" must be a base64 string");
	lua_pop(L, 1);
	return take_request_bytecode(vm, L, req, out);
}

static int
take_request_name(struct vm *vm, lua_State *L, struct vm_outcome *out)
{
	int type = request_field(L, "name");
	vm->loaded.name = NULL;
	if (type == LUA_TNIL || is_json_null(L, -1))
		return 0;
	if (type != LUA_TSTRING)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"name\" must be a string");
	snprintf(vm->loaded_name, sizeof(vm->loaded_name), "%s", lua_tostring(L, -1));
	vm->loaded.name = vm->loaded_name;
	return 0;
}

static int
load_protected(lua_State *L)
{
	struct load_call *lc = lua_touserdata(L, 1);
	struct vm *vm = lc->vm;
	struct vm_request *req = lc->request;
	char err[256];
	lua_settop(L, 0);
	/* Two levels above the context's own limit: the request and "context". */
	/* One level above the context's own limit: the request object. */
	if (vm_json_decode(L, req->text, req->len, vm->limits.max_depth + 1, err, sizeof(err)) == -1)
		return load_failed(lc->out, LUAPOOL_E_INVALID, "invalid_json", err), 0;
	if (!lua_istable(L, 1) || lua_getmetatable(L, 1))
		return load_failed(lc->out, LUAPOOL_E_INVALID, "invalid_request",
		    "the request must be a JSON object"), 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	lua_pushvalue(L, 1);
	lua_rawseti(L, -2, STATE_REQUEST);
	lua_settop(L, 1);
	if (take_request_name(vm, L, lc->out) == -1 ||
	    take_request_context(vm, L, lc->out) == -1 ||
	    take_request_timeout(L, req, lc->out) == -1 ||
	    take_request_chunk(vm, L, req, lc->out) == -1)
		return 0;
	vm->loaded_ok = 1;
	return 0;
}

int
vm_load_request(struct vm *vm, struct vm_request *req, struct vm_outcome *out)
{
	reset_outcome(out);
	after_job(vm, 0);
	req->timeout_ms = 0;
	vm->loaded_compile = req->compile;
	struct load_call lc = { .vm = vm, .request = req, .out = out };
	int status = lua_cpcall(vm->L, load_protected, &lc);
	lua_settop(vm->L, 0);
	if (status != 0) {
		set_outcome(out, LUAPOOL_E_MEMORY, "memory_limit_exceeded",
		    "the request does not fit in the heap limit");
		after_job(vm, 1);
		return -1;
	}
	if (!vm->loaded_ok) {
		after_job(vm, 0);
		return -1;
	}
	return 0;
}

int
vm_run_loaded(struct vm *vm, struct vm_outcome *out)
{
	struct vm_job job = vm->loaded;
	if (vm->loaded_compile)
		return vm_compile(vm, job.chunk, job.chunk_len, job.name, out);
	return vm_run(vm, &job, out);
}

int
vm_run(struct vm *vm, const struct vm_job *job, struct vm_outcome *out)
{
	reset_outcome(out);
	vm->memory_refused = 0;
	struct run_call rc = { .vm = vm, .job = job, .out = out };
	int status = lua_cpcall(vm->L, run_protected, &rc);
	if (status != 0)
		classify_failure(&rc, status);
	int collect = out->status == LUAPOOL_E_MEMORY;
	if (out->status != LUAPOOL_OK)
		buffer_reset(&out->body);
	after_job(vm, collect);
	/* after_job collected if the heap passed half the limit: still above
	 * it means live data the next job would inherit a small heap from. */
	out->heap_high = vm->used > vm->limit / 2;
	return 0;
}

static int
dump_to_buffer(lua_State *L, const void *p, size_t sz, void *ud)
{
	(void)L;
	return buffer_append(ud, p, sz);
}

static int
compile_protected(lua_State *L)
{
	struct run_call *rc = lua_touserdata(L, 1);
	lua_settop(L, 0);
	const struct vm_job *job = rc->job;
	char chunkname[80];
	snprintf(chunkname, sizeof(chunkname), "=%.64s", job->name ? job->name : "job");
	int st = luaL_loadbufferx(L, job->chunk, job->chunk_len, chunkname, "t");
	if (st == LUA_ERRMEM)
		return lua_error(L);
	if (st != 0) {
		set_outcome(rc->out, LUAPOOL_E_COMPILE, "compile_error", lua_tostring(L, -1));
		return 0;
	}
	struct buffer raw;
	buffer_init(&raw, 0);
	int dumped = lua_dump(L, dump_to_buffer, &raw) == 0;
	struct buffer *body = &rc->out->body;
	if (dumped && buffer_append_string(body, "{\"bytecode\":\"") == 0 &&
	    buffer_reserve(body, base64_encoded_size(raw.len) + 64) == 0) {
		body->len += base64_encode(raw.data, raw.len, body->data + body->len);
		buffer_printf(body, "\",\"size\":%zu}", raw.len);
		set_outcome(rc->out, LUAPOOL_OK, "ok", "");
	} else {
		set_outcome(rc->out, LUAPOOL_E_RESULT, "result_too_large",
		    "compiled bytecode larger than max_result_bytes");
	}
	buffer_free(&raw);
	return 0;
}

int
vm_compile(struct vm *vm, const char *source, size_t len, const char *name,
    struct vm_outcome *out)
{
	reset_outcome(out);
	struct vm_job job = { .chunk = source, .chunk_len = len, .is_source = 1, .name = name };
	struct run_call rc = { .vm = vm, .job = &job, .out = out, .compile_only = 1 };
	int status = lua_cpcall(vm->L, compile_protected, &rc);
	if (status != 0)
		classify_failure(&rc, status);
	after_job(vm, 0);
	return 0;
}
