/*
 * process.c - finding and starting the programs the supervisor runs
 * (luapool-worker, luapool-front) and describing how they exited.  Only
 * posix_spawn: the threaded supervisor is never forked without an exec.
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
#include "common/front_proto.h"
#include "common/log.h"
#include "pool/process.h"

#ifndef LUAPOOL_WORKER_INSTALL_PATH
#define LUAPOOL_WORKER_INSTALL_PATH "/usr/local/libexec/luapoold/luapool-worker"
#endif

#define WORKER_NAME	"luapool-worker"
#define FRONT_NAME	"luapool-front"

/* The highest descriptor number a child is given (stderr, FRAME_WORKER_FD,
 * FRONT_CONTROL_FD). */
#define HIGHEST_TARGET_FD	4

_Static_assert(FRAME_WORKER_FD <= HIGHEST_TARGET_FD && FRONT_CONTROL_FD <= HIGHEST_TARGET_FD,
    "HIGHEST_TARGET_FD must cover every target");

extern char **environ;

/* What a child gets besides its stderr pipe: its end of a fresh socketpair. */
struct spawn_plan {
	int socket_type;	/* SOCK_STREAM or SOCK_SEQPACKET */
	int socket_target;	/* the child's end lands on this descriptor */
};

static int
is_executable(const char *path)
{
	return path != NULL && path[0] != '\0' && access(path, X_OK) == 0;
}

static int
copy_path(const char *path, char *out, size_t outlen)
{
	if (strlen(path) >= outlen)
		return -1;
	strcpy(out, path);
	return 0;
}

/* `name` in the directory of `file`, if that is executable. */
static int
executable_beside(const char *file, const char *name, char *out, size_t outlen)
{
	const char *slash = strrchr(file, '/');
	if (slash == NULL)
		return -1;
	int m = snprintf(out, outlen, "%.*s/%s", (int)(slash - file), file, name);
	if (m < 0 || (size_t)m >= outlen)
		return -1;
	return is_executable(out) ? 0 : -1;
}

static int
executable_beside_self(const char *name, char *out, size_t outlen)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	return executable_beside(self, name, out, outlen);
}

/* A configured path must be executable; an environment variable too: a
 * typo there must not silently pick another program. */
static int
take_configured(const char *configured, const char *env_name, char *out, size_t outlen,
    int *decided)
{
	*decided = 1;
	if (configured != NULL && configured[0] != '\0')
		return is_executable(configured) ? copy_path(configured, out, outlen) : -1;
	const char *env = getenv(env_name);
	if (env != NULL && env[0] != '\0')
		return is_executable(env) ? copy_path(env, out, outlen) : -1;
	*decided = 0;
	return -1;
}

int
process_find_worker(const char *configured, char *out, size_t outlen)
{
	int decided;
	int rc = take_configured(configured, "LUAPOOL_WORKER", out, outlen, &decided);
	if (decided)
		return rc;
	if (is_executable(LUAPOOL_WORKER_INSTALL_PATH))
		return copy_path(LUAPOOL_WORKER_INSTALL_PATH, out, outlen);
	return executable_beside_self(WORKER_NAME, out, outlen);
}

int
process_find_front(const char *configured, const char *worker_path, char *out, size_t outlen)
{
	int decided;
	int rc = take_configured(configured, "LUAPOOL_FRONT", out, outlen, &decided);
	if (decided)
		return rc;
#ifdef LUAPOOL_FRONT_INSTALL_PATH
	if (is_executable(LUAPOOL_FRONT_INSTALL_PATH))
		return copy_path(LUAPOOL_FRONT_INSTALL_PATH, out, outlen);
#else
	/* Installed beside the worker, so it moves with PREFIX as the worker does. */
	if (executable_beside(LUAPOOL_WORKER_INSTALL_PATH, FRONT_NAME, out, outlen) == 0)
		return 0;
#endif
	if (executable_beside_self(FRONT_NAME, out, outlen) == 0)
		return 0;
	if (worker_path != NULL && executable_beside(worker_path, FRONT_NAME, out, outlen) == 0)
		return 0;
	return -1;
}

/* The file actions dup2 each source onto its target in turn: a source
 * numbered like a later target would be overwritten before its turn.  So
 * every source gets a number above all targets; *fd is replaced. */
static int
lift_above_targets(int *fd)
{
	if (*fd > HIGHEST_TARGET_FD)
		return 0;
	int copy = fcntl(*fd, F_DUPFD_CLOEXEC, HIGHEST_TARGET_FD + 1);
	if (copy == -1) {
		log_error("fcntl F_DUPFD_CLOEXEC: %s", strerror(errno));
		return -1;
	}
	close(*fd);
	*fd = copy;
	return 0;
}

static void
set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void
close_if_open(int fd)
{
	if (fd != -1)
		close(fd);
}

/*
 * Starts `path` as plan says, stderr a pipe to us.  Returns the pid, our
 * end of the socketpair in *fd and the read end of the pipe in *log_fd
 * (both non-blocking and close-on-exec), or -1.
 */
static pid_t
spawn_child(const char *path, char *const argv[], const struct spawn_plan *plan, int *fd,
    int *log_fd)
{
	int sv[2] = { -1, -1 };
	int lp[2] = { -1, -1 };
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	int have_actions = 0, have_attr = 0;
	pid_t pid = -1;

	if (socketpair(AF_UNIX, plan->socket_type | SOCK_CLOEXEC, 0, sv) == -1) {
		log_error("socketpair: %s", strerror(errno));
		goto fail;
	}
	if (pipe2(lp, O_CLOEXEC) == -1) {
		log_error("pipe2: %s", strerror(errno));
		goto fail;
	}
	if (lift_above_targets(&sv[1]) == -1 || lift_above_targets(&lp[1]) == -1)
		goto fail;
	if (posix_spawn_file_actions_init(&actions) != 0)
		goto fail;
	have_actions = 1;
	/* The child's stderr is a pipe to us: its lines reach the log only
	 * through worker_log.c, escaped. */
	if (posix_spawn_file_actions_adddup2(&actions, lp[1], STDERR_FILENO) != 0)
		goto fail;
	/* dup2 clears close-on-exec on the copy; every other descriptor of
	 * ours is close-on-exec, and the child closes any stray one. */
	if (posix_spawn_file_actions_adddup2(&actions, sv[1], plan->socket_target) != 0)
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
	 * children, whose fate only the supervisor decides. */
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
	close(lp[1]);
	set_nonblocking(sv[0]);
	set_nonblocking(lp[0]);
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
	close_if_open(sv[0]);
	close_if_open(sv[1]);
	close_if_open(lp[0]);
	close_if_open(lp[1]);
	return -1;
}

pid_t
process_spawn_worker(const char *path, char *const argv[], int *fd, int *log_fd)
{
	const struct spawn_plan plan = {
		.socket_type = SOCK_STREAM, .socket_target = FRAME_WORKER_FD,
	};
	return spawn_child(path, argv, &plan, fd, log_fd);
}

pid_t
process_spawn_front(const char *path, char *const argv[], int *control_fd, int *log_fd)
{
	const struct spawn_plan plan = {
		.socket_type = SOCK_SEQPACKET, .socket_target = FRONT_CONTROL_FD,
	};
	return spawn_child(path, argv, &plan, control_fd, log_fd);
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
