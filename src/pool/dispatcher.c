/*
 * dispatcher.c - the pool's one thread that owns the worker processes:
 * spawning, handing jobs to idle workers, reading replies, the backstop
 * kill of a worker past its deadline, reaping, respawning with backoff,
 * recycling, and stopping everything at shutdown.
 *
 * Only this thread touches struct worker.  It never blocks except in
 * epoll_wait: sockets are non-blocking and exits are seen through pidfds.
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
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "pool/pool_internal.h"
#include "pool/process.h"

#define EVENT_WAKE	0u
#define EVENT_SOCKET	1u
#define EVENT_PIDFD	2u
#define MS		1000000LL
#define STARTUP_TIMEOUT_NS	(5000 * MS)
#define EXIT_TIMEOUT_NS		(500 * MS)
#define BACKSTOP_MARGIN_NS	(200 * MS)
#define QUEUE_SWEEP_NS		(10 * MS)
#define MAX_BACKOFF_MS		1000
/* A job that runs longer than this is not a typical short job: its worker
 * drops to the lowest CPU priority so runaway jobs, until their deadline
 * stops them, take little from the others. */
#define DEMOTE_AFTER_NS		(10 * MS)
#define DEMOTED_NICE		19

static uint64_t
event_key(unsigned kind, unsigned index)
{
	return ((uint64_t)index << 2) | kind;
}

static void
stats_add(struct luapool *pool, uint64_t *counter, uint64_t n)
{
	pthread_mutex_lock(&pool->lock);
	*counter += n;
	pthread_mutex_unlock(&pool->lock);
}

static void
watch(struct luapool *pool, int fd, uint32_t events, uint64_t key, int op)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };
	if (epoll_ctl(pool->epfd, op, fd, &ev) == -1)
		log_error("epoll_ctl: %s", strerror(errno));
}

static void
close_socket(struct luapool *pool, struct worker *w)
{
	if (w->fd == -1)
		return;
	epoll_ctl(pool->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
}

static int
worker_spawn(struct luapool *pool, struct worker *w)
{
	int fd;
	pid_t pid = process_spawn_worker(pool->worker_path, pool->worker_argv, &fd);
	if (pid == -1)
		return -1;
	int pidfd = pidfd_open(pid, 0);
	if (pidfd == -1) {
		log_error("pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(fd);
		return -1;
	}
	w->pid = pid;
	w->fd = fd;
	w->pidfd = pidfd;
	w->state = WORKER_STARTING;
	w->job = NULL;
	w->jobs_run = 0;
	w->killed_for_deadline = 0;
	w->ready = 0;
	w->expected_exit = 0;
	w->demoted = 0;
	w->spawned_ns = frame_now_ns();
	w->backstop_ns = w->spawned_ns + STARTUP_TIMEOUT_NS;
	buffer_reset(&w->in);
	watch(pool, fd, EPOLLIN | EPOLLRDHUP, event_key(EVENT_SOCKET, w->index), EPOLL_CTL_ADD);
	watch(pool, pidfd, EPOLLIN, event_key(EVENT_PIDFD, w->index), EPOLL_CTL_ADD);
	log_debug("worker %u started as pid %d", w->index, (int)pid);
	return 0;
}

static void
schedule_respawn(struct luapool *pool, struct worker *w, int quick_failure)
{
	w->state = WORKER_DOWN;
	w->pid = 0;
	if (pool->stopping)
		return;
	int64_t delay_ms = 0;
	if (quick_failure) {
		/* The first unexplained death is replaced at once; a worker that
		 * keeps dying backs off: 10, 20, 40 ... 1000 ms. */
		w->quick_failures++;
		if (w->quick_failures > 1)
			delay_ms = 10LL << (w->quick_failures < 9 ? w->quick_failures - 2 : 7);
		if (delay_ms > MAX_BACKOFF_MS)
			delay_ms = MAX_BACKOFF_MS;
	} else {
		w->quick_failures = 0;
	}
	w->respawn_at_ns = frame_now_ns() + delay_ms * MS;
}

static void
respawn_due_workers(struct luapool *pool, int64_t now)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		if (w->state != WORKER_DOWN || pool->stopping || w->respawn_at_ns > now)
			continue;
		if (worker_spawn(pool, w) == -1) {
			schedule_respawn(pool, w, 1);
			continue;
		}
		stats_add(pool, &pool->stats.respawns, 1);
	}
}

