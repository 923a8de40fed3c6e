/*
 * frame.h - the one message format between the pool and a worker process.
 *
 * Every message is a fixed header followed by `length` payload bytes; the
 * reader checks `length` against its limit before reading any payload.
 *
 *   pool -> worker  FRAME_EXEC, FRAME_COMPILE: payload = chunk (chunk_len
 *                   bytes, may be 0) followed by the JSON request text.
 *   worker -> pool  FRAME_READY once after start-up (payload: the engine's
 *                   version, e.g. "LuaJIT 2.1.0-beta3");
 *                   FRAME_REPLY per job: status != 0 carries
 *                   "code\0message\0traceback\0logs\0error_value" (the
 *                   last parts may be missing or empty), status 0 the
 *                   response body;
 *                   FRAME_MODULE while running an exec job: require(name)
 *                   (payload: the name, 1 to LUAPOOL_MODULE_NAME_MAX bytes;
 *                   at most LUAPOOL_MAX_MODULES per job).
 *   pool -> worker  FRAME_MODULE_REPLY to each FRAME_MODULE, before anything
 *                   else: status FRAME_MODULE_*, flag FRAME_CHUNK_IS_SOURCE,
 *                   payload = the module's chunk when found.
 */
#ifndef FRAME_H
#define FRAME_H

#include <stddef.h>
#include <stdint.h>

enum frame_type {
	FRAME_READY = 1, FRAME_EXEC, FRAME_COMPILE, FRAME_REPLY,
	FRAME_MODULE, FRAME_MODULE_REPLY
};

/* FRAME_MODULE_REPLY status */
enum frame_module_status {
	FRAME_MODULE_FOUND = 0,
	FRAME_MODULE_MISSING,		/* no module of that name */
	FRAME_MODULE_UNAVAILABLE,	/* the pool has no module lookup */
	FRAME_MODULE_TOO_LARGE		/* over FRAME_MODULE_MAX_BYTES */
};
/* The largest module chunk that travels to a worker. */
#define FRAME_MODULE_MAX_BYTES	(64u * 1024u * 1024u)

/* Request flags */
#define FRAME_CHUNK_IS_SOURCE	0x1u
#define FRAME_CHECK_SCRIPT	0x2u	/* FRAME_COMPILE of a script to store: the
					 * reply is the chunk itself */
#define FRAME_CHUNK_NAMED	0x4u	/* the chunk starts with its name (at most
					 * FRAME_CHUNK_NAME_MAX bytes) and a NUL */
/* Reply flags */
#define FRAME_SOFT_STOP		0x1u	/* the deadline hook stopped the job */
#define FRAME_CACHE_HIT		0x2u
#define FRAME_CACHE_MISS	0x4u
#define FRAME_EXITING		0x8u	/* hard stop: the worker exits after this reply */
#define FRAME_HEAP_HIGH		0x10u	/* over half the heap limit even after a full GC */
#define FRAME_REPLACE_BAD_LOAD	0x20u	/* LuaJIT refused verified bytecode: replace me */
#define FRAME_REPLACE_DAMAGED	0x40u	/* my state no longer looks sound: replace me */
#define FRAME_REPLACE_MEMORY	0x80u	/* a request hit the heap limit while loading */
#define FRAME_REPLY_SOURCE	0x100u	/* FRAME_CHECK_SCRIPT: the chunk is source */
#define FRAME_USAGE		0x200u	/* the request asked for "usage": cpu_ns is
					 * measured (heap_peak_bytes always is) */
#define FRAME_REPLY_LOGS	0x400u	/* status 0: the body has a "logs" array */

/* Longest chunk name that travels beside a chunk (FRAME_CHUNK_NAMED). */
#define FRAME_CHUNK_NAME_MAX 64
/* The largest payload a worker accepts in one request frame: the pool
 * refuses bigger jobs before they reach a worker. */
#define FRAME_MAX_PAYLOAD (256u * 1024u * 1024u)

/* The fd a worker finds its socket on. */
#define FRAME_WORKER_FD 3
/* Exit status of a worker that stopped a job at its hard deadline. */
#define FRAME_EXIT_DEADLINE 124

struct frame_header {
	uint32_t type;
	uint32_t length;	/* payload bytes */
	uint64_t job_id;
	int64_t enqueued_ns;	/* request: CLOCK_MONOTONIC time the job was queued */
	uint32_t timeout_ms;	/* request: 0 = the request's own or the default */
	uint32_t chunk_len;	/* request: bytes of chunk before the JSON text */
	uint32_t status;	/* reply: enum luapool_status */
	uint32_t flags;
	uint64_t run_ns;	/* reply: time spent running */
	uint64_t cpu_ns;	/* reply with FRAME_USAGE: the job's CPU time */
	uint64_t heap_peak_bytes;	/* reply: the Lua heap's peak during the job */
};
/* 64 bytes, no padding: both ends are built from this header, but a size
 * that changes by accident would still show here first. */
_Static_assert(sizeof(struct frame_header) == 64, "frame header layout");

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t frame_now_ns(void);

/* Blocking write for the worker side: all of it or -1 (errno set). */
int frame_write_all(int fd, const void *buf, size_t len);
/* Writes header + payload with one writev when it fits the socket. */
int frame_send(int fd, struct frame_header *h, const void *payload, size_t len);

/* The parts of an error payload, pointers into it; NULL when a part is
 * missing or empty (code and message: "" instead). */
struct frame_error {
	const char *code, *message;
	const char *traceback;		/* the Lua traceback */
	const char *logs;		/* the job's logs: a JSON array, unchecked */
	const char *error_value;	/* a table error value as JSON, unchecked */
};

/* Splits an error payload into its NUL-separated parts (`payload` must be
 * NUL-terminated after `len`). */
void frame_split_error(const char *payload, size_t len, struct frame_error *out);

#endif
