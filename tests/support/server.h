/*
 * server.h - runs the real luapoold for the integration tests: starts
 * $LUAPOOLD on 127.0.0.1 port 0 with $LUAPOOL_WORKER, its stderr in a
 * temporary file, waits (bounded) for its "listening on" line, stops it
 * with SIGTERM, and scans its log for sanitizer reports.  No Check here:
 * functions return -1 with a message and the suites assert.
 *
 * The daemon gets PR_SET_PDEATHSIG(SIGKILL), so a test process that dies
 * on a failed assertion takes its daemon (and that one's workers) along.
 */
#ifndef SERVER_H
#define SERVER_H

#include <stddef.h>
#include <sys/types.h>

#define SERVER_START_TIMEOUT_MS 10000
#define SERVER_STOP_TIMEOUT_MS 10000
#define SERVER_MAX_OPTIONS 32

struct server {
	pid_t pid;			/* 0: not running */
	unsigned port;
	char log_path[64];		/* "": none */
};

/* $LUAPOOLD and $LUAPOOL_WORKER, or build/luapoold and build/luapool-worker. */
const char *server_daemon_path(void);
const char *server_worker_path(void);

/*
 * Starts the daemon with `--listen 127.0.0.1:0 --worker-path W
 * --access-log no` and then `options` (NULL-terminated, may be NULL), and
 * waits up to SERVER_START_TIMEOUT_MS for it to listen.  0, or -1 with err
 * filled (the daemon's log included); then nothing is left running but the
 * log file stays for server_release.
 */
int server_start(struct server *s, const char *const *options, char *err, size_t errlen);

/* Waits up to timeout_ms for the daemon to exit; then SIGKILLs it.  0 with
 * *status (from waitpid) when it exited in time, -1 when it had to be
 * killed.  Either way s->pid is 0 afterwards. */
int server_wait_exit(struct server *s, int timeout_ms, int *status);

/* SIGTERM, then server_wait_exit(SERVER_STOP_TIMEOUT_MS). */
int server_stop(struct server *s, int *status);

/* The daemon's stderr so far (malloc'd, caller frees), "" if none. */
char *server_log(const struct server *s);

/* An excerpt of the first sanitizer report in the log (malloc'd, caller
 * frees), or NULL if the log is clean. */
char *server_sanitizer_report(const struct server *s);

/* Kills a daemon still running, and removes the log file. */
void server_release(struct server *s);

#endif