static void
finish_job(struct luapool *pool, struct worker *w, const struct luapool_reply *reply)
{
	struct job *job = w->job;
	w->job = NULL;
	atomic_fetch_sub(&pool->busy, 1);
	pool_complete_job(pool, job, reply);
}

static void
fail_running_job(struct luapool *pool, struct worker *w, enum luapool_status status,
    const char *message)
{
	struct luapool_reply reply = {
		.status = status, .code = luapool_status_code(status), .message = message,
		.worker_pid = (int)w->pid,
	};
	finish_job(pool, w, &reply);
}

/* Why a worker died while it held a job, as the job's answer. */
static void
answer_lost_job(struct luapool *pool, struct worker *w, int status)
{
	char how[96], message[256];
	process_describe_status(status, how, sizeof(how));
	if (w->killed_for_deadline) {
		snprintf(message, sizeof(message), "deadline exceeded: worker %d did not stop "
		    "and was killed", (int)w->pid);
		stats_add(pool, &pool->stats.backstop_kills, 1);
		fail_running_job(pool, w, LUAPOOL_E_DEADLINE, message);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == FRAME_EXIT_DEADLINE) {
		snprintf(message, sizeof(message), "deadline exceeded (hard stop)");
		stats_add(pool, &pool->stats.hard_deadline_stops, 1);
		fail_running_job(pool, w, LUAPOOL_E_DEADLINE, message);
	} else {
		snprintf(message, sizeof(message), "worker %d %s while running the job",
		    (int)w->pid, how);
		stats_add(pool, &pool->stats.crashes, 1);
		fail_running_job(pool, w, LUAPOOL_E_CRASHED, message);
	}
}

static void
reap_worker(struct luapool *pool, struct worker *w)
{
	int status = 0;
	if (waitpid(w->pid, &status, WNOHANG) <= 0)
		return;		/* not yet: pidfd events can't be early, but be safe */
	close_socket(pool, w);
	epoll_ctl(pool->epfd, EPOLL_CTL_DEL, w->pidfd, NULL);
	close(w->pidfd);
	w->pidfd = -1;
	int was_ready = w->ready;
	if (!pool->stopping && !w->expected_exit)
		w->died_ns = frame_now_ns();
	if (was_ready)
		atomic_fetch_sub(&pool->live, 1);
	w->ready = 0;
	char how[96];
	process_describe_status(status, how, sizeof(how));
	int had_job = w->job != NULL;
	if (had_job) {
		log_warn("worker %d %s while running job %llu", (int)w->pid, how,
		    (unsigned long long)w->job->id);
		answer_lost_job(pool, w, status);
	} else if (!pool->stopping && !w->expected_exit) {
		log_warn("worker %d %s while %s", (int)w->pid, how,
		    was_ready ? "idle" : "starting");
	} else {
		log_debug("worker %d %s", (int)w->pid, how);
	}
	int quick_failure = !had_job && !w->expected_exit;
	if (!was_ready) {
		pthread_mutex_lock(&pool->lock);
		pool->startup_failed = 1;
		pthread_mutex_unlock(&pool->lock);
		quick_failure = 1;
	}
	schedule_respawn(pool, w, quick_failure);
}

/* Closing the socket is the worker's signal to exit. */
static void
worker_stop(struct luapool *pool, struct worker *w)
{
	close_socket(pool, w);
	w->state = WORKER_EXITING;
	w->expected_exit = 1;
	w->backstop_ns = frame_now_ns() + EXIT_TIMEOUT_NS;
}

