/*
 * fronts.c - keeping a set of front processes running (see fronts.h):
 * start and attach, watch (pidfds and stderr pipes in an epoll set of its
 * own), respawn with backoff, replace the set on reload, stop.  One
 * process's own life (the CONFIG packet, its log, reaping that pid only)
 * is front_process.c.
 *
 * One thread of its own owns every front after fronts_start; the API
 * functions only leave it requests under `lock` and wake it.  It never
 * reads a control socket: the attach callback owns it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "pool/front_process.h"
#include "pool/fronts.h"
#include "pool/pool_internal.h"
#include "pool/process.h"

#define MS_NS			1000000LL
#define FIRST_BACKOFF_MS	10
#define MAX_BACKOFF_MS		1000
#define STABLE_NS		(1000 * MS_NS)	/* lived this long: backoff starts over */
#define RETIRE_KILL_NS		(30000 * MS_NS)	/* a replaced front's time to finish */
#define EVENTS_PER_WAIT		16

/* One process, from its start until it is reaped. */
struct front {
	struct front *next;
	struct front_process proc;
	unsigned generation;		/* of the command it started with */
	int slot;			/* its place in the set; -1: told to stop */
	int told_to_stop;		/* SIGTERM sent */
	int64_t kill_at_ns;		/* told to stop: SIGKILL then; INT64_MAX: never */
	int killed;			/* SIGKILL sent */
};

/* A place in the set: holds a front, or waits to start one. */
struct slot {
	struct front *front;		/* NULL: down until due_ns */
	unsigned backoff_ms;		/* the next restart's delay */
	int64_t due_ns;			/* restart (down) or replace (outdated) then */
};

struct fronts {
	struct front_command *base;	/* the program and the worker's arguments;
					 * never changes, fronts_reload builds on it */
	struct front_command *command;	/* the thread's: what fronts start with */
	void (*attach)(void *arg, int control_fd);
	void *attach_arg;
	unsigned count;
	struct slot *slots;
	struct front *fronts;		/* every process not yet reaped */
	unsigned generation;		/* of command */
	int stopping;			/* every front was told to stop */
	int epfd, wakefd;
	pthread_t thread;
	atomic_uint alive;

	pthread_mutex_t lock;		/* guards what follows */
	struct front_command *pending;	/* from fronts_reload, not yet taken */
	int stop_asked, free_asked;
};

static void
watch(struct fronts *f, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		log_error("epoll_ctl: %s", strerror(errno));
}

/*
 * Starts one front with the current command and watches it; its control
 * socket goes to *control_fd, for the caller to attach.  NULL on failure,
 * with nothing left running.
 */
static struct front *
spawn_front(struct fronts *f, int slot, int *control_fd)
{
	struct front *fr = calloc(1, sizeof(*fr));
	if (fr == NULL)
		return NULL;
	if (front_process_start(&fr->proc, f->command, control_fd) == -1) {
		free(fr);
		return NULL;
	}
	fr->generation = f->generation;
	fr->slot = slot;
	fr->kill_at_ns = INT64_MAX;
	fr->next = f->fronts;
	f->fronts = fr;
	watch(f, fr->proc.pidfd);
	watch(f, fr->proc.log_fd);
	atomic_fetch_add(&f->alive, 1);
	log_debug("front %u started as pid %d", (unsigned)slot, (int)fr->proc.pid);
	return fr;
}

/* The next restart of a slot: 10, 20, 40 ... 1000 ms while its fronts
 * keep dying within a second, 10 ms again after one that lived longer. */
static void
schedule_restart(struct slot *s, int64_t lived_ns, int64_t now)
{
	if (lived_ns >= STABLE_NS)
		s->backoff_ms = FIRST_BACKOFF_MS;
	s->due_ns = now + (int64_t)s->backoff_ms * MS_NS;
	s->backoff_ms = s->backoff_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : s->backoff_ms * 2;
}

static void
unlink_front(struct fronts *f, struct front *fr)
{
	for (struct front **p = &f->fronts; *p != NULL; p = &(*p)->next) {
		if (*p == fr) {
			*p = fr->next;
			break;
		}
	}
}

/* Its pidfd fired: reap it, log why it went, and if it still had a
 * place in the set, schedule its successor. */
