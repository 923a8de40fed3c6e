/*
 * channel.c - the supervisor's end of the frame protocol with each worker:
 * sending a job (header + payload, resumed on EPOLLOUT), reading replies,
 * checking every frame a worker sends before acting on it (a worker may be
 * compromised: a frame for a job it does not hold, of the wrong type or of
 * an absurd size gets it killed), answering a running job's require() with
 * the module the pool's lookup finds, and answering the job.
 *
 * Dispatcher thread only; never blocks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "pool/channel.h"
#include "pool/poller.h"
#include "pool/queue.h"
#include "pool/supervise.h"

#define BACKSTOP_MARGIN_NS	(200 * POOL_MS)
/* A job that runs longer than this is not a typical short job: its worker
 * drops to the lowest CPU priority so runaway jobs, until their deadline
 * stops them, take little from the others. */
#define DEMOTE_AFTER_NS		(10 * POOL_MS)
/* A reply buffer grown past this (a large result, a stored script's
 * chunk) is released once empty, so one big reply does not stay resident. */
#define REPLY_BUFFER_KEEP	((size_t)1 << 20)

/* Why the worker that sent these reply flags must not serve again, or -1.
 * A worker asking to be replaced is believed: the worst it can do is cost
 * itself a respawn. */
static int
recycle_reason(const struct luapool *pool, const struct worker *w, uint32_t flags,
    int restored)
{
	if (flags & FRAME_REPLACE_DAMAGED)
		return LUAPOOL_RECYCLE_DAMAGED;
	if (flags & FRAME_REPLACE_BAD_LOAD)
		return LUAPOOL_RECYCLE_BAD_LOAD;
	if (flags & FRAME_REPLACE_MEMORY)
		return LUAPOOL_RECYCLE_MEMORY;
	if (flags & FRAME_HEAP_HIGH)
		return LUAPOOL_RECYCLE_HEAP_HIGH;
	if (!restored)
		return LUAPOOL_RECYCLE_PRIORITY;
	if (pool->opts.max_jobs_per_worker && w->jobs_run >= pool->opts.max_jobs_per_worker)
		return LUAPOOL_RECYCLE_MAX_JOBS;
	return -1;
}

