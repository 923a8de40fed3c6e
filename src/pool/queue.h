/*
 * queue.h - the job queue (queue.c), shared by pool.c (which fills it) and
 * the dispatcher (which empties it).  Arrows: pool -> dispatcher -> queue.
 */
#ifndef POOL_QUEUE_H
#define POOL_QUEUE_H

#include <stdint.h>

#include "pool/pool_internal.h"

/* A job holding a copy of spec's bytes; NULL when out of memory.  Freed by
 * queue_complete/queue_fail once answered, or by queue_job_free if never queued. */
struct job *queue_job_new(const struct luapool_job *spec, luapool_callback *done, void *arg);
void queue_job_free(struct job *job);
enum luapool_status queue_push(struct luapool *pool, struct job *job);
/* Takes the next queued job or NULL (dispatcher thread). */
struct job *queue_take(struct luapool *pool);
/* Answers a job, then frees it (dispatcher thread). */
void queue_complete(struct luapool *pool, struct job *job, const struct luapool_reply *reply);
void queue_fail(struct luapool *pool, struct job *job, enum luapool_status status,
    const char *message);
/* Adds n to one of pool->stats' counters under the lock. */
void queue_count(struct luapool *pool, uint64_t *counter, uint64_t n);
/* When a job's time is up: enqueue time + its timeout (or the pool's maximum). */
int64_t queue_job_deadline_ns(const struct luapool *pool, const struct job *job);
/* Whether jobs wait in the queue. */
int queue_has_jobs(struct luapool *pool);
/* Answers queued jobs whose deadline passed while every worker was busy. */
void queue_sweep_expired(struct luapool *pool, int64_t now);

#endif