/* Back to normal priority after a long job; 0 if that is not allowed
 * (no CAP_SYS_NICE): the worker is then replaced instead. */
static int
restore_priority(struct worker *w)
{
	if (!w->demoted)
		return 1;
	w->demoted = 0;
	return setpriority(PRIO_PROCESS, (id_t)w->pid, 0) == 0;
}

static void
demote_long_jobs(struct luapool *pool, int64_t now)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		if (w->state != WORKER_BUSY || w->demoted || w->demote_at_ns > now)
			continue;
		if (setpriority(PRIO_PROCESS, (id_t)w->pid, DEMOTED_NICE) == 0)
			w->demoted = 1;
		else
			w->demote_at_ns = INT64_MAX;
	}
}

static void
handle_reply(struct luapool *pool, struct worker *w, const struct frame_header *h,
    const char *payload)
{
	if (w->job == NULL || h->job_id != w->job->id) {
		log_error("worker %d answered job %llu it does not hold", (int)w->pid,
		    (unsigned long long)h->job_id);
		kill(w->pid, SIGKILL);
		worker_stop(pool, w);
		return;
	}
	struct luapool_reply reply = {
		.status = h->status <= LUAPOOL_E_SHUTDOWN ? h->status : LUAPOOL_E_CRASHED,
		.worker_pid = (int)w->pid,
		.run_ms = (double)h->run_ns / 1e6,
		.queued_ms = (double)(frame_now_ns() - w->job->enqueued_ns - (int64_t)h->run_ns) / 1e6,
	};
	if (reply.status == LUAPOOL_OK) {
		reply.code = "ok";
		reply.body = payload;
		reply.body_len = h->length;
	} else {
		frame_split_error(payload, h->length, &reply.code, &reply.message, &reply.traceback);
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
	finish_job(pool, w, &reply);
	int restored = restore_priority(w);
	if (h->flags & FRAME_EXITING) {
		w->state = WORKER_EXITING;
		w->expected_exit = 1;
		w->backstop_ns = frame_now_ns() + EXIT_TIMEOUT_NS;
	} else if ((pool->opts.max_jobs_per_worker && w->jobs_run >= pool->opts.max_jobs_per_worker) ||
	    (h->flags & FRAME_HEAP_HIGH) || !restored) {
		if (h->flags & FRAME_HEAP_HIGH)
			log_info("worker %d keeps a high heap: replacing it", (int)w->pid);
		stats_add(pool, &pool->stats.recycles, 1);
		worker_stop(pool, w);
	} else {
		w->state = WORKER_IDLE;
	}
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
		if (h->length > 0 && h->length < sizeof(pool->engine_version)) {
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
	} else if (h->type == FRAME_REPLY && w->state == WORKER_BUSY) {
		handle_reply(pool, w, h, payload);
	} else {
		log_error("worker %d sent frame type %u in state %d", (int)w->pid, h->type, w->state);
		kill(w->pid, SIGKILL);
		worker_stop(pool, w);
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
			worker_stop(pool, w);
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
	}
}

static void
read_worker(struct luapool *pool, struct worker *w)
{
	for (;;) {
		if (buffer_reserve(&w->in, 16384) == -1 && buffer_reserve(&w->in, 1) == -1) {
			log_error("worker %d reply exceeds %zu bytes", (int)w->pid, w->in.limit);
			kill(w->pid, SIGKILL);
			worker_stop(pool, w);
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
		close_socket(pool, w);
		if (w->state == WORKER_IDLE)
			w->state = WORKER_EXITING;
		if (!w->expected_exit && !w->job)
			w->backstop_ns = frame_now_ns() + EXIT_TIMEOUT_NS;
		return;
	}
}

static void
continue_send(struct luapool *pool, struct worker *w)
{
	struct job *job = w->job;
	size_t total = sizeof(w->out) + job->payload_len;
	while (w->sent < total) {
		struct iovec iov[2];
		int n = 0;
		if (w->sent < sizeof(w->out))
			iov[n++] = (struct iovec){ (char *)&w->out + w->sent, sizeof(w->out) - w->sent };
		size_t poff = w->sent > sizeof(w->out) ? w->sent - sizeof(w->out) : 0;
		if (job->payload_len > poff)
			iov[n++] = (struct iovec){ job->payload + poff, job->payload_len - poff };
		ssize_t k = writev(w->fd, iov, n);
		if (k > 0) {
			w->sent += (size_t)k;
			continue;
		}
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1 && errno == EAGAIN) {
			watch(pool, w->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
			    event_key(EVENT_SOCKET, w->index), EPOLL_CTL_MOD);
			return;
		}
		/* The worker is gone; its pidfd will answer the job. */
		return;
	}
	if (total > 65536)	/* only large jobs can have needed EPOLLOUT */
		watch(pool, w->fd, EPOLLIN | EPOLLRDHUP, event_key(EVENT_SOCKET, w->index),
		    EPOLL_CTL_MOD);
}

static int64_t
job_deadline_ns(const struct luapool *pool, const struct job *job)
{
	unsigned timeout = job->timeout_ms ? job->timeout_ms : pool->opts.max_timeout_ms;
	return job->enqueued_ns + (int64_t)timeout * MS;
}

static void
send_job(struct luapool *pool, struct worker *w, struct job *job)
{
	memset(&w->out, 0, sizeof(w->out));
	w->out.type = job->frame_type;
	w->out.length = (uint32_t)job->payload_len;
	w->out.job_id = job->id;
	w->out.enqueued_ns = job->enqueued_ns;
	w->out.timeout_ms = job->timeout_ms;
	w->out.chunk_len = job->chunk_len;
	w->out.flags = job->flags;
	w->job = job;
	w->sent = 0;
	w->state = WORKER_BUSY;
	w->killed_for_deadline = 0;
	w->backstop_ns = job_deadline_ns(pool, job) + (int64_t)pool->opts.grace_ms * MS +
	    BACKSTOP_MARGIN_NS;
	w->demote_at_ns = frame_now_ns() + DEMOTE_AFTER_NS;
	atomic_fetch_add(&pool->busy, 1);
	continue_send(pool, w);
}

static void
dispatch_jobs(struct luapool *pool)
{
	int64_t now = frame_now_ns();
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		while (w->state == WORKER_IDLE) {
			struct job *job = pool_take_job(pool);
			if (job == NULL)
				return;
			if (job->timeout_ms && job_deadline_ns(pool, job) <= now) {
				pool_fail_job(pool, job, LUAPOOL_E_DEADLINE,
				    "deadline passed while the job was queued");
				continue;
			}
			send_job(pool, w, job);
		}
	}
}