static void
handle_reply(struct luapool *pool, struct worker *w, const struct frame_header *h,
    const char *payload)
{
	if (w->job == NULL || h->job_id != w->job->id) {
		log_error("worker %d answered job %llu it does not hold", (int)w->pid,
		    (unsigned long long)h->job_id);
		kill(w->pid, SIGKILL);
		supervise_stop(pool, w);
		return;
	}
	/* The worker's numbers, bounded by what the pool saw: it ran within
	 * the job's life, on at most that much CPU, in at most its heap. */
	int64_t life_ns = frame_now_ns() - w->job->enqueued_ns;
	uint64_t run_ns = life_ns <= 0 ? 0 : h->run_ns < (uint64_t)life_ns ? h->run_ns :
	    (uint64_t)life_ns;
	uint64_t cpu_ns = h->cpu_ns < run_ns ? h->cpu_ns : run_ns;
	uint64_t heap_max = (uint64_t)pool->opts.memory_limit_mb << 20;
	struct luapool_reply reply = {
		.status = h->status <= LUAPOOL_E_SHUTDOWN ? h->status : LUAPOOL_E_CRASHED,
		.worker_pid = (int)w->pid,
		.run_ms = (double)run_ns / 1e6,
		.queued_ms = life_ns > (int64_t)run_ns ? (double)(life_ns - (int64_t)run_ns) / 1e6 : 0,
		.chunk_is_source = (h->flags & FRAME_REPLY_SOURCE) != 0,
		.usage_requested = (h->flags & FRAME_USAGE) != 0,
		.cpu_ms = (h->flags & FRAME_USAGE) ? (double)cpu_ns / 1e6 : 0,
		.heap_peak_bytes = (size_t)(h->heap_peak_bytes < heap_max ? h->heap_peak_bytes :
		    heap_max),
		.cache = (h->flags & FRAME_CACHE_HIT) ? "hit" :
		    (h->flags & FRAME_CACHE_MISS) ? "miss" : NULL,
	};
	if (reply.status == LUAPOOL_OK) {
		reply.code = "ok";
		reply.body = payload;
		reply.body_len = h->length;
		reply.body_has_logs = (h->flags & FRAME_REPLY_LOGS) != 0;
	} else {
		struct frame_error parts;
		frame_split_error(payload, h->length, &parts);
		reply.code = parts.code;
		reply.message = parts.message;
		reply.traceback = parts.traceback;
		reply.logs = parts.logs;
		reply.error_value = parts.error_value;
		if (!luapool_worker_code_fits(reply.status, reply.code)) {
			log_error("worker %d answered status %u with code \"%.40s\": not a worker's "
			    "answer", (int)w->pid, h->status, reply.code);
			kill(w->pid, SIGKILL);
			supervise_stop(pool, w);
			return;
		}
	}
	if (h->flags & (FRAME_SOFT_STOP | FRAME_CACHE_HIT | FRAME_CACHE_MISS | FRAME_EXITING)) {
		pthread_mutex_lock(&pool->lock);
		pool->stats.soft_deadline_stops += !!(h->flags & FRAME_SOFT_STOP);
		pool->stats.hard_deadline_stops += !!(h->flags & FRAME_EXITING);
		pool->stats.cache_hits += !!(h->flags & FRAME_CACHE_HIT);
		pool->stats.cache_misses += !!(h->flags & FRAME_CACHE_MISS);
		pthread_mutex_unlock(&pool->lock);
	}
	w->backstop_ns = 0;
	w->jobs_run++;
	supervise_finish_job(pool, w, &reply);
	int restored = supervise_restore_priority(w);
	int reason = recycle_reason(pool, w, h->flags, restored);
	if (h->flags & FRAME_EXITING) {
		w->state = WORKER_EXITING;
		w->expected_exit = 1;
		w->backstop_ns = frame_now_ns() + EXIT_TIMEOUT_NS;
	} else if (reason >= 0) {
		if (reason != LUAPOOL_RECYCLE_MAX_JOBS)
			log_info("replacing worker %d: %s", (int)w->pid,
			    luapool_recycle_reason_name((enum luapool_recycle_reason)reason));
		pthread_mutex_lock(&pool->lock);
		pool->stats.recycles++;
		pool->stats.recycles_by_reason[reason]++;
		pthread_mutex_unlock(&pool->lock);
		supervise_stop(pool, w);
	} else {
		w->state = WORKER_IDLE;
	}
}

/* A running job's require(name): the name is the worker's, so untrusted
 * (1 to LUAPOOL_MODULE_NAME_MAX bytes, no NUL, at most LUAPOOL_MAX_MODULES
 * per job, or the worker is killed).  The answer goes out like a job, on
 * EPOLLOUT when the socket is full; the worker reads nothing else first. */
static void
handle_module_request(struct luapool *pool, struct worker *w, const struct frame_header *h,
    const char *name)
{
	w->modules_asked++;
	if (h->length == 0 || h->length > LUAPOOL_MODULE_NAME_MAX ||
	    memchr(name, '\0', h->length) != NULL || w->modules_asked > LUAPOOL_MAX_MODULES) {
		log_error("worker %d asked for a module out of bounds (%u bytes, request %u of "
		    "the job)", (int)w->pid, h->length, w->modules_asked);
		kill(w->pid, SIGKILL);
		supervise_stop(pool, w);
		return;
	}
	char *chunk = NULL;
	size_t len = 0;
	int is_source = 0;
	uint32_t status = FRAME_MODULE_UNAVAILABLE;
	if (pool->opts.module_lookup != NULL) {
		status = FRAME_MODULE_MISSING;
		if (pool->opts.module_lookup(pool->opts.module_lookup_arg, name, &chunk, &len,
		    &is_source) == 0)
			status = len <= FRAME_MODULE_MAX_BYTES ? FRAME_MODULE_FOUND :
			    FRAME_MODULE_TOO_LARGE;
		if (status != FRAME_MODULE_FOUND) {
			free(chunk);
			chunk = NULL;
			len = 0;
		}
	}
	memset(&w->out, 0, sizeof(w->out));
	w->out.type = FRAME_MODULE_REPLY;
	w->out.job_id = h->job_id;
	w->out.status = status;
	w->out.flags = is_source && chunk ? FRAME_CHUNK_IS_SOURCE : 0;
	w->out.length = (uint32_t)len;
	free(w->module_chunk);
	w->module_chunk = chunk;
	w->out_payload = chunk;
	w->out_len = len;
	w->sent = 0;
	channel_continue_send(pool, w);
}

