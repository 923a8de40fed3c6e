/*
 * server.c - the real daemon for the integration tests (see server.h).
 * Every wait here is a poll with a deadline; nothing sleeps and hopes.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/server.h"
#include "support/support.h"

#define POLL_STEP_US 5000
#define READY_TEXT "listening on 127.0.0.1:"

static const char *const sanitizer_marks[] = {
	"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: ",
};

const char *
server_daemon_path(void)
{
	const char *p = getenv("LUAPOOLD");
	return p && *p ? p : "build/luapoold";
}

const char *
server_worker_path(void)
{
	const char *p = getenv("LUAPOOL_WORKER");
	return p && *p ? p : "build/luapool-worker";
}

char *
server_log(const struct server *s)
{
	char *text = s->log_path[0] ? support_read_file(s->log_path, NULL) : NULL;
	return text ? text : strdup("");
}

static void
set_error(char *err, size_t errlen, const struct server *s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
set_error(char *err, size_t errlen, const struct server *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < errlen) {
		char *log = server_log(s);
		snprintf(err + n, errlen - (size_t)n, "; its log:\n%s", log);
		free(log);
	}
}

/* In the child: never returns. */
static void
exec_daemon(pid_t parent, int log_fd, char **argv)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(126);
	int null = open("/dev/null", O_RDWR);
	if (null == -1 || dup2(null, 0) == -1 || dup2(null, 1) == -1 || dup2(log_fd, 2) == -1)
		_exit(126);
	closefrom(3);
	execv(argv[0], argv);
	_exit(127);
}

static int
wait_ready(struct server *s, char *err, size_t errlen)
{
	int64_t deadline = support_now_ms() + SERVER_START_TIMEOUT_MS;
	for (;;) {
		char *log = server_log(s);
		const char *ready = strstr(log, READY_TEXT);
		if (ready) {
			s->port = (unsigned)strtoul(ready + strlen(READY_TEXT), NULL, 10);
			free(log);
			if (s->port == 0)
				set_error(err, errlen, s, "no port in the ready line");
			return s->port ? 0 : -1;
		}
		free(log);
		int status;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			set_error(err, errlen, s, "luapoold exited (wait status 0x%x) before it "
			    "listened", status);
			return -1;
		}
		if (support_now_ms() > deadline) {
			set_error(err, errlen, s, "luapoold did not listen within %d ms",
			    SERVER_START_TIMEOUT_MS);
			return -1;
		}
		usleep(POLL_STEP_US);
	}
}

int
server_start(struct server *s, const char *const *options, char *err, size_t errlen)
{
	const char *fixed[] = {
		server_daemon_path(), "--listen", "127.0.0.1:0", "--worker-path",
		server_worker_path(), "--access-log", "no",
	};
	char *argv[sizeof(fixed) / sizeof(fixed[0]) + SERVER_MAX_OPTIONS + 1];
	size_t argc = 0;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		argv[argc++] = strdup(fixed[i]);
	for (size_t i = 0; options && options[i]; i++) {
		if (i == SERVER_MAX_OPTIONS) {
			snprintf(err, errlen, "more than %d options", SERVER_MAX_OPTIONS);
			goto done;
		}
		argv[argc++] = strdup(options[i]);
	}
	argv[argc] = NULL;
	snprintf(s->log_path, sizeof(s->log_path), "/tmp/luapoold-test-XXXXXX.log");
	int log_fd = mkstemps(s->log_path, 4);
	if (log_fd == -1) {
		s->log_path[0] = '\0';
		snprintf(err, errlen, "cannot create a log file in /tmp");
		goto done;
	}
	pid_t parent = getpid();
	s->pid = fork();
	if (s->pid == 0)
		exec_daemon(parent, log_fd, argv);
	close(log_fd);
	if (s->pid == -1) {
		s->pid = 0;
		snprintf(err, errlen, "fork failed");
		goto done;
	}
	rc = wait_ready(s, err, errlen);
	if (rc == -1 && s->pid > 0) {
		int status;
		server_wait_exit(s, 0, &status);
	}
done:
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

int
server_wait_exit(struct server *s, int timeout_ms, int *status)
{
	if (s->pid <= 0)
		return -1;
	int rc = support_wait_exit(s->pid, timeout_ms, status);
	if (rc == -1) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, status, 0);
	}
	s->pid = 0;
	return rc;
}

int
server_stop(struct server *s, int *status)
{
	if (s->pid <= 0 || kill(s->pid, SIGTERM) == -1)
		return -1;
	return server_wait_exit(s, SERVER_STOP_TIMEOUT_MS, status);
}

char *
server_sanitizer_report(const struct server *s)
{
	char *log = server_log(s);
	const char *first = NULL;
	for (size_t i = 0; i < sizeof(sanitizer_marks) / sizeof(sanitizer_marks[0]); i++) {
		const char *at = strstr(log, sanitizer_marks[i]);
		if (at && (first == NULL || at < first))
			first = at;
	}
	char *excerpt = NULL;
	if (first) {
		const char *from = first - log > 200 ? first - 200 : log;
		excerpt = strndup(from, 4000);
	}
	free(log);
	return excerpt;
}

void
server_release(struct server *s)
{
	int status;
	if (s->pid > 0)
		server_wait_exit(s, 0, &status);
	if (s->log_path[0])
		unlink(s->log_path);
	s->log_path[0] = '\0';
}
