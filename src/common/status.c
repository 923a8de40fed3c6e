/*
 * status.c - the stable names of luapool statuses and recycle reasons.
 * These strings are part of the HTTP contract (problem `code`, metric
 * labels), so they never change.
 */
#include "luapool.h"

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
