/*
 * supervise.c - the life of worker processes, for the dispatcher thread:
 * spawn, readiness bookkeeping, stop, reap (answering the job a dead
 * worker held, with why it died), respawn with backoff, the backstop kill
 * past a deadline, and CPU priority for long jobs.
 *
 * Only the dispatcher thread calls this; it never blocks and never reads
 * or writes a worker's socket (channel.c does).
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
#include "pool/poller.h"
#include "pool/process.h"
#include "pool/queue.h"
#include "pool/supervise.h"

#define STARTUP_TIMEOUT_NS	(5000 * POOL_MS)
#define MAX_BACKOFF_MS		1000
#define DEMOTED_NICE		19

/* Reads the rest of a worker's stderr and closes it (at its end). */
static void
close_log(struct luapool *pool, struct worker *w)
{
	if (w->log_fd == -1)
		return;
	/* The worker is dead: what the pipe holds is all it wrote, unless
	 * someone else holds the write end (a fork of the embedding program),
	 * so stop at "nothing more for now" too. */
	while (worker_log_read(&w->log, w->log_fd, w->pid, frame_now_ns()) == 1)
		;
	worker_log_finish(&w->log, w->pid);
	epoll_ctl(pool->epfd, EPOLL_CTL_DEL, w->log_fd, NULL);
	close(w->log_fd);
	w->log_fd = -1;
}

void
supervise_read_log(struct luapool *pool, struct worker *w)
{
	if (w->log_fd != -1 && worker_log_read(&w->log, w->log_fd, w->pid, frame_now_ns()) <= 0)
		close_log(pool, w);
}

int
supervise_spawn(struct luapool *pool, struct worker *w)
{
	int fd, log_fd;
	/* A reload may have changed the level since the pool started. */
	snprintf(pool->argv_text[pool->log_level_slot], sizeof(pool->argv_text[0]), "%d",
	    (int)log_get_level());
	pid_t pid = process_spawn_worker(pool->worker_path, pool->worker_argv, &fd, &log_fd);
	if (pid == -1)
		return -1;
	int pidfd = pidfd_open(pid, 0);
	if (pidfd == -1) {
		log_error("pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(fd);
		close(log_fd);
		return -1;
	}
	w->pid = pid;
	w->fd = fd;
	w->watching_writes = 0;
	w->pidfd = pidfd;
	w->log_fd = log_fd;
	worker_log_reset(&w->log);
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
	poller_watch(pool, fd, EPOLLIN | EPOLLRDHUP, poller_key(EVENT_SOCKET, w->index), EPOLL_CTL_ADD);
	poller_watch(pool, pidfd, EPOLLIN, poller_key(EVENT_PIDFD, w->index), EPOLL_CTL_ADD);
	poller_watch(pool, log_fd, EPOLLIN, poller_key(EVENT_LOG, w->index), EPOLL_CTL_ADD);
	log_debug("worker %u started as pid %d", w->index, (int)pid);
	return 0;
}

static void
schedule_respawn(struct luapool *pool, struct worker *w, int quick_failure)
{
	w->state = WORKER_DOWN;
	w->pid = 0;
	if (pool->stopping && !queue_has_jobs(pool))
		return;		/* a drain still runs what is queued: replace it */
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
	w->respawn_at_ns = frame_now_ns() + delay_ms * POOL_MS;
}

void
supervise_respawn_due(struct luapool *pool, int64_t now)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		if (w->state != WORKER_DOWN || w->respawn_at_ns > now ||
		    (pool->stopping && !queue_has_jobs(pool)))
			continue;
		if (supervise_spawn(pool, w) == -1) {
			schedule_respawn(pool, w, 1);
			continue;
		}
		queue_count(pool, &pool->stats.respawns, 1);
	}
}

void
supervise_finish_job(struct luapool *pool, struct worker *w, const struct luapool_reply *reply)
{
	struct job *job = w->job;
	w->job = NULL;
	free(w->module_chunk);		/* a module still being written: moot now */
	w->module_chunk = NULL;
	w->out_payload = NULL;
	w->out_len = 0;
	atomic_fetch_sub(&pool->busy, 1);
	queue_complete(pool, job, reply);
}

static void
fail_running_job(struct luapool *pool, struct worker *w, enum luapool_status status,
    const char *message)
{
	struct luapool_reply reply = {
		.status = status, .code = luapool_status_code(status), .message = message,
		.worker_pid = (int)w->pid,
	};
	supervise_finish_job(pool, w, &reply);
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
		queue_count(pool, &pool->stats.backstop_kills, 1);
		fail_running_job(pool, w, LUAPOOL_E_DEADLINE, message);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == FRAME_EXIT_DEADLINE) {
		snprintf(message, sizeof(message), "deadline exceeded (hard stop)");
		queue_count(pool, &pool->stats.hard_deadline_stops, 1);
		fail_running_job(pool, w, LUAPOOL_E_DEADLINE, message);
	} else {
		snprintf(message, sizeof(message), "worker %d %s while running the job",
		    (int)w->pid, how);
		queue_count(pool, &pool->stats.crashes, 1);
		fail_running_job(pool, w, LUAPOOL_E_CRASHED, message);
	}
}

void
supervise_reap(struct luapool *pool, struct worker *w)
{
	int status = 0;
	if (waitpid(w->pid, &status, WNOHANG) <= 0)
		return;		/* not yet: pidfd events can't be early, but be safe */
	close_log(pool, w);	/* its last words before the news of its death */
	poller_close_socket(pool, w);
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
void
supervise_stop(struct luapool *pool, struct worker *w)
{
	poller_close_socket(pool, w);
	w->state = WORKER_EXITING;
	w->expected_exit = 1;
	w->backstop_ns = frame_now_ns() + EXIT_TIMEOUT_NS;
}

/* Back to normal priority after a long job; 0 if that is not allowed
 * (no CAP_SYS_NICE): the worker is then replaced instead. */
int
supervise_restore_priority(struct worker *w)
{
	if (!w->demoted)
		return 1;
	w->demoted = 0;
	return setpriority(PRIO_PROCESS, (id_t)w->pid, 0) == 0;
}

void
supervise_demote_long_jobs(struct luapool *pool, int64_t now)
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

void
supervise_enforce_backstops(struct luapool *pool, int64_t now)
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

/* Shutdown: every job is answered; ask idle workers to exit. */
void
supervise_stop_idle(struct luapool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		if (w->state == WORKER_IDLE || w->state == WORKER_STARTING)
			supervise_stop(pool, w);
	}
}

void
supervise_spawn_all(struct luapool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		if (supervise_spawn(pool, &pool->workers[i]) == -1) {
			pthread_mutex_lock(&pool->lock);
			pool->startup_failed = 1;
			pthread_mutex_unlock(&pool->lock);
			schedule_respawn(pool, &pool->workers[i], 1);
		}
	}
}
