/*
 * vm_request.c - a job's JSON request, decoded straight into the VM and
 * checked: the chunk (source, base64 bytecode, or a stored script's chunk
 * sent beside the JSON), the context, timeout_ms, name and usage.
 *
 * Everything here is client input: refuse anything malformed with a clear
 * code; never keep anything past the job (vm_end_job clears it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "vm/vm_internal.h"
#include "vm/vm_json_decode.h"
#include "vm/vm_outcome.h"
#include "vm/vm_request.h"

/* Lives in the request call only. */
struct load_call {
	struct vm *vm;
	struct vm_request *request;
	struct vm_outcome *out;
};

static int
load_failed(struct vm_outcome *out, enum luapool_status status, const char *code,
    const char *message)
{
	vm_outcome_set(out, status, code, message);
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

/* The base64 string on top of the stack into vm->decoded. */
static int
decode_bytecode(struct vm *vm, lua_State *L, struct vm_outcome *out)
{
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
take_request_bytecode(struct vm *vm, lua_State *L, struct vm_request *req,
    struct vm_outcome *out)
{
	if (req->allow_bytecode == LUAPOOL_BYTECODE_BESIDE)
		return load_failed(out, LUAPOOL_E_BYTECODE, "invalid_bytecode",
		    "bytecode must be signed by this server: compile it with /v1/compile");
	if (req->allow_bytecode != LUAPOOL_BYTECODE_ANY)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "bytecode is disabled on this server (bytecode = off); send source");
	return decode_bytecode(vm, L, out);
}

/* A script to store: exactly one of "source" (text) or "bytecode"
 * (base64).  Bytecode is only decoded: the supervisor verifies it (and
 * checks its tag with bytecode = signed) before storing it. */
static int
take_script_chunk(struct vm *vm, lua_State *L, struct vm_request *req, struct vm_outcome *out)
{
	int bc_type = request_field(L, "bytecode");
	int src_type = request_field(L, "source");
	if (src_type == LUA_TSTRING && bc_type == LUA_TNIL) {
		vm->loaded.chunk = lua_tolstring(L, -1, &vm->loaded.chunk_len);
		vm->loaded.is_source = 1;
		return 0;
	}
	if (bc_type != LUA_TSTRING || src_type != LUA_TNIL)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "give either \"source\" (text) or \"bytecode\" (base64)");
	if (req->allow_bytecode == LUAPOOL_BYTECODE_NONE)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "bytecode is disabled on this server (bytecode = off); send source");
	lua_pop(L, 1);
	return decode_bytecode(vm, L, out);
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
	if (req->check_script)
		return take_script_chunk(vm, L, req, out);
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

/* The chunk's name: the request's "name", else the name sent beside a
 * stored script's chunk, else none ("job"). */
static int
take_request_name(struct vm *vm, lua_State *L, struct vm_request *req,
    struct vm_outcome *out)
{
	int type = request_field(L, "name");
	vm->loaded.name = NULL;
	if (type == LUA_TNIL || is_json_null(L, -1)) {
		if (req->chunk_name && req->chunk_len) {
			snprintf(vm->loaded_name, sizeof(vm->loaded_name), "%s", req->chunk_name);
			vm->loaded.name = vm->loaded_name;
		}
		return 0;
	}
	if (type != LUA_TSTRING)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"name\" must be a string");
	snprintf(vm->loaded_name, sizeof(vm->loaded_name), "%s", lua_tostring(L, -1));
	vm->loaded.name = vm->loaded_name;
	return 0;
}

/* "usage": true asks for the job's usage beside its result. */
static int
take_request_usage(lua_State *L, struct vm_request *req, struct vm_outcome *out)
{
	int type = request_field(L, "usage");
	if (type == LUA_TNIL || is_json_null(L, -1))
		return 0;
	if (type != LUA_TBOOLEAN)
		return load_failed(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"usage\" must be true or false");
	req->usage = lua_toboolean(L, -1);
	return 0;
}

/* Every field a request may have; any other is refused, so a misspelled
 * one ("contxt") is an error, not silently ignored.  Some fields mean
 * nothing to some routes (a stored script's run ignores "source"). */
static const char *const known_fields[] = {
	"source", "bytecode", "context", "timeout_ms", "name", "usage"
};

/* The request table at index 1 has only known fields; one pass. */
static int
check_request_fields(lua_State *L, struct vm_outcome *out)
{
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		lua_pop(L, 1);
		size_t len;
		const char *key = lua_tolstring(L, -1, &len);
		size_t i = 0;
		while (i < sizeof(known_fields) / sizeof(known_fields[0]) &&
		    (strlen(known_fields[i]) != len || memcmp(known_fields[i], key, len) != 0))
			i++;
		if (i < sizeof(known_fields) / sizeof(known_fields[0]))
			continue;
		/* At most 64 bytes of the name, cut before a UTF-8 character. */
		int shown = len > 64 ? 64 : (int)len;
		while (shown > 0 && (size_t)shown < len && ((unsigned char)key[shown] & 0xC0) == 0x80)
			shown--;
		snprintf(out->message, sizeof(out->message), "unknown field \"%.*s\"%s", shown,
		    key, (size_t)shown < len ? "..." : "");
		out->status = LUAPOOL_E_INVALID;
		out->code = "unknown_field";
		return -1;
	}
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
	/* One level above the context's own limit: the request object. */
	int decoded = vm_json_decode_request(L, req->text, req->len, vm->limits.max_depth + 1,
	    err, sizeof(err));
	if (decoded == -2)	/* valid JSON, but a request this server refuses */
		return load_failed(lc->out, LUAPOOL_E_INVALID, "invalid_request", err), 0;
	if (decoded == -1)
		return load_failed(lc->out, LUAPOOL_E_INVALID, "invalid_json", err), 0;
	if (!lua_istable(L, 1) || lua_getmetatable(L, 1))
		return load_failed(lc->out, LUAPOOL_E_INVALID, "invalid_request",
		    "the request must be a JSON object"), 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->state_ref);
	lua_pushvalue(L, 1);
	lua_rawseti(L, -2, STATE_REQUEST);
	lua_settop(L, 1);
	if (check_request_fields(L, lc->out) == -1 ||
	    take_request_name(vm, L, req, lc->out) == -1 ||
	    take_request_context(vm, L, lc->out) == -1 ||
	    take_request_timeout(L, req, lc->out) == -1 ||
	    take_request_usage(L, req, lc->out) == -1 ||
	    take_request_chunk(vm, L, req, lc->out) == -1)
		return 0;
	vm->loaded_ok = 1;
	return 0;
}

int
vm_request_load(struct vm *vm, struct vm_request *req, struct vm_outcome *out)
{
	vm_outcome_reset(out);
	vm_end_job(vm, 0);
	vm->peak = vm->used;
	req->timeout_ms = 0;
	req->usage = 0;
	vm->loaded_compile = req->compile;
	vm->loaded_check = req->check_script;
	struct load_call lc = { .vm = vm, .request = req, .out = out };
	int status = lua_cpcall(vm->L, load_protected, &lc);
	lua_settop(vm->L, 0);
	if (status != 0) {
		vm_outcome_set(out, LUAPOOL_E_MEMORY, "memory_limit_exceeded",
		    "the request does not fit in the heap limit");
		out->replace = VM_REPLACE_MEMORY;
		vm_end_job(vm, 1);
		return -1;
	}
	if (!vm->loaded_ok) {
		vm_end_job(vm, 0);
		return -1;
	}
	return 0;
}
