/*
 * vm.c - one LuaJIT state per worker process: the heap limit, the soft
 * deadline stop, running a job and compiling source.
 *
 * The state lives as long as the worker; a job only ever sees its own
 * environment (vm_env.c) and a function that carries nothing from the job
 * before (vm_cache.c).  This file must never let a job reach the real
 * globals or the registry, and never reuse a state that looks damaged.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>

#include "common/base64.h"
#include "vm/vm_cache.h"
#include "vm/vm_env.h"
#include "vm/vm_internal.h"
#include "vm/vm_json_encode.h"
#include "vm/vm_log.h"
#include "vm/vm_outcome.h"

/* Job data for the protected runner. */
struct run_call {
	struct vm *vm;
	const struct vm_job *job;
	struct vm_outcome *out;
	int check_only;		/* compile without dumping: a script to store */
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
	if (vm->used > vm->peak)
		vm->peak = vm->used;
	return p;
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
	if (vm_env_open(vm, vm_require_lua, err, errlen) == -1)
		goto fail;
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
	vm_cache_free(vm);
	buffer_free(&vm->log);
	free(vm->decoded);
	free(vm);
}

size_t
vm_heap_peak(const struct vm *vm)
{
	return vm->peak;
}

const char *
vm_version(void)
{
	return LUAJIT_VERSION;
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
		vm_outcome_set(rc->out, LUAPOOL_E_DEADLINE, "deadline_exceeded",
		    "deadline exceeded (the job was stopped)");
	} else if (status == LUA_ERRMEM || vm->memory_refused) {
		snprintf(rc->out->message, sizeof(rc->out->message),
		    "memory limit of %zu MiB exceeded", vm->limit >> 20);
		rc->out->status = LUAPOOL_E_MEMORY;
		rc->out->code = "memory_limit_exceeded";
	} else {
		vm_outcome_set(rc->out, LUAPOOL_E_SCRIPT, "script_error", msg);
		lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
		lua_rawgeti(L, -1, STATE_TRACEBACK);
		size_t len;
		const char *tb = lua_tolstring(L, -1, &len);
		if (tb)
			append_traceback(&rc->out->traceback, tb, len);
		lua_pop(L, 2);
	}
}

/* A table the job raised as its error, as JSON for the answer's
 * error_value; left out when it has no JSON form or is too large. */
static void
encode_error_value(struct run_call *rc)
{
	lua_State *L = rc->vm->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, rc->vm->state_ref);
	lua_rawgeti(L, -1, STATE_ERROR_VALUE);
	if (lua_istable(L, -1) && vm_json_encode(L, -1, &rc->out->error_value, "error",
	    rc->vm->limits.max_depth, NULL, 0) != VM_JSON_OK)
		buffer_reset(&rc->out->error_value);
	lua_pop(L, 2);
}

/* Closes the body after the result, with ,"logs":[...] when the job wrote
 * any: past the body's limit, which bounds the result (the log has its
 * own).  Out of memory for the log, the answer goes without it. */
static int
close_result(struct run_call *rc, struct buffer *body)
{
	if (!vm_log_has_entries(rc->vm))
		return buffer_append_char(body, '}');
	size_t limit = body->limit, len = body->len;
	body->limit = 0;
	if (buffer_append_string(body, ",\"logs\":") == 0 &&
	    vm_log_append_array(rc->vm, body) == 0)
		rc->out->body_has_logs = 1;
	else
		body->len = len;
	int rv = buffer_append_char(body, '}');
	body->limit = limit;
	return rv;
}

