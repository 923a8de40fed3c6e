/*
 * luapool.h - run LuaJIT jobs in a pool of supervised, sandboxed worker
 * processes.
 *
 * The pool owns N worker processes (the executable luapool-worker), a bounded
 * job queue and one dispatcher thread.  Every job runs in a fresh global
 * environment where `ctx` is the job's context, under a deadline and a heap
 * limit; a job that crashes or overruns its deadline costs one worker
 * process, which the pool replaces.
 *
 * Thread safety: every function that takes a `struct luapool *` may be called
 * from any thread, except luapool_shutdown, which must be called once, after
 * which the pool pointer is invalid.  Completion callbacks run on the pool's
 * dispatcher thread: they must not block and must not call luapool_shutdown.
 *
 * Ownership: results are cJSON values the caller frees with cJSON_Delete;
 * luapool_context_set takes ownership of its value.
 *
 * Link: cc app.c -Iinclude build/libluapool.a $(pkg-config --cflags --libs libcjson) -lpthread
 */
#ifndef LUAPOOL_H
#define LUAPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUAPOOL_VERSION "0.1.0"

struct luapool;
struct luapool_context;

enum luapool_status {
	LUAPOOL_OK = 0,
	LUAPOOL_E_INVALID,	/* bad argument or malformed request */
	LUAPOOL_E_BYTECODE,	/* not loadable LuaJIT bytecode for this build */
	LUAPOOL_E_COMPILE,	/* source does not compile */
	LUAPOOL_E_SCRIPT,	/* the script raised an error */
	LUAPOOL_E_MEMORY,	/* heap limit reached */
	LUAPOOL_E_RESULT,	/* result not serializable or too large */
	LUAPOOL_E_DEADLINE,	/* deadline passed (queued time included) */
	LUAPOOL_E_OVERLOADED,	/* queue full */
	LUAPOOL_E_CRASHED,	/* the worker process died while running the job */
	LUAPOOL_E_SHUTDOWN	/* the pool is shutting down or shut down */
};

struct luapool_error {
	enum luapool_status status;
	char message[512];
};

/* Defaults of every option (see luapool_options_init). */
#define LUAPOOL_DEFAULT_QUEUE_DEPTH	1024u
#define LUAPOOL_DEFAULT_TIMEOUT_MS	1000u
#define LUAPOOL_DEFAULT_MAX_TIMEOUT_MS	60000u
#define LUAPOOL_DEFAULT_MEMORY_MB	128u
#define LUAPOOL_DEFAULT_MAX_RESULT	(1024u * 1024u)
#define LUAPOOL_DEFAULT_MAX_JOBS	100000u
#define LUAPOOL_DEFAULT_CACHE_ENTRIES	256u
#define LUAPOOL_DEFAULT_GRACE_MS	3u
#define LUAPOOL_DEFAULT_MAX_DEPTH	256u
#define LUAPOOL_DEFAULT_MAX_LOG		(64u * 1024u)
#define LUAPOOL_MAX_LOG_LIMIT		(16u * 1024u * 1024u)
#define LUAPOOL_DEFAULT_WORKER_USER	"nobody"
#define LUAPOOL_MAX_MODULES		64u	/* require() calls that reach the lookup, per job */
#define LUAPOOL_MODULE_NAME_MAX		64u	/* bytes of a module name */

/*
 * Finds the module `name` for a job's require("name").  `name` comes from
 * the job: 1 to LUAPOOL_MODULE_NAME_MAX bytes without NUL, otherwise
 * unchecked.  Runs on the dispatcher thread (see luapool_dispatch), so it
 * must be quick and safe against whatever thread changes the modules.
 * Returns 0 with *chunk a copy from malloc that the pool owns from then on
 * (it frees it with free once written to the worker), *len its bytes and
 * *is_source 1 for Lua source, 0 for LuaJIT bytecode (the worker verifies
 * it before loading); -1 when there is no such module.
 */
typedef int luapool_module_lookup(void *arg, const char *name, char **chunk, size_t *len,
    int *is_source);

struct luapool_options {
	unsigned workers;		/* 0: one per online CPU */
	unsigned queue_depth;		/* jobs waiting for a worker, beyond which submit fails */
	unsigned default_timeout_ms;	/* when a job gives none */
	unsigned max_timeout_ms;	/* larger requested timeouts are invalid */
	unsigned memory_limit_mb;	/* Lua heap per worker */
	size_t max_result_bytes;	/* serialized result size */
	unsigned max_jobs_per_worker;	/* recycle a worker after this many jobs; 0: never */
	unsigned cache_entries;		/* bytecode cache per worker */
	unsigned grace_ms;		/* soft stop to hard stop */
	unsigned max_json_depth;	/* nesting of contexts and results */
	size_t max_log_bytes;		/* what a job's print and log.* may capture (JSON
					 * text), at most LUAPOOL_MAX_LOG_LIMIT; 0: nothing */
	int allow_bytecode;		/* LUAPOOL_BYTECODE_*; 0: only source is accepted */
	const char *worker_path;	/* NULL: $LUAPOOL_WORKER, install path, next to the executable */
	const char *worker_user;	/* a pool started as root runs its workers as this
					 * user (never root); ignored otherwise */
	int external_dispatch;		/* 1: no pool thread; see luapool_dispatch */
	/* Where require("name") finds modules; NULL: require raises "modules
	 * are not available".  Each job gets fresh module instances. */
	luapool_module_lookup *module_lookup;
	void *module_lookup_arg;
	int bytecode_jit;		/* 1 (default): JIT-compile client bytecode too;
					 * 0: client bytecode is interpreted only (the
					 * verifier covers what the interpreter relies on,
					 * not the trace compiler's assumptions) */
};

