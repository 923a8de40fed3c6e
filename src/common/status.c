/*
 * status.c - the stable names of luapool statuses.  These strings are part
 * of the HTTP contract (problem `code`), so they never change.
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