static void
encode_result(struct run_call *rc)
{
	struct buffer *body = &rc->out->body;
	char err[512];
	buffer_append_string(body, "{\"result\":");
	enum vm_json_result r = vm_json_encode(rc->vm->L, -1, body, "result",
	    rc->vm->limits.max_depth, err, sizeof(err));
	if (r == VM_JSON_OK && close_result(rc, body) == 0) {
		vm_outcome_set(rc->out, LUAPOOL_OK, "ok", "");
	} else if (r == VM_JSON_NOT_SERIALIZABLE) {
		vm_outcome_set(rc->out, LUAPOOL_E_RESULT, "result_not_serializable", err);
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
	if (vm_cache_push_function(L, rc->vm, rc->job, rc->out) == -1)		/* 2 */
		return 0;
	vm_env_push(rc->vm);					/* 3 */
	lua_pushvalue(L, 3);
	lua_setfenv(L, 2);
	lua_pop(L, 1);
	lua_pushvalue(L, 2);					/* 3: called, 2 kept */
	if (rc->vm->lua_start)
		rc->vm->lua_start();
	int status = lua_pcall(L, 0, 1, 1);
	if (rc->vm->lua_done)
		rc->vm->lua_done();
	if (status != 0) {
		classify_failure(rc, status);
		if (rc->out->status == LUAPOOL_E_SCRIPT)
			encode_error_value(rc);
	} else {
		encode_result(rc);
	}
	vm_env_forget(L, rc->vm, 2);
	return 0;
}

static int
collect_protected(lua_State *L)
{
	lua_gc(L, LUA_GCCOLLECT, 0);
	return 0;
}

/* Clears what a job leaves in the state: stack, hook, its environment. */
void
vm_end_job(struct vm *vm, int collect)
{
	lua_State *L = vm->L;
	lua_settop(L, 0);
	lua_sethook(L, NULL, 0, 0);
	vm_env_clear(vm);
	vm_log_clear(vm);
	free(vm->decoded);
	vm->decoded = NULL;
	vm->loaded_ok = 0;
	/* Protected: shrinking the string table allocates, and an unprotected
	 * out-of-memory would end the process. */
	if ((collect || vm->used > vm->limit / 2) && lua_cpcall(L, collect_protected, NULL) != 0) {
		lua_settop(L, 0);
		vm->collect_failed = 1;
	}
	vm->interrupted = 0;
	vm->memory_refused = 0;
}

const struct vm_job *
vm_loaded_job(const struct vm *vm)
{
	return vm->loaded_ok ? &vm->loaded : NULL;
}

void
vm_on_lua_done(struct vm *vm, void (*done)(void))
{
	vm->lua_done = done;
}

void
vm_on_lua_start(struct vm *vm, void (*start)(void))
{
	vm->lua_start = start;
}

static int check_script(struct vm *vm, const struct vm_job *job, struct vm_outcome *out);

int
vm_run_loaded(struct vm *vm, struct vm_outcome *out)
{
	struct vm_job job = vm->loaded;
	if (vm->loaded_check)
		return check_script(vm, &job, out);
	if (vm->loaded_compile)
		return vm_compile(vm, job.chunk, job.chunk_len, job.name, out);
	return vm_run(vm, &job, out);
}

/*
 * After a job: does the state still look like what we built?  A job
 * cannot change any of this through the sandbox, so a difference means
 * memory was written that should not have been (hostile bytecode past
 * the verifier, or an engine bug): the worker must not serve again.
 */
static int
state_looks_sound(struct vm *vm)
{
	lua_State *L = vm->L;
	int sound = lua_gettop(L) == 0 && vm->used <= vm->limit;
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	sound = sound && lua_istable(L, -1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->index_ref);
	sound = sound && lua_isfunction(L, -1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->handler_ref);
	sound = sound && lua_iscfunction(L, -1);
	lua_settop(L, 0);
	return sound;
}

int
vm_run(struct vm *vm, const struct vm_job *job, struct vm_outcome *out)
{
	vm_outcome_reset(out);
	vm->memory_refused = 0;
	struct run_call rc = { .vm = vm, .job = job, .out = out };
	int status = lua_cpcall(vm->L, run_protected, &rc);
	if (status != 0)
		classify_failure(&rc, status);
	int collect = out->status == LUAPOOL_E_MEMORY;
	if (vm->module_replace != VM_REPLACE_NO)
		out->replace = vm->module_replace;	/* LuaJIT refused a verified module */
	if (out->status != LUAPOOL_OK) {
		buffer_reset(&out->body);
		out->body_has_logs = 0;
		if (vm_log_has_entries(vm) && vm_log_append_array(vm, &out->logs) == -1)
			buffer_reset(&out->logs);
	}
	vm_end_job(vm, collect);
	/* vm_end_job collected if the heap passed half the limit: still above
	 * it means live data the next job would inherit a small heap from. */
	out->heap_high = vm->used > vm->limit / 2;
	if (vm->collect_failed)
		out->replace = VM_REPLACE_MEMORY;
	if (!state_looks_sound(vm))
		out->replace = VM_REPLACE_DAMAGED;
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
		vm_outcome_set(rc->out, LUAPOOL_E_COMPILE, "compile_error", lua_tostring(L, -1));
		return 0;
	}
	if (rc->check_only)
		return 0;
	struct buffer raw;
	buffer_init(&raw, 0);
	int dumped = lua_dump(L, dump_to_buffer, &raw) == 0;
	struct buffer *body = &rc->out->body;
	if (dumped && buffer_append_string(body, "{\"bytecode\":\"") == 0 &&
	    buffer_reserve(body, base64_encoded_size(raw.len) + 64) == 0) {
		body->len += base64_encode(raw.data, raw.len, body->data + body->len);
		buffer_printf(body, "\",\"size\":%zu}", raw.len);
		vm_outcome_set(rc->out, LUAPOOL_OK, "ok", "");
	} else {
		vm_outcome_set(rc->out, LUAPOOL_E_RESULT, "result_too_large",
		    "compiled bytecode larger than max_result_bytes");
	}
	buffer_free(&raw);
	return 0;
}

int
vm_compile(struct vm *vm, const char *source, size_t len, const char *name,
    struct vm_outcome *out)
{
	vm_outcome_reset(out);
	struct vm_job job = { .chunk = source, .chunk_len = len, .is_source = 1, .name = name };
	struct run_call rc = { .vm = vm, .job = &job, .out = out };
	int status = lua_cpcall(vm->L, compile_protected, &rc);
	if (status != 0)
		classify_failure(&rc, status);
	vm_end_job(vm, 0);
	return 0;
}

/* A script to store: source must compile (bytecode is the supervisor's to
 * verify); the body is the chunk itself.  It is no larger than the request
 * the pool sent, so it may pass max_result_bytes: the limit of a result. */
static int
check_script(struct vm *vm, const struct vm_job *job, struct vm_outcome *out)
{
	vm_outcome_reset(out);
	if (job->is_source) {
		struct run_call rc = { .vm = vm, .job = job, .out = out, .check_only = 1 };
		int status = lua_cpcall(vm->L, compile_protected, &rc);
		if (status != 0)
			classify_failure(&rc, status);
	}
	if (out->status == LUAPOOL_OK) {
		size_t limit = out->body.limit;
		out->body.limit = 0;
		if (buffer_append(&out->body, job->chunk, job->chunk_len) == -1)
			vm_outcome_set(out, LUAPOOL_E_MEMORY, "memory_limit_exceeded",
			    "out of memory");
		out->body.limit = limit;
		out->chunk_is_source = job->is_source;
	}
	vm_end_job(vm, 0);
	return 0;
}