/* Values of luapool_options.allow_bytecode. */
#define LUAPOOL_BYTECODE_NONE	0	/* source only */
#define LUAPOOL_BYTECODE_ANY	1	/* bytecode in the request or beside it */
#define LUAPOOL_BYTECODE_BESIDE	2	/* only a chunk the caller sends beside the
					 * request (luapool_job.chunk, luapool_submit),
					 * having checked it; "bytecode" in a request
					 * is refused */

/* Fills `opts` with the defaults above. */
void luapool_options_init(struct luapool_options *opts);

/* The seed's API ------------------------------------------------------- */

/* Returns a pool of `num_workers` workers (0: one per CPU) or NULL with err filled. */
struct luapool *luapool_new(unsigned num_workers, struct luapool_error *err);
struct luapool *luapool_new_with(const struct luapool_options *opts, struct luapool_error *err);

/*
 * Runs LuaJIT bytecode (as `luajit -b` writes it) with `ctx` (may be NULL)
 * and waits.  Returns the first return value (JSON null when there is none);
 * the caller frees it with cJSON_Delete.  NULL on error, with err filled.
 * What the job printed or logged is dropped (luapool_submit_async's reply
 * has it).
 */
cJSON *luapool_submit(struct luapool *pool, const void *bytecode, size_t len,
    const struct luapool_context *ctx, struct luapool_error *err);
cJSON *luapool_submit_timeout(struct luapool *pool, const void *bytecode, size_t len,
    const struct luapool_context *ctx, unsigned timeout_ms, struct luapool_error *err);

/* Stops taking jobs, finishes the queued and running ones, stops every
 * worker and releases the pool's threads, processes and memory.  Returns 0,
 * or -1 if a worker had to be killed.  The handle itself stays valid so
 * that later calls fail cleanly with LUAPOOL_E_SHUTDOWN; release it with
 * luapool_free (which shuts down first if needed). */
int luapool_shutdown(struct luapool *pool);
void luapool_free(struct luapool *pool);

/* Live worker processes. */
unsigned luapool_active_workers(const struct luapool *pool);

struct luapool_context *luapool_context_new(void);
/* Takes ownership of `value`; replaces an earlier value of `key`. */
void luapool_context_set(struct luapool_context *ctx, const char *key, cJSON *value);
/* Borrowed pointer, valid until the key is set again or ctx is freed. */
const cJSON *luapool_context_get(const struct luapool_context *ctx, const char *key);
void luapool_context_free(struct luapool_context *ctx);

/* Extensions ------------------------------------------------------------ */

/* Same as luapool_submit_timeout for Lua source text. */
cJSON *luapool_submit_source(struct luapool *pool, const char *source, size_t len,
    const struct luapool_context *ctx, unsigned timeout_ms, struct luapool_error *err);

/*
 * Compiles source to bytecode (debug info kept) in a worker.  Returns a
 * malloc'd buffer the caller frees, its size in *out_len; NULL on error.
 */
void *luapool_compile(struct luapool *pool, const char *source, size_t len,
    const char *chunkname, size_t *out_len, struct luapool_error *err);

enum luapool_job_kind {
	/* `request` is a JSON request text {"bytecode"|"source", "context",
	 * "timeout_ms", "name"}; the worker parses it, not the pool. */
	LUAPOOL_JOB_EXEC,
	/* `request` is {"source", "name"}; the reply body is {"bytecode": b64}. */
	LUAPOOL_JOB_COMPILE,
	/* `request` is a script to store, {"source": text} or {"bytecode":
	 * base64}, parsed by the worker: source must compile.  The reply body
	 * is the chunk itself (no larger than the request): the source text,
	 * or the decoded bytecode, which is NOT verified (the caller must);
	 * reply.chunk_is_source tells which. */
	LUAPOOL_JOB_CHECK_SCRIPT
};