static void
reap(struct fronts *f, struct front *fr)
{
	char how[96];
	int clean;
	if (front_process_reap(&fr->proc, f->epfd, how, sizeof(how), &clean) == 0)
		return;
	int64_t now = frame_now_ns();
	pid_t pid = fr->proc.pid;
	if (fr->slot >= 0) {
		struct slot *s = &f->slots[fr->slot];
		s->front = NULL;
		schedule_restart(s, now - fr->proc.spawned_ns, now);
		log_warn("front %d %s; a new one starts in %lld ms", (int)pid, how,
		    (long long)((s->due_ns - now) / MS_NS));
	} else if (clean || fr->killed) {
		log_debug("front %d %s", (int)pid, how);
	} else {
		log_warn("front %d %s while stopping", (int)pid, how);
	}
	unlink_front(f, fr);
	free(fr);
	atomic_fetch_sub(&f->alive, 1);
}

/* Out of the set, and SIGTERM: it stops accepting and finishes what it
 * holds by itself.  Told once: a second SIGTERM could mean "now" to it. */
static void
retire(struct fronts *f, struct front *fr, int64_t kill_at_ns)
{
	if (fr->slot >= 0 && f->slots[fr->slot].front == fr)
		f->slots[fr->slot].front = NULL;
	fr->slot = -1;
	if (fr->told_to_stop)
		return;
	fr->told_to_stop = 1;
	fr->kill_at_ns = kill_at_ns;
	kill(fr->proc.pid, SIGTERM);
}

/* Down slots whose time has come get a front. */
static void
restart_due(struct fronts *f, int64_t now)
{
	for (unsigned i = 0; i < f->count; i++) {
		struct slot *s = &f->slots[i];
		int control_fd;
		if (s->front != NULL || s->due_ns > now)
			continue;
		if ((s->front = spawn_front(f, (int)i, &control_fd)) == NULL) {
			schedule_restart(s, 0, now);
			continue;
		}
		f->attach(f->attach_arg, control_fd);
	}
}

/*
 * Fronts started with an older command: a complete new set first (slots
 * whose new front fails to start keep their old one and try again later),
 * then SIGTERM to the fronts it replaced.
 */
static void
replace_outdated(struct fronts *f, int64_t now)
{
	struct front *old[FRONTS_MAX] = { NULL };
	for (unsigned i = 0; i < f->count; i++) {
		struct slot *s = &f->slots[i];
		int control_fd;
		if (s->front == NULL || s->front->generation == f->generation || s->due_ns > now)
			continue;
		struct front *fresh = spawn_front(f, (int)i, &control_fd);
		if (fresh == NULL) {
			schedule_restart(s, 0, now);
			continue;
		}
		old[i] = s->front;
		s->front = fresh;
		f->attach(f->attach_arg, control_fd);
	}
	for (unsigned i = 0; i < f->count; i++) {
		if (old[i] != NULL)
			retire(f, old[i], now + RETIRE_KILL_NS);
	}
}

/* A new command from fronts_reload: every front is now outdated. */
static void
take_command(struct fronts *f, struct front_command *fresh, int64_t now)
{
	front_command_free(f->command);
	f->command = fresh;
	f->generation++;
	for (unsigned i = 0; i < f->count; i++) {
		f->slots[i].backoff_ms = FIRST_BACKOFF_MS;
		if (f->slots[i].front != NULL)
			f->slots[i].due_ns = now;
	}
}

static void
begin_stopping(struct fronts *f)
{
	f->stopping = 1;
	for (struct front *fr = f->fronts; fr != NULL; fr = fr->next)
		retire(f, fr, INT64_MAX);
}

static void
kill_all(struct fronts *f, int were_asked)
{
	for (struct front *fr = f->fronts; fr != NULL; fr = fr->next) {
		if (fr->killed)
			continue;
		if (were_asked)
			log_warn("front %d did not stop in time: killing it", (int)fr->proc.pid);
		fr->slot = -1;
		fr->killed = 1;
		kill(fr->proc.pid, SIGKILL);
	}
	for (unsigned i = 0; i < f->count; i++)
		f->slots[i].front = NULL;
	f->stopping = 1;
}

