/*
 * front_process.c - one front process's life as the supervisor sees it
 * (see front_process.h): its command line, start, log, reaping.  Never
 * reads the control socket beyond sending the one CONFIG packet: whoever
 * attaches it owns it.  Never reaps any pid but the front's own (the pool
 * reaps its workers).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/front_proto.h"
#include "common/log.h"
#include "pool/front_process.h"
#include "pool/pool_internal.h"
#include "pool/process.h"

void
front_command_free(struct front_command *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->argc; i++)
		if (i != c->level_index)
			free(c->argv[i]);
	free(c->argv);
	free(c->token);
	free(c);
}

/* base[0..nbase) then extra, copied, except base[level_index], which
 * becomes the command's own level_text and is never read. */
static struct front_command *
command_build(const char *const *base, unsigned nbase, unsigned level_index, const char *token,
    const char *const *extra)
{
	struct front_command *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	unsigned nextra = 0;
	while (extra != NULL && extra[nextra] != NULL)
		nextra++;
	c->nbase = nbase;
	c->level_index = level_index;
	c->token = strdup(token ? token : "");
	c->argv = calloc(nbase + nextra + 1, sizeof(*c->argv));
	if (c->token == NULL || c->argv == NULL)
		goto fail;
	for (; c->argc < nbase + nextra; c->argc++) {
		const char *arg = c->argc < nbase ? base[c->argc] : extra[c->argc - nbase];
		if (c->argc == level_index)
			c->argv[c->argc] = c->level_text;
		else if ((c->argv[c->argc] = strdup(arg)) == NULL)
			goto fail;
	}
	return c;
fail:
	front_command_free(c);
	return NULL;
}

/*
 * After build_worker_argv only the text of --log-level's value changes
 * (the dispatcher rewrites it at each spawn, on its own thread), so that
 * text is never read here: its entry is known by its address.
 */
struct front_command *
front_command_new(const struct luapool *pool, const char *path, const char *token,
    const char *const *extra_args)
{
	const char *base[sizeof(pool->worker_argv) / sizeof(pool->worker_argv[0])];
	const char *level = pool->argv_text[pool->log_level_slot];
	unsigned n = 0, level_index = UINT_MAX;
	base[n++] = path;
	for (; pool->worker_argv[n] != NULL; n++) {
		base[n] = pool->worker_argv[n];
		if (base[n] == level)
			level_index = n;
	}
	return command_build(base, n, level_index, token, extra_args);
}

struct front_command *
front_command_renew(const struct front_command *from, const char *token,
    const char *const *extra_args)
{
	return command_build((const char *const *)from->argv, from->nbase, from->level_index,
	    token, extra_args);
}

/* The one packet before anything else: the auth token. */
static int
send_config(int control_fd, const char *token)
{
	struct front_msg msg = { .type = FRONT_MSG_CONFIG };
	struct iovec iov[2] = {
		{ .iov_base = &msg, .iov_len = sizeof(msg) },
		{ .iov_base = (void *)(uintptr_t)token, .iov_len = strlen(token) },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	/* A fresh socket's buffer is empty: a packet this small always fits. */
	if (sendmsg(control_fd, &mh, MSG_NOSIGNAL) == -1) {
		log_error("sending a front its configuration: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
front_process_start(struct front_process *p, struct front_command *c, int *control_fd)
{
	int log_fd;
	/* A reload may have changed the level since the last start. */
	snprintf(c->level_text, sizeof(c->level_text), "%d", (int)log_get_level());
	pid_t pid = process_spawn_front(c->argv[0], c->argv, control_fd, &log_fd);
	if (pid == -1)
		return -1;
	int pidfd = pidfd_open(pid, 0);
	if (pidfd == -1)
		log_error("pidfd_open: %s", strerror(errno));
	if (pidfd == -1 || send_config(*control_fd, c->token) == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (pidfd != -1)
			close(pidfd);
		close(*control_fd);
		close(log_fd);
		return -1;
	}
	p->pid = pid;
	p->pidfd = pidfd;
	p->log_fd = log_fd;
	worker_log_reset_front(&p->log);
	p->spawned_ns = frame_now_ns();
	return 0;
}

/* Reads the rest of its stderr and closes it (at its end, or its death). */
static void
close_log(struct front_process *p, int epfd)
{
	if (p->log_fd == -1)
		return;
	/* Stop at "nothing more for now" too: a fork of ours may hold the
	 * write end a moment longer. */
	while (worker_log_read(&p->log, p->log_fd, p->pid, frame_now_ns()) == 1)
		;
	worker_log_finish(&p->log, p->pid);
	epoll_ctl(epfd, EPOLL_CTL_DEL, p->log_fd, NULL);
	close(p->log_fd);
	p->log_fd = -1;
}

void
front_process_read_log(struct front_process *p, int epfd)
{
	if (p->log_fd != -1 && worker_log_read(&p->log, p->log_fd, p->pid, frame_now_ns()) <= 0)
		close_log(p, epfd);
}

int
front_process_reap(struct front_process *p, int epfd, char *how, size_t howlen, int *clean)
{
	int status = 0;
	pid_t got = waitpid(p->pid, &status, WNOHANG);
	if (got == 0)
		return 0;	/* not yet: pidfd events can't be early, but be safe */
	if (got == -1) {	/* reaped by someone else (an embedder's SIGCHLD) */
		snprintf(how, howlen, "exited (status unknown: %s)", strerror(errno));
		*clean = 1;
	} else {
		process_describe_status(status, how, howlen);
		*clean = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
		    (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	}
	close_log(p, epfd);	/* its last words before the news of its death */
	epoll_ctl(epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
	close(p->pidfd);
	p->pidfd = -1;
	return 1;
}

void
front_process_abandon(struct front_process *p)
{
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	close(p->pidfd);
	if (p->log_fd != -1)
		close(p->log_fd);
	p->pidfd = p->log_fd = -1;
}