/* Printable ASCII only: the engine version reaches /v1/info and metric
 * labels, and comes from a worker. */
static int
is_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

static void
handle_frame(struct luapool *pool, struct worker *w, const struct frame_header *h,
    const char *payload)
{
	if (h->type == FRAME_READY && w->state == WORKER_STARTING) {
		w->state = WORKER_IDLE;
		w->backstop_ns = 0;
		w->quick_failures = 0;
		w->ready = 1;
		if (h->length > 0 && h->length < sizeof(pool->engine_version) &&
		    is_printable(payload, h->length)) {
			pthread_mutex_lock(&pool->lock);
			memcpy(pool->engine_version, payload, h->length + 1);
			pthread_mutex_unlock(&pool->lock);
		}
		atomic_fetch_add(&pool->live, 1);
		if (w->died_ns)
			log_info("worker %d replaced %.2f ms after its predecessor died", (int)w->pid,
			    (double)(frame_now_ns() - w->died_ns) / 1e6);
		else
			log_debug("worker %d ready in %.2f ms", (int)w->pid,
			    (double)(frame_now_ns() - w->spawned_ns) / 1e6);
		w->died_ns = 0;
	} else if (h->type == FRAME_REPLY && w->state == WORKER_BUSY && (!channel_sending(w) ||
	    (w->out.type == FRAME_MODULE_REPLY && (h->flags & FRAME_EXITING)))) {
		/* A hard stop may come while a large module is still being
		 * written: the worker exits, the rest of the module is moot. */
		handle_reply(pool, w, h, payload);
	} else if (h->type == FRAME_MODULE && w->state == WORKER_BUSY && !channel_sending(w) &&
	    w->job->frame_type == FRAME_EXEC && h->job_id == w->job->id) {
		handle_module_request(pool, w, h, payload);
	} else {
		if (channel_sending(w))
			log_error("worker %d sent frame type %u before its %s was written to it",
			    (int)w->pid, h->type, w->out.type == FRAME_MODULE_REPLY ? "module" : "job");
		else
			log_error("worker %d sent frame type %u in state %d", (int)w->pid, h->type,
			    w->state);
		kill(w->pid, SIGKILL);
		supervise_stop(pool, w);
	}
}

/* Consumes the complete frames in w->in. */
static void
process_input(struct luapool *pool, struct worker *w)
{
	size_t off = 0;
	struct frame_header h;
	while (w->fd != -1 && w->in.len - off >= sizeof(h)) {
		memcpy(&h, w->in.data + off, sizeof(h));
		if (h.length > w->in.limit - sizeof(h)) {
			log_error("worker %d sent a %u-byte frame", (int)w->pid, h.length);
			kill(w->pid, SIGKILL);
			supervise_stop(pool, w);
			return;
		}
		if (w->in.len - off - sizeof(h) < h.length)
			break;
		char *payload = w->in.data + off + sizeof(h);
		char saved = payload[h.length];
		payload[h.length] = '\0';	/* error payloads are strings */
		handle_frame(pool, w, &h, payload);
		payload[h.length] = saved;
		off += sizeof(h) + h.length;
	}
	if (off > 0 && w->fd != -1) {
		memmove(w->in.data, w->in.data + off, w->in.len - off);
		w->in.len -= off;
		if (w->in.len == 0 && w->in.cap > REPLY_BUFFER_KEEP)
			buffer_free(&w->in);	/* keeps the limit */
	}
}

