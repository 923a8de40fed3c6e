/*
 * vm.h - the worker's LuaJIT state: a counting allocator with a heap
 * limit, the sandbox and the fresh per-job environment (DESIGN §3), the
 * bytecode cache, running a job and compiling source.
 *
 * Only files in src/vm/ include the Lua headers; this header does not.
 */
#ifndef VM_H
#define VM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buffer.h"
#include "luapool.h"

struct vm;

struct vm_limits {
	size_t memory_bytes;
	size_t max_result_bytes;
	unsigned max_depth;
	unsigned cache_entries;
	size_t max_log_bytes;		/* print and log.* capture, as JSON text; 0: none */
	int bytecode_jit;		/* 0: client bytecode runs in the interpreter only */
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
	const char *chunk_name;		/* its name (a stored script's); NULL: none */
	int compile;			/* needs "source"; the answer is bytecode */
	int check_script;		/* a script to store: "source" or "bytecode";
					 * the answer is the chunk itself */
	int allow_bytecode;
	unsigned max_timeout_ms;
	unsigned timeout_ms;		/* out: the request's timeout_ms, 0 if none */
	int usage;			/* out: the request asked for "usage" */
};

/* Why a worker must not serve another job after this one. */
enum vm_replace {
	VM_REPLACE_NO = 0,
	VM_REPLACE_BAD_LOAD,	/* LuaJIT refused bytecode the verifier passed */
	VM_REPLACE_DAMAGED,	/* the state no longer looks as built */
	VM_REPLACE_MEMORY	/* the request or job hit the heap limit while loading */
};

struct vm_outcome {
	enum luapool_status status;
	const char *code;		/* stable problem code */
	char message[1024];
	struct buffer body;		/* OK: the response body */
	struct buffer traceback;	/* script errors */
	struct buffer logs;		/* errors of a run: the job's log, a JSON array */
	struct buffer error_value;	/* script errors: a table error value as JSON */
	int body_has_logs;		/* OK: the body carries "logs" */
	int cache_hit, cache_miss, soft_stopped;
	int heap_high;			/* over half the limit after a full GC */
	enum vm_replace replace;
	int chunk_is_source;		/* check_script: the body is source */
	/* Per-job usage, filled by the job loop (worker.c) after the run. */
	int usage;			/* the request asked for it: cpu_ns is measured */
	uint64_t cpu_ns;
	size_t heap_peak_bytes;
};

struct vm *vm_new(const struct vm_limits *limits, char *err, size_t errlen);
void vm_free(struct vm *vm);

/* The soft stop: makes running Lua code raise "deadline exceeded" at its
 * next instruction, and again after every pcall that catches it.
 * Async-signal-safe; the hook stays until the job ends. */
void vm_interrupt(struct vm *vm);

/* `done` runs as soon as a job's Lua code has returned, before the
 * clean-up (encoding, a full collection): the worker's deadline timer must
 * not take a long clean-up for a job that ignored its soft stop. */
void vm_on_lua_done(struct vm *vm, void (*done)(void));
/* `start` runs right before a job's Lua code, after its chunk was found
 * in the cache or compiled and verified: the lane's timer must not stop
 * a compile, which no hook can interrupt. */
void vm_on_lua_start(struct vm *vm, void (*start)(void));

/* The chunk vm_request_load (vm_request.h) loaded, until the job ends;
 * NULL if none. */
const struct vm_job *vm_loaded_job(const struct vm *vm);
/* Runs (or compiles) what vm_request_load (vm_request.h) loaded. */
int vm_run_loaded(struct vm *vm, struct vm_outcome *outcome);

/* outcome->body, ->traceback, ->logs and ->error_value must be initialized
 * buffers; they are reset, not freed.  error_value's limit bounds the
 * JSON text of an error value (a larger one is left out).  Runs `job` with the context of the last loaded request
 * (an empty table if none).  Returns 0 if the job ran (status tells how). */
int vm_run(struct vm *vm, const struct vm_job *job, struct vm_outcome *outcome);
/* Compiles source; body is {"bytecode": base64, "size": n}. */
int vm_compile(struct vm *vm, const char *source, size_t len, const char *name,
    struct vm_outcome *outcome);

/* Ends a job: clears the stack, hook and what the job left in the state;
 * collects garbage if asked or if the heap is over half its limit. */
void vm_end_job(struct vm *vm, int collect);

/* The Lua heap's peak since the last request was loaded (the allocator
 * tracks it at no cost beyond a comparison). */
size_t vm_heap_peak(const struct vm *vm);

/* "LuaJIT 2.1.0-beta3" */
const char *vm_version(void);

#endif
