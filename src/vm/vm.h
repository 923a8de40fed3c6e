/*
 * vm.h - the worker's LuaJIT state: a counting allocator with a heap
 * limit, the sandbox and the fresh per-job environment (DESIGN §3), the
 * bytecode cache, running a job and compiling source.
 *
 * vm*.c are the only files that include the Lua headers.
 */
#ifndef VM_H
#define VM_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/buffer.h"
#include "luapool.h"

struct vm;

struct vm_limits {
	size_t memory_bytes;
	size_t max_result_bytes;
	unsigned max_depth;
	unsigned cache_entries;
};

struct vm_job {
	const char *chunk;		/* bytecode or source */
	size_t chunk_len;
	int is_source;
	const char *name;		/* chunk name for messages; NULL: "job" */
};

/* A JSON request {"bytecode"|"source", "context", "timeout_ms", "name"},
 * decoded straight into the VM by vm_load_request. */
struct vm_request {
	const char *text;		/* the JSON text */
	size_t len;
	const char *chunk;		/* a chunk sent beside the JSON (stored scripts) */
	size_t chunk_len;
	int chunk_is_source;
	int compile;			/* needs "source"; the answer is bytecode */
	int allow_bytecode;
	unsigned max_timeout_ms;
	unsigned timeout_ms;		/* out: the request's timeout_ms, 0 if none */
};

struct vm_outcome {
	enum luapool_status status;
	const char *code;		/* stable problem code */
	char message[1024];
	struct buffer body;		/* OK: the response body */
	struct buffer traceback;	/* script errors */
	int cache_hit, cache_miss, soft_stopped;
	int heap_high;			/* over half the limit after a full GC */
};

struct vm *vm_new(const struct vm_limits *limits, char *err, size_t errlen);
void vm_free(struct vm *vm);

/* The soft stop: makes running Lua code raise "deadline exceeded" at its
 * next instruction, and again after every pcall that catches it.
 * Async-signal-safe; the hook stays until the job ends. */
void vm_interrupt(struct vm *vm);

/*
 * Decodes and checks a request; its context stays in the VM for the next
 * vm_run_loaded.  Returns 0, or -1 with the outcome set (invalid_json,
 * invalid_request, invalid_base64, invalid_bytecode ...).  The request's
 * text and chunk must stay valid until the run.
 */
int vm_load_request(struct vm *vm, struct vm_request *request, struct vm_outcome *outcome);
/* Runs (or compiles) what vm_load_request loaded. */
int vm_run_loaded(struct vm *vm, struct vm_outcome *outcome);

/* outcome->body and ->traceback must be initialized buffers; they are
 * reset, not freed.  Runs `job` with the context of the last loaded request
 * (an empty table if none).  Returns 0 if the job ran (status tells how). */
int vm_run(struct vm *vm, const struct vm_job *job, struct vm_outcome *outcome);
/* Compiles source; body is {"bytecode": base64, "size": n}. */
int vm_compile(struct vm *vm, const char *source, size_t len, const char *name,
    struct vm_outcome *outcome);

/* "LuaJIT 2.1.0-beta3" */
const char *vm_version(void);

#endif