/* Answers queued jobs whose deadline passed while every worker was busy. */
static void
sweep_expired_queue(struct luapool *pool, int64_t now)
{
	struct job *expired = NULL, **tail = &expired;
	pthread_mutex_lock(&pool->lock);
	struct job **link = &pool->head, *prev = NULL;
	while (*link) {
		struct job *job = *link;
		if (job->timeout_ms && job_deadline_ns(pool, job) <= now) {
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
		pool_fail_job(pool, expired, LUAPOOL_E_DEADLINE,
		    "deadline passed while the job was queued");
		expired = next;
	}
}

static void
enforce_backstops(struct luapool *pool, int64_t now)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		if (w->state == WORKER_DOWN || w->backstop_ns == 0 || w->backstop_ns > now)
			continue;
		if (w->state == WORKER_BUSY && w->job) {
			log_warn("worker %d still runs job %llu past its deadline: killing it",
			    (int)w->pid, (unsigned long long)w->job->id);
			w->killed_for_deadline = 1;
		} else if (w->state == WORKER_STARTING) {
			log_error("worker %d did not start in time: killing it", (int)w->pid);
		} else if (pool->stopping) {
			pool->kill_needed = 1;
		}
		kill(w->pid, SIGKILL);
		w->backstop_ns = 0;
	}
}

