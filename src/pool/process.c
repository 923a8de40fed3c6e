/*
 * process.c - worker process creation and exit descriptions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "pool/process.h"

#ifndef LUAPOOL_WORKER_INSTALL_PATH
#define LUAPOOL_WORKER_INSTALL_PATH "/usr/local/libexec/luapoold/luapool-worker"
#endif

extern char **environ;

static int
is_executable(const char *path)
{
	return path != NULL && path[0] != '\0' && access(path, X_OK) == 0;
}

static int
worker_next_to_executable(char *out, size_t outlen)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	int m = snprintf(out, outlen, "%s/luapool-worker", self);
	if (m < 0 || (size_t)m >= outlen)
		return -1;
	return is_executable(out) ? 0 : -1;
}

static int
copy_path(const char *path, char *out, size_t outlen)
{
	if (strlen(path) >= outlen)
		return -1;
	strcpy(out, path);
	return 0;
}

int
process_find_worker(const char *configured, char *out, size_t outlen)
{
	if (configured != NULL && configured[0] != '\0')
		return is_executable(configured) ? copy_path(configured, out, outlen) : -1;
	const char *env = getenv("LUAPOOL_WORKER");
	if (env != NULL && env[0] != '\0')
		return is_executable(env) ? copy_path(env, out, outlen) : -1;
	if (is_executable(LUAPOOL_WORKER_INSTALL_PATH))
		return copy_path(LUAPOOL_WORKER_INSTALL_PATH, out, outlen);
	return worker_next_to_executable(out, outlen);
}

pid_t
process_spawn_worker(const char *path, char *const argv[], int *fd, int *log_fd)
{
	int sv[2] = { -1, -1 };
	int lp[2] = { -1, -1 };
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	int have_actions = 0, have_attr = 0;
	pid_t pid = -1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_error("socketpair: %s", strerror(errno));
		goto fail;
	}
	if (pipe2(lp, O_CLOEXEC) == -1) {
		log_error("pipe2: %s", strerror(errno));
		goto fail;
	}
	if (posix_spawn_file_actions_init(&actions) != 0)
		goto fail;
	have_actions = 1;
	/* The worker's stderr is a pipe to us: its lines reach the log only
	 * through worker_log.c, escaped. */
	if (posix_spawn_file_actions_adddup2(&actions, lp[1], STDERR_FILENO) != 0)
		goto fail;
	/* dup2 clears close-on-exec on the copy; every other descriptor of
	 * ours is close-on-exec, and the worker closes any stray one. */
	if (posix_spawn_file_actions_adddup2(&actions, sv[1], FRAME_WORKER_FD) != 0)
		goto fail;
	if (posix_spawnattr_init(&attr) != 0)
		goto fail;
	have_attr = 1;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	/* A process group of its own: Ctrl-C in a terminal (SIGINT to the
	 * foreground group) reaches the supervisor, which drains, and not the
	 * workers, whose fate only the supervisor decides. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETPGROUP);
	int rc = posix_spawn(&pid, path, &actions, &attr, argv, environ);
	if (rc != 0) {
		log_error("posix_spawn %s: %s", path, strerror(rc));
		pid = -1;
		goto fail;
	}
	close(sv[1]);
	sv[1] = -1;
	close(lp[1]);
	lp[1] = -1;
	int flags = fcntl(sv[0], F_GETFL);
	fcntl(sv[0], F_SETFL, flags | O_NONBLOCK);
	flags = fcntl(lp[0], F_GETFL);
	fcntl(lp[0], F_SETFL, flags | O_NONBLOCK);
	*fd = sv[0];
	*log_fd = lp[0];
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	return pid;
fail:
	if (have_actions)
		posix_spawn_file_actions_destroy(&actions);
	if (have_attr)
		posix_spawnattr_destroy(&attr);
	if (sv[0] != -1)
		close(sv[0]);
	if (sv[1] != -1)
		close(sv[1]);
	if (lp[0] != -1)
		close(lp[0]);
	if (lp[1] != -1)
		close(lp[1]);
	return -1;
}

void
process_describe_status(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, outlen, "killed by signal %d (SIG%s)", WTERMSIG(status),
		    sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(out, outlen, "stopped with wait status %#x", status);
}