struct luapool_job {
	enum luapool_job_kind kind;
	const char *request;		/* JSON text, copied by submit */
	size_t request_len;
	const void *chunk;		/* optional: bytecode or source that the request omits */
	size_t chunk_len;
	int chunk_is_source;
	const char *chunk_name;		/* optional, with chunk: its name in errors (its first
					 * 64 bytes; a stored script's name); the request's
					 * "name" overrides it; NULL: "job" */
	unsigned timeout_ms;		/* 0: the request's own, else the default */
};

struct luapool_reply {
	enum luapool_status status;
	const char *code;		/* stable problem code, e.g. "deadline_exceeded" */
	const char *body;		/* OK: {"result": ...} or {"bytecode": ...} */
	size_t body_len;
	const char *message;		/* errors: what happened */
	const char *traceback;		/* script errors: may be NULL */
	/* Errors of a run, as the worker sent them (untrusted: check before
	 * use), NULL when none: the job's captured logs, a JSON array of
	 * {"level","text"}; script errors raised with a table: that table as
	 * JSON.  On success the logs are in the body instead, and
	 * body_has_logs says so. */
	const char *logs;
	const char *error_value;
	int body_has_logs;
	int worker_pid;			/* 0 when no worker took the job */
	double queued_ms, run_ms;
	int chunk_is_source;		/* LUAPOOL_JOB_CHECK_SCRIPT: body is source */
	/* Per-job usage, measured by the worker and bounded by the pool (run
	 * time within the job's life, CPU within run time, heap within the
	 * limit).  usage_requested: the request had "usage": true, and
	 * cpu_ms was measured. */
	int usage_requested;
	double cpu_ms;
	size_t heap_peak_bytes;		/* the Lua heap's peak during the job; 0: no worker ran it */
	const char *cache;		/* "hit", "miss", or NULL (no chunk was loaded) */
};

/* Runs on the dispatcher thread once per accepted job, including jobs
 * failed by shutdown.  The reply's memory is valid only during the call. */
typedef void luapool_callback(void *arg, const struct luapool_reply *reply);

/* Queues the job.  Returns 0, or -1 with err filled (OVERLOADED, SHUTDOWN,
 * INVALID), in which case the callback is never called. */
int luapool_submit_async(struct luapool *pool, const struct luapool_job *job,
    luapool_callback *done, void *arg, struct luapool_error *err);

/* Why a worker was retired while alive (luapool_stats.recycles_by_reason). */
enum luapool_recycle_reason {
	LUAPOOL_RECYCLE_MAX_JOBS,	/* ran max_jobs_per_worker jobs */
	LUAPOOL_RECYCLE_HEAP_HIGH,	/* heap over half the limit after a full GC */
	LUAPOOL_RECYCLE_PRIORITY,	/* could not get its CPU priority back */
	LUAPOOL_RECYCLE_BAD_LOAD,	/* LuaJIT refused bytecode the verifier passed */
	LUAPOOL_RECYCLE_DAMAGED,	/* its Lua state no longer looked as built */
	LUAPOOL_RECYCLE_MEMORY,		/* a request did not fit its heap */
	LUAPOOL_RECYCLE_REASONS
};

struct luapool_stats {
	unsigned workers_live, workers_busy, workers_idle, workers_target;
	unsigned queued, queue_depth;
	uint64_t jobs_by_status[LUAPOOL_E_SHUTDOWN + 1];
	uint64_t soft_deadline_stops, hard_deadline_stops, backstop_kills;
	uint64_t crashes, respawns, recycles;
	uint64_t cache_hits, cache_misses;
	uint64_t recycles_by_reason[LUAPOOL_RECYCLE_REASONS];	/* they add up to recycles */
};

/* "max_jobs", "heap_high" ... for a reason; "unknown" out of range. */
const char *luapool_recycle_reason_name(enum luapool_recycle_reason reason);

void luapool_stats(const struct luapool *pool, struct luapool_stats *out);

/*
 * External dispatch (options.external_dispatch = 1): the pool starts no
 * thread; the thread that created it runs the dispatcher from its own
 * event loop, so replies need no extra thread hop.  Watch luapool_poll_fd
 * (readable when there is work) and call luapool_dispatch after it fires
 * and after submitting; it never blocks, runs completion callbacks, and
 * returns the milliseconds until its next timer (-1: none).  Other threads
 * may still submit.  luapool_shutdown must then be called from that thread.
 */
int luapool_poll_fd(const struct luapool *pool);
int luapool_dispatch(struct luapool *pool);

/* The workers' engine, e.g. "LuaJIT 2.1.0-beta3" (empty until one started). */
void luapool_engine_version(const struct luapool *pool, char *out, size_t outlen);

/* The stable problem code of a status, e.g. "deadline_exceeded". */
const char *luapool_status_code(enum luapool_status status);

/* Stops accepting new jobs (they fail with SHUTDOWN); running and queued
 * jobs still complete.  Returns the number of jobs not yet answered. */
unsigned luapool_drain(struct luapool *pool);

#ifdef __cplusplus
}
#endif

#endif
