/*
 * dispatcher.c - the pool's one thread that owns the worker processes: its
 * event loop hands queued jobs to idle workers, routes socket and pidfd
 * events (channel.c, supervise.c), runs the timers, and stops everything
 * at shutdown.
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
#include "pool/channel.h"
#include "pool/dispatcher.h"
#include "pool/poller.h"
#include "pool/queue.h"
#include "pool/supervise.h"

#define QUEUE_SWEEP_NS		(10 * POOL_MS)

static void
dispatch_jobs(struct luapool *pool)
{
	int64_t now = frame_now_ns();
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		while (w->state == WORKER_IDLE) {
			struct job *job = queue_take(pool);
			if (job == NULL)
				return;
			if (job->timeout_ms && queue_job_deadline_ns(pool, job) <= now) {
				queue_fail(pool, job, LUAPOOL_E_DEADLINE,
				    "deadline passed while the job was queued");
				continue;
			}
			channel_send_job(pool, w, job);
		}
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
	return (int)((next - now + POOL_MS - 1) / POOL_MS);
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
		supervise_reap(pool, w);
		return;
	}
	if (kind == EVENT_LOG) {
		supervise_read_log(pool, w);
		return;
	}
	if (w->fd == -1)
		return;
	if ((ev->events & EPOLLOUT) && channel_sending(w))
		channel_continue_send(pool, w);
	else if (ev->events & EPOLLOUT)
		channel_stop_watching_writes(pool, w);	/* nothing to send: never spin */
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		channel_read(pool, w);
}

static int
is_stopping(struct luapool *pool)
{
	return atomic_load(&pool->stopping);
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
		supervise_stop_idle(pool);
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
	supervise_enforce_backstops(pool, now);
	supervise_demote_long_jobs(pool, now);
	supervise_respawn_due(pool, now);
	if (now >= pool->next_sweep_ns) {	/* it walks the queue under the lock */
		pool->next_sweep_ns = now + QUEUE_SWEEP_NS;
		queue_sweep_expired(pool, now);
	}
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
	supervise_spawn_all(pool);
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
	size_t reply_limit = pool->opts.max_result_bytes + pool->opts.max_log_bytes + 65536 +
	    sizeof(struct frame_header);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		w->index = i;
		w->fd = w->pidfd = w->log_fd = -1;
		buffer_init(&w->in, reply_limit);
	}
	pool->epfd = epoll_create1(EPOLL_CLOEXEC);
	pool->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pool->epfd == -1 || pool->wakefd == -1)
		goto fail;
	poller_watch(pool, pool->wakefd, EPOLLIN, poller_key(EVENT_WAKE, 0), EPOLL_CTL_ADD);
	if (pool->opts.external_dispatch) {
		/* The caller's thread is the dispatcher: workers die with it. */
		pool->owner = pthread_self();
		atomic_store(&pool->dispatcher_sleeping, 1);
		supervise_spawn_all(pool);
		return 0;
	}
	if (pthread_create(&pool->thread, NULL, dispatcher_main, pool) != 0)
		goto fail;
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
	}
	for (unsigned i = 0; i < pool->nworkers; i++)
		buffer_free(&pool->workers[i].in);
	pool->nworkers = 0;
	free(pool->workers);
	pool->workers = NULL;
	close(pool->epfd);
	close(pool->wakefd);
	pool->epfd = pool->wakefd = -1;
}
