/*
 * supervise.h - worker process lifecycle (supervise.c).  Dispatcher thread only.
 */
#ifndef POOL_SUPERVISE_H
#define POOL_SUPERVISE_H

#include "pool/pool_internal.h"

#define EXIT_TIMEOUT_NS		(500 * POOL_MS)

int supervise_spawn(struct luapool *pool, struct worker *w);
/* Spawns every worker at start; a failure is retried with backoff. */
void supervise_spawn_all(struct luapool *pool);
void supervise_respawn_due(struct luapool *pool, int64_t now);
/* Answers the worker's job with reply and frees it; the worker keeps running. */
void supervise_finish_job(struct luapool *pool, struct worker *w, const struct luapool_reply *reply);
/* The worker's stderr pipe is readable: log its lines (worker_log.c). */
void supervise_read_log(struct luapool *pool, struct worker *w);
/* The worker's pidfd fired: reap it, answer its job, schedule its successor. */
void supervise_reap(struct luapool *pool, struct worker *w);
/* Closes the socket, which tells the worker to exit. */
void supervise_stop(struct luapool *pool, struct worker *w);
/* Shutdown: idle and starting workers are told to exit. */
void supervise_stop_idle(struct luapool *pool);
/* Back to normal priority after a long job; 0 if not allowed (replace the worker). */
int supervise_restore_priority(struct worker *w);
void supervise_demote_long_jobs(struct luapool *pool, int64_t now);
/* SIGKILL for workers past their backstop time. */
void supervise_enforce_backstops(struct luapool *pool, int64_t now);

#endif
