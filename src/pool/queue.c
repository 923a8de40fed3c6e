/*
 * queue.c - the pool's bounded job queue and a job's life: made from a
 * caller's spec, queued, taken by the dispatcher, answered exactly once
 * (the callback runs, then the job is freed), or expired while queued.
 *
 * Everything here runs under pool->lock except the callbacks, which never
 * run with the lock held (they may submit again).  Never touches a worker.
 */
#include <stdlib.h>
#include <string.h>

#include "pool/queue.h"

struct job *
queue_job_new(const struct luapool_job *spec, luapool_callback *done, void *arg)
{
	struct job *job = calloc(1, sizeof(*job));
	if (job == NULL)
		return NULL;
	/* A chunk's name travels in front of it: "name\0" (frame.h). */
	size_t name_len = spec->chunk_len && spec->chunk_name ?
	    strnlen(spec->chunk_name, FRAME_CHUNK_NAME_MAX) + 1 : 0;
	size_t chunk_len = name_len + spec->chunk_len;
	job->payload_len = chunk_len + spec->request_len;
	job->payload = malloc(job->payload_len ? job->payload_len : 1);
	if (job->payload == NULL) {
		free(job);
		return NULL;
	}
	if (name_len) {
		memcpy(job->payload, spec->chunk_name, name_len - 1);
		job->payload[name_len - 1] = '\0';
	}
	if (spec->chunk_len)
		memcpy(job->payload + name_len, spec->chunk, spec->chunk_len);
	memcpy(job->payload + chunk_len, spec->request, spec->request_len);
	job->frame_type = spec->kind == LUAPOOL_JOB_EXEC ? FRAME_EXEC : FRAME_COMPILE;
	job->chunk_len = (uint32_t)chunk_len;
	job->flags = (spec->chunk_is_source ? FRAME_CHUNK_IS_SOURCE : 0) |
	    (spec->kind == LUAPOOL_JOB_CHECK_SCRIPT ? FRAME_CHECK_SCRIPT : 0) |
	    (name_len ? FRAME_CHUNK_NAMED : 0);
	job->timeout_ms = spec->timeout_ms;
	job->done = done;
	job->arg = arg;
	return job;
}

void
queue_job_free(struct job *job)
{
	free(job->payload);
	free(job);
}

struct job *
queue_take(struct luapool *pool)
{
	pthread_mutex_lock(&pool->lock);
	struct job *job = pool->head;
	if (job) {
		pool->head = job->next;
		if (pool->head == NULL)
			pool->tail = NULL;
		pool->queued--;
		job->next = NULL;
	}
	pthread_mutex_unlock(&pool->lock);
	return job;
}

void
queue_complete(struct luapool *pool, struct job *job, const struct luapool_reply *reply)
{
	/* Counted before the callback, so whoever it wakes sees the count;
	 * outstanding after it, so shutdown waits for the callback. */
	pthread_mutex_lock(&pool->lock);
	if (reply->status <= LUAPOOL_E_SHUTDOWN)
		pool->stats.jobs_by_status[reply->status]++;
	pthread_mutex_unlock(&pool->lock);
	job->done(job->arg, reply);
	queue_job_free(job);
	pthread_mutex_lock(&pool->lock);
	pool->outstanding--;
	pthread_mutex_unlock(&pool->lock);
}

void
queue_fail(struct luapool *pool, struct job *job, enum luapool_status status,
    const char *message)
{
	struct luapool_reply reply = {
		.status = status,
		.code = luapool_status_code(status),
		.message = message,
		.queued_ms = (double)(frame_now_ns() - job->enqueued_ns) / 1e6,
	};
	queue_complete(pool, job, &reply);
}

/*
 * Queues an accepted job (takes ownership only on LUAPOOL_OK).  Refused:
 * LUAPOOL_E_SHUTDOWN while not accepting, LUAPOOL_E_OVERLOADED when the
 * queue is full; both are counted.
 */
enum luapool_status
queue_push(struct luapool *pool, struct job *job)
{
	enum luapool_status status = LUAPOOL_OK;
	pthread_mutex_lock(&pool->lock);
	if (!pool->accepting)
		status = LUAPOOL_E_SHUTDOWN;
	else if (pool->queued >= pool->opts.queue_depth)
		status = LUAPOOL_E_OVERLOADED;
	if (status != LUAPOOL_OK) {
		pool->stats.jobs_by_status[status]++;
		pthread_mutex_unlock(&pool->lock);
		return status;
	}
	job->id = ++pool->next_id;
	job->enqueued_ns = frame_now_ns();
	if (pool->tail)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pool->queued++;
	pool->outstanding++;
	pthread_mutex_unlock(&pool->lock);
	return LUAPOOL_OK;
}

void
queue_count(struct luapool *pool, uint64_t *counter, uint64_t n)
{
	pthread_mutex_lock(&pool->lock);
	*counter += n;
	pthread_mutex_unlock(&pool->lock);
}

int64_t
queue_job_deadline_ns(const struct luapool *pool, const struct job *job)
{
	unsigned timeout = job->timeout_ms ? job->timeout_ms : pool->opts.max_timeout_ms;
	return job->enqueued_ns + (int64_t)timeout * POOL_MS;
}

int
queue_has_jobs(struct luapool *pool)
{
	pthread_mutex_lock(&pool->lock);
	int any = pool->head != NULL;
	pthread_mutex_unlock(&pool->lock);
	return any;
}

/* Answers queued jobs whose deadline passed while every worker was busy. */
void
queue_sweep_expired(struct luapool *pool, int64_t now)
{
	struct job *expired = NULL, **tail = &expired;
	pthread_mutex_lock(&pool->lock);
	struct job **link = &pool->head, *prev = NULL;
	while (*link) {
		struct job *job = *link;
		if (job->timeout_ms && queue_job_deadline_ns(pool, job) <= now) {
			*link = job->next;
			pool->queued--;
			job->next = NULL;
			*tail = job;
			tail = &job->next;
		} else {
			prev = job;
			link = &job->next;
		}
	}
	pool->tail = prev;
	pthread_mutex_unlock(&pool->lock);
	while (expired) {
		struct job *next = expired->next;
		queue_fail(pool, expired, LUAPOOL_E_DEADLINE,
		    "deadline passed while the job was queued");
		expired = next;
	}
}