static int
next_timeout_ms(struct luapool *pool, int64_t now)
{
	int64_t next = INT64_MAX;
	for (unsigned i = 0; i < pool->nworkers; i++) {
		const struct worker *w = &pool->workers[i];
		if (w->state == WORKER_DOWN && !pool->stopping && w->respawn_at_ns < next)
			next = w->respawn_at_ns;
		else if (w->state != WORKER_DOWN && w->backstop_ns && w->backstop_ns < next)
			next = w->backstop_ns;
		if (w->state == WORKER_BUSY && !w->demoted && w->demote_at_ns < next)
			next = w->demote_at_ns;
	}
	pthread_mutex_lock(&pool->lock);
	int queued = pool->queued > 0;
	pthread_mutex_unlock(&pool->lock);
	if (queued && now + QUEUE_SWEEP_NS < next)
		next = now + QUEUE_SWEEP_NS;
	if (next == INT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return (int)((next - now + MS - 1) / MS);
}

static int
all_workers_down(const struct luapool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++)
		if (pool->workers[i].state != WORKER_DOWN)
			return 0;
	return 1;
}

static int
any_worker_idle(const struct luapool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++)
		if (pool->workers[i].state == WORKER_IDLE)
			return 1;
	return 0;
}

static int
work_remains(struct luapool *pool)
{
	pthread_mutex_lock(&pool->lock);
	int remains = pool->outstanding > 0;
	pthread_mutex_unlock(&pool->lock);
	return remains;
}

/* Shutdown: every job is answered; ask idle workers to exit. */
static void
stop_idle_workers(struct luapool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		if (w->state == WORKER_IDLE || w->state == WORKER_STARTING)
			worker_stop(pool, w);
	}
}

static void
handle_event(struct luapool *pool, const struct epoll_event *ev)
{
	unsigned kind = (unsigned)(ev->data.u64 & 3u);
	unsigned index = (unsigned)(ev->data.u64 >> 2);
	if (kind == EVENT_WAKE) {
		uint64_t v;
		ssize_t unused = read(pool->wakefd, &v, sizeof(v));
		(void)unused;
		return;
	}
	struct worker *w = &pool->workers[index];
	if (kind == EVENT_PIDFD) {
		reap_worker(pool, w);
		return;
	}
	if (w->fd == -1)
		return;
	if ((ev->events & EPOLLOUT) && w->job && w->sent < sizeof(w->out) + w->job->payload_len)
		continue_send(pool, w);
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		read_worker(pool, w);
}

static int
is_stopping(struct luapool *pool)
{
	pthread_mutex_lock(&pool->lock);
	int stopping = pool->stopping;
	pthread_mutex_unlock(&pool->lock);
	return stopping;
}

static void
spawn_all_workers(struct luapool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		if (worker_spawn(pool, &pool->workers[i]) == -1) {
			pthread_mutex_lock(&pool->lock);
			pool->startup_failed = 1;
			pthread_mutex_unlock(&pool->lock);
			schedule_respawn(pool, &pool->workers[i], 1);
		}
	}
}

/*
 * One round of the dispatcher: hand out jobs, wait for events (up to the
 * next timer, or at most max_wait_ms when that is >= 0), handle them, run
 * the timers.  Returns 1 once a shutdown has finished.
 */
