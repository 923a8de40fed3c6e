/*
 * status.c - the stable names of luapool statuses and recycle reasons.
 * These strings are part of the HTTP contract (problem `code`, metric
 * labels), so they never change.
 */
#include <string.h>

#include "luapool.h"
#include "common/status.h"

const char *
luapool_status_code(enum luapool_status status)
{
	switch (status) {
	case LUAPOOL_OK: return "ok";
	case LUAPOOL_E_INVALID: return "invalid_request";
	case LUAPOOL_E_BYTECODE: return "invalid_bytecode";
	case LUAPOOL_E_COMPILE: return "compile_error";
	case LUAPOOL_E_SCRIPT: return "script_error";
	case LUAPOOL_E_MEMORY: return "memory_limit_exceeded";
	case LUAPOOL_E_RESULT: return "result_not_serializable";
	case LUAPOOL_E_DEADLINE: return "deadline_exceeded";
	case LUAPOOL_E_OVERLOADED: return "overloaded";
	case LUAPOOL_E_CRASHED: return "worker_crashed";
	case LUAPOOL_E_SHUTDOWN: return "shutting_down";
	}
	return "internal_error";
}

/* The codes a worker may answer with each status: what the worker's
 * vm_outcome_set produces.  Everything else (overloaded, unauthorized,
 * not_found ...) is the supervisor's to say. */
static const struct {
	enum luapool_status status;
	const char *code;
} worker_codes[] = {
	{ LUAPOOL_E_INVALID, "invalid_json" }, { LUAPOOL_E_INVALID, "invalid_request" },
	{ LUAPOOL_E_INVALID, "unknown_field" }, { LUAPOOL_E_INVALID, "invalid_base64" },
	{ LUAPOOL_E_BYTECODE, "invalid_bytecode" }, { LUAPOOL_E_COMPILE, "compile_error" },
	{ LUAPOOL_E_SCRIPT, "script_error" }, { LUAPOOL_E_MEMORY, "memory_limit_exceeded" },
	{ LUAPOOL_E_RESULT, "result_not_serializable" }, { LUAPOOL_E_RESULT, "result_too_large" },
	{ LUAPOOL_E_DEADLINE, "deadline_exceeded" },
};

int
luapool_worker_code_fits(enum luapool_status status, const char *code)
{
	for (size_t i = 0; i < sizeof(worker_codes) / sizeof(worker_codes[0]); i++)
		if (worker_codes[i].status == status && strcmp(worker_codes[i].code, code) == 0)
			return 1;
	return 0;
}

const char *
luapool_recycle_reason_name(enum luapool_recycle_reason reason)
{
	switch (reason) {
	case LUAPOOL_RECYCLE_MAX_JOBS: return "max_jobs";
	case LUAPOOL_RECYCLE_HEAP_HIGH: return "heap_high";
	case LUAPOOL_RECYCLE_PRIORITY: return "priority";
	case LUAPOOL_RECYCLE_BAD_LOAD: return "bad_load";
	case LUAPOOL_RECYCLE_DAMAGED: return "damaged";
	case LUAPOOL_RECYCLE_MEMORY: return "memory";
	case LUAPOOL_RECYCLE_REASONS: break;
	}
	return "unknown";
}