void
channel_read(struct luapool *pool, struct worker *w)
{
	for (;;) {
		if (buffer_reserve(&w->in, 16384) == -1 && buffer_reserve(&w->in, 1) == -1) {
			log_error("worker %d reply exceeds %zu bytes", (int)w->pid, w->in.limit);
			kill(w->pid, SIGKILL);
			supervise_stop(pool, w);
			return;
		}
		size_t room = w->in.cap - w->in.len - 1;
		ssize_t n = read(w->fd, w->in.data + w->in.len, room);
		if (n > 0) {
			w->in.len += (size_t)n;
			process_input(pool, w);
			/* A short read drained the socket: skip the read that
			 * would only say EAGAIN (epoll is level-triggered). */
			if (w->fd == -1 || (size_t)n < room)
				return;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		/* EOF or error: the process is exiting; its pidfd tells when. */
		poller_close_socket(pool, w);
		if (w->state == WORKER_IDLE)
			w->state = WORKER_EXITING;
		if (!w->expected_exit && !w->job)
			w->backstop_ns = frame_now_ns() + EXIT_TIMEOUT_NS;
		return;
	}
}

void
channel_continue_send(struct luapool *pool, struct worker *w)
{
	size_t total = sizeof(w->out) + w->out_len;
	while (w->sent < total) {
		struct iovec iov[2];
		int n = 0;
		if (w->sent < sizeof(w->out))
			iov[n++] = (struct iovec){ (char *)&w->out + w->sent, sizeof(w->out) - w->sent };
		size_t poff = w->sent > sizeof(w->out) ? w->sent - sizeof(w->out) : 0;
		if (w->out_len > poff)
			iov[n++] = (struct iovec){ (char *)(uintptr_t)w->out_payload + poff,
			    w->out_len - poff };
		/* MSG_NOSIGNAL: a worker dying mid-write must not SIGPIPE the
		 * program that embeds the pool. */
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t k = sendmsg(w->fd, &msg, MSG_NOSIGNAL);
		if (k > 0) {
			w->sent += (size_t)k;
			continue;
		}
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1 && errno == EAGAIN) {
			if (!w->watching_writes)
				poller_watch(pool, w->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
				    poller_key(EVENT_SOCKET, w->index), EPOLL_CTL_MOD);
			w->watching_writes = 1;
			return;
		}
		/* The worker is gone; its pidfd will answer the job. */
		return;
	}
	free(w->module_chunk);
	w->module_chunk = NULL;
	channel_stop_watching_writes(pool, w);
}

int
channel_sending(const struct worker *w)
{
	return w->job != NULL && w->sent < sizeof(w->out) + w->out_len;
}

void
channel_stop_watching_writes(struct luapool *pool, struct worker *w)
{
	if (!w->watching_writes || w->fd == -1)
		return;
	w->watching_writes = 0;
	poller_watch(pool, w->fd, EPOLLIN | EPOLLRDHUP, poller_key(EVENT_SOCKET, w->index),
	    EPOLL_CTL_MOD);
}

/* The largest reply frame the worker may send for this job: a result and
 * its logs (or an error: message, traceback, logs and an error value no
 * larger than a result), or for a script check the chunk, which is no
 * larger than the job. */
static size_t
reply_limit(const struct luapool *pool, const struct job *job)
{
	size_t limit = pool->opts.max_result_bytes + pool->opts.max_log_bytes + 65536 +
	    sizeof(struct frame_header);
	size_t chunk = job->payload_len + 65536 + sizeof(struct frame_header);
	return (job->flags & FRAME_CHECK_SCRIPT) && chunk > limit ? chunk : limit;
}

void
channel_send_job(struct luapool *pool, struct worker *w, struct job *job)
{
	memset(&w->out, 0, sizeof(w->out));
	w->out.type = job->frame_type;
	w->out.length = (uint32_t)job->payload_len;
	w->out.job_id = job->id;
	w->out.enqueued_ns = job->enqueued_ns;
	w->out.timeout_ms = job->timeout_ms;
	w->out.chunk_len = job->chunk_len;
	w->out.flags = job->flags;
	w->out_payload = job->payload;
	w->out_len = job->payload_len;
	w->modules_asked = 0;
	w->job = job;
	w->in.limit = reply_limit(pool, job);
	w->sent = 0;
	w->state = WORKER_BUSY;
	w->killed_for_deadline = 0;
	w->backstop_ns = queue_job_deadline_ns(pool, job) + (int64_t)pool->opts.grace_ms * POOL_MS +
	    BACKSTOP_MARGIN_NS;
	w->demote_at_ns = frame_now_ns() + DEMOTE_AFTER_NS;
	atomic_fetch_add(&pool->busy, 1);
	channel_continue_send(pool, w);
}