int
dispatcher_run_once(struct luapool *pool, int max_wait_ms)
{
	struct epoll_event events[64];
	dispatch_jobs(pool);
	int stopping = is_stopping(pool);
	if (stopping && !work_remains(pool)) {
		stop_idle_workers(pool);
		if (all_workers_down(pool))
			return 1;
	}
	int64_t now = frame_now_ns();
	int timeout = next_timeout_ms(pool, now);
	if (max_wait_ms >= 0 && (timeout < 0 || timeout > max_wait_ms))
		timeout = max_wait_ms;
	int idle = any_worker_idle(pool);
	/* Announce the sleep before the last look at the queue, so a submit
	 * either sees the flag or its job is seen here. */
	if (!pool->opts.external_dispatch)
		atomic_store(&pool->dispatcher_sleeping, 1);
	pthread_mutex_lock(&pool->lock);
	int wake_now = (pool->head != NULL && idle) || pool->stopping != stopping;
	pthread_mutex_unlock(&pool->lock);
	int n = epoll_wait(pool->epfd, events, 64, wake_now ? 0 : timeout);
	if (!pool->opts.external_dispatch)
		atomic_store(&pool->dispatcher_sleeping, 0);
	for (int i = 0; i < n; i++)
		handle_event(pool, &events[i]);
	now = frame_now_ns();
	enforce_backstops(pool, now);
	demote_long_jobs(pool, now);
	respawn_due_workers(pool, now);
	sweep_expired_queue(pool, now);
	dispatch_jobs(pool);
	return 0;
}

int
dispatcher_next_timeout_ms(struct luapool *pool)
{
	return next_timeout_ms(pool, frame_now_ns());
}

static void *
dispatcher_main(void *arg)
{
	struct luapool *pool = arg;
	spawn_all_workers(pool);
	while (dispatcher_run_once(pool, -1) == 0)
		;
	return NULL;
}

int
dispatcher_start(struct luapool *pool, struct luapool_error *err)
{
	pool->nworkers = pool->opts.workers;
	pool->workers = calloc(pool->nworkers, sizeof(*pool->workers));
	if (pool->workers == NULL)
		goto fail;
	size_t reply_limit = pool->opts.max_result_bytes + 65536 + sizeof(struct frame_header);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		w->index = i;
		w->fd = w->pidfd = -1;
		buffer_init(&w->in, reply_limit);
	}
	pool->epfd = epoll_create1(EPOLL_CLOEXEC);
	pool->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pool->epfd == -1 || pool->wakefd == -1)
		goto fail;
	watch(pool, pool->wakefd, EPOLLIN, event_key(EVENT_WAKE, 0), EPOLL_CTL_ADD);
	if (pool->opts.external_dispatch) {
		/* The caller's thread is the dispatcher: workers die with it. */
		pool->owner = pthread_self();
		atomic_store(&pool->dispatcher_sleeping, 1);
		spawn_all_workers(pool);
		return 0;
	}
	if (pthread_create(&pool->thread, NULL, dispatcher_main, pool) != 0)
		goto fail;
	pool->thread_started = 1;
	return 0;
fail:
	if (err) {
		err->status = LUAPOOL_E_INVALID;
		snprintf(err->message, sizeof(err->message), "cannot start the pool: %s",
		    strerror(errno));
	}
	if (pool->epfd != -1)
		close(pool->epfd);
	if (pool->wakefd != -1)
		close(pool->wakefd);
	free(pool->workers);
	pool->workers = NULL;
	return -1;
}

void
dispatcher_wake(struct luapool *pool)
{
	if (pool->opts.external_dispatch && pthread_equal(pthread_self(), pool->owner))
		return;		/* the owner runs the dispatcher after this */
	if (!atomic_load(&pool->dispatcher_sleeping))
		return;
	uint64_t one = 1;
	ssize_t unused = write(pool->wakefd, &one, sizeof(one));
	(void)unused;
}

void
dispatcher_join(struct luapool *pool)
{
	if (pool->workers == NULL)
		return;
	if (pool->opts.external_dispatch) {
		while (dispatcher_run_once(pool, 100) == 0)
			;
	} else {
		uint64_t one = 1;
		ssize_t unused = write(pool->wakefd, &one, sizeof(one));
		(void)unused;
		pthread_join(pool->thread, NULL);
		pool->thread_started = 0;
	}
	for (unsigned i = 0; i < pool->nworkers; i++)
		buffer_free(&pool->workers[i].in);
	free(pool->workers);
	pool->workers = NULL;
	close(pool->epfd);
	close(pool->wakefd);
	pool->epfd = pool->wakefd = -1;
}
