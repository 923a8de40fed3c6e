/*
 * worker_log.h - a worker's or a front's stderr as the supervisor reads it
 * (worker_log.c): split into lines at each newline or NUL byte, each cut to
 * WORKER_LOG_LINE_MAX bytes, at most WORKER_LOG_LINES_PER_SECOND a second,
 * and logged as "worker PID: text" (or "front PID: text") through
 * log_message, which escapes control bytes, backslashes and invalid UTF-8
 * (log.c).  Either process may be hostile: nothing it writes can start a
 * log line of its own or pick its level, except by carrying its own log
 * prefix ("luapool-worker[PID]: LEVEL: ", "luapool-front[PID]: LEVEL: "),
 * and then only with its own pid.  For the dispatcher thread (workers)
 * and the fronts' thread (fronts).
 */
#ifndef POOL_WORKER_LOG_H
#define POOL_WORKER_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"

#define WORKER_LOG_LINE_MAX		512u	/* bytes of a line kept; the rest is cut */
#define WORKER_LOG_LINES_PER_SECOND	50u	/* per worker; more are counted, not logged */

struct worker_log {
	const char *program;		/* the name in its own log prefix: "luapool-worker" */
	const char *noun;		/* what its lines are logged as: "worker" */
	char line[WORKER_LOG_LINE_MAX];
	size_t len;
	int cut;			/* the line being read passed WORKER_LOG_LINE_MAX */
	int64_t window_ns;		/* start of the current one-second window */
	unsigned lines;			/* logged in the window */
	unsigned dropped;		/* dropped in the window */
};

/* Forgets everything: for a new worker. */
void worker_log_reset(struct worker_log *log);
/* The same for a new front (luapool-front): its lines are "front PID: text",
 * and a level is believed after "luapool-front[PID]: ". */
void worker_log_reset_front(struct worker_log *log);

/* Reads what the non-blocking `fd` holds (a bounded amount per call) and
 * logs each complete line.  2: open, nothing more for now; 1: open, the
 * per-call budget was used (more may be there); 0: end of file; -1: read
 * error.  Either of the last two: the caller closes fd and calls
 * worker_log_finish. */
int worker_log_read(struct worker_log *log, int fd, pid_t pid, int64_t now_ns);

/* The worker is gone: logs its unfinished line and the lines dropped. */
void worker_log_finish(struct worker_log *log, pid_t pid);

/* The level a worker's line claims: when it starts with
 * "luapool-worker[PID]: LEVEL: " with this pid and a known level, that
 * level and *skip = the prefix's length; otherwise LOG_WARN and *skip = 0.
 * (A front's lines are read the same way with its own prefix.) */
enum log_level worker_log_claimed_level(const char *line, size_t len, pid_t pid,
    size_t *skip);

#endif