static void
kill_late(struct fronts *f, int64_t now)
{
	for (struct front *fr = f->fronts; fr != NULL; fr = fr->next) {
		if (fr->killed || fr->kill_at_ns > now)
			continue;
		log_warn("front %d still runs %d s after it was replaced: killing it",
		    (int)fr->proc.pid, (int)(RETIRE_KILL_NS / (1000 * MS_NS)));
		fr->killed = 1;
		kill(fr->proc.pid, SIGKILL);
	}
}

/* Milliseconds until the next timer, or -1: none. */
static int
next_timeout_ms(const struct fronts *f, int64_t now)
{
	int64_t next = INT64_MAX;
	for (unsigned i = 0; !f->stopping && i < f->count; i++) {
		const struct slot *s = &f->slots[i];
		if (s->front == NULL || s->front->generation != f->generation)
			next = s->due_ns < next ? s->due_ns : next;
	}
	for (const struct front *fr = f->fronts; fr != NULL; fr = fr->next)
		if (!fr->killed && fr->kill_at_ns < next)
			next = fr->kill_at_ns;
	if (next == INT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	int64_t ms = (next - now + MS_NS - 1) / MS_NS;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void
handle_event(struct fronts *f, int fd)
{
	if (fd == f->wakefd) {
		uint64_t count;
		if (read(f->wakefd, &count, sizeof(count)) == -1 && errno != EAGAIN)
			log_error("read eventfd: %s", strerror(errno));
		return;
	}
	for (struct front *fr = f->fronts; fr != NULL; fr = fr->next) {
		if (fd == fr->proc.pidfd) {
			reap(f, fr);
			return;
		}
		if (fd == fr->proc.log_fd) {
			front_process_read_log(&fr->proc, f->epfd);
			return;
		}
	}
}

/* What the API functions asked since the last look.  1: free asked. */
static int
take_requests(struct fronts *f, int64_t now)
{
	pthread_mutex_lock(&f->lock);
	struct front_command *fresh = f->pending;
	f->pending = NULL;
	int stop = f->stop_asked, free_asked = f->free_asked;
	pthread_mutex_unlock(&f->lock);
	if (fresh != NULL && !f->stopping)
		take_command(f, fresh, now);
	else
		front_command_free(fresh);
	if (free_asked)
		kill_all(f, stop);
	else if (stop && !f->stopping)
		begin_stopping(f);
	return free_asked;
}

static void *
run(void *arg)
{
	struct fronts *f = arg;
	struct epoll_event events[EVENTS_PER_WAIT];
	for (;;) {
		int64_t now = frame_now_ns();
		int free_asked = take_requests(f, now);
		if (free_asked && f->fronts == NULL)
			break;
		if (!f->stopping) {
			replace_outdated(f, now);
			restart_due(f, now);
		}
		kill_late(f, now);
		int n = epoll_wait(f->epfd, events, EVENTS_PER_WAIT, next_timeout_ms(f, frame_now_ns()));
		if (n == -1 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			usleep(10000);	/* never spin */
		}
		for (int i = 0; i < n; i++)
			handle_event(f, events[i].data.fd);
	}
	return NULL;
}

static void
wake(struct fronts *f)
{
	uint64_t one = 1;
	if (write(f->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_error("write eventfd: %s", strerror(errno));
}

/* Everything but the processes, which must be gone. */
static void
release(struct fronts *f)
{
	if (f->epfd != -1)
		close(f->epfd);
	if (f->wakefd != -1)
		close(f->wakefd);
	front_command_free(f->base);
	front_command_free(f->command);
	front_command_free(f->pending);
	free(f->slots);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* fronts_start's failure path: the first set dies with it. */
static void
kill_started(struct fronts *f, const int *control_fds)
{
	for (unsigned i = 0; i < f->count; i++) {
		struct front *fr = f->slots[i].front;
		if (fr == NULL)
			continue;
		front_process_abandon(&fr->proc);
		close(control_fds[i]);
		unlink_front(f, fr);
		free(fr);
	}
}

static int
fail(char *err, size_t errlen, const char *message, const char *detail)
{
	snprintf(err, errlen, "%s%s%s", message, detail ? ": " : "", detail ? detail : "");
	return -1;
}

/* Everything but the processes and the thread.  -1 with err filled. */
static int
prepare(struct fronts *f, struct luapool *pool, const struct fronts_options *o, char *err,
    size_t errlen)
{
	if (o->count == 0 || o->count > FRONTS_MAX || o->attach == NULL)
		return fail(err, errlen, "invalid front options", NULL);
	if (o->auth_token != NULL && strlen(o->auth_token) > FRONT_PROCESS_TOKEN_MAX)
		return fail(err, errlen, "the auth token is too long for the fronts", NULL);
	char path[PATH_MAX];
	if (process_find_front(o->front_path, pool->worker_path, path, sizeof(path)) == -1)
		return o->front_path && o->front_path[0] ?
		    fail(err, errlen, "front_path is not an executable file", o->front_path) :
		    fail(err, errlen, "no executable luapool-front found (set front_path "
		    "or LUAPOOL_FRONT)", NULL);
	f->count = o->count;
	f->attach = o->attach;
	f->attach_arg = o->attach_arg;
	f->slots = calloc(f->count, sizeof(*f->slots));
	f->base = front_command_new(pool, path, NULL, NULL);
	if (f->slots == NULL || f->base == NULL ||
	    (f->command = front_command_renew(f->base, o->auth_token, o->extra_args)) == NULL)
		return fail(err, errlen, "out of memory", NULL);
	for (unsigned i = 0; i < f->count; i++)
		f->slots[i].backoff_ms = FIRST_BACKOFF_MS;
	if ((f->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (f->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		return fail(err, errlen, "epoll or eventfd", strerror(errno));
	watch(f, f->wakefd);
	return 0;
}

struct fronts *
fronts_start(struct luapool *pool, const struct fronts_options *o, char *err, size_t errlen)
{
	int control_fds[FRONTS_MAX];
	struct fronts *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		fail(err, errlen, "out of memory", NULL);
		return NULL;
	}
	f->epfd = f->wakefd = -1;
	pthread_mutex_init(&f->lock, NULL);
	if (prepare(f, pool, o, err, errlen) == -1)
		goto fail;
	for (unsigned i = 0; i < f->count; i++) {
		if ((f->slots[i].front = spawn_front(f, (int)i, &control_fds[i])) == NULL) {
			fail(err, errlen, "cannot start a front (see the log)", f->base->argv[0]);
			kill_started(f, control_fds);
			goto fail;
		}
	}
	int rc = pthread_create(&f->thread, NULL, run, f);
	if (rc != 0) {
		fail(err, errlen, "pthread_create", strerror(rc));
		kill_started(f, control_fds);
		goto fail;
	}
	/* The thread may already have replaced one of these; its successor
	 * was attached there, and this socket reads as closed. */
	for (unsigned i = 0; i < f->count; i++)
		f->attach(f->attach_arg, control_fds[i]);
	return f;
fail:
	release(f);
	return NULL;
}

int
fronts_token_fits(const char *auth_token)
{
	return auth_token == NULL || strlen(auth_token) <= FRONT_PROCESS_TOKEN_MAX;
}

int
fronts_reload(struct fronts *f, const char *auth_token, const char *const *extra_args)
{
	if (!fronts_token_fits(auth_token)) {
		log_error("reloading the fronts: the auth token is too long; they keep theirs");
		return -1;
	}
	struct front_command *fresh = front_command_renew(f->base, auth_token, extra_args);
	if (fresh == NULL) {
		log_error("reloading the fronts: out of memory");
		return -1;
	}
	pthread_mutex_lock(&f->lock);
	front_command_free(f->pending);	/* never taken: this one supersedes it */
	f->pending = fresh;
	pthread_mutex_unlock(&f->lock);
	wake(f);
	return 0;
}

void
fronts_begin_stop(struct fronts *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop_asked = 1;
	pthread_mutex_unlock(&f->lock);
	wake(f);
}

unsigned
fronts_alive(const struct fronts *f)
{
	return f ? atomic_load(&f->alive) : 0;
}

void
fronts_free(struct fronts *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->free_asked = 1;
	pthread_mutex_unlock(&f->lock);
	wake(f);
	pthread_join(f->thread, NULL);
	release(f);
}

void
fronts_stop(struct fronts *f, int timeout_ms)
{
	if (f == NULL)
		return;
	fronts_begin_stop(f);
	int64_t until = frame_now_ns() + (int64_t)timeout_ms * MS_NS;
	while (fronts_alive(f) > 0 && frame_now_ns() < until)
		usleep(5000);
	fronts_free(f);
}
