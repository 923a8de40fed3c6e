/*
 * worker_log.c - turning what a worker or a front writes on its stderr into
 * log lines of the supervisor (see worker_log.h).  The process is
 * untrusted: lines are cut and rate-limited, a level is believed only when
 * the line carries the process's own prefix (its program name and pid),
 * and every line goes through log_message, which escapes what could end a
 * line or drive a terminal (one escaping layer: log.c's).  Never blocks,
 * never writes anything but log lines.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pool/worker_log.h"

#define WINDOW_NS	1000000000LL
#define READS_PER_CALL	16	/* 64 KiB per event: a chatty worker cannot stall the dispatcher */
/* The names the processes give log_set_name (vm/worker_main.c, front/main.c). */
#define WORKER_PROGRAM	"luapool-worker"
#define FRONT_PROGRAM	"luapool-front"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
worker_log_reset(struct worker_log *log)
{
	memset(log, 0, sizeof(*log));
	log->program = WORKER_PROGRAM;
	log->noun = "worker";
}

void
worker_log_reset_front(struct worker_log *log)
{
	worker_log_reset(log);
	log->program = FRONT_PROGRAM;
	log->noun = "front";
}

/* The level after "program[PID]: ", as worker_log_claimed_level says. */
static enum log_level
claimed_level(const char *program, const char *line, size_t len, pid_t pid, size_t *skip)
{
	char prefix[64];
	*skip = 0;
	int n = snprintf(prefix, sizeof(prefix), "%s[%d]: ", program, (int)pid);
	if (n < 0 || (size_t)n >= sizeof(prefix) || (size_t)n > len ||
	    memcmp(line, prefix, (size_t)n) != 0)
		return LOG_WARN;
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		size_t name_len = strlen(level_names[i]);
		if ((size_t)n + name_len + 2 <= len &&
		    memcmp(line + n, level_names[i], name_len) == 0 &&
		    memcmp(line + n + name_len, ": ", 2) == 0) {
			*skip = (size_t)n + name_len + 2;
			return (enum log_level)i;
		}
	}
	return LOG_WARN;
}

enum log_level
worker_log_claimed_level(const char *line, size_t len, pid_t pid, size_t *skip)
{
	return claimed_level(WORKER_PROGRAM, line, len, pid, skip);
}

static void
report_dropped(struct worker_log *log, pid_t pid)
{
	if (log->dropped)
		log_warn("%s %d: %u log lines dropped", log->noun, (int)pid, log->dropped);
	log->dropped = 0;
}

static void
emit_line(struct worker_log *log, pid_t pid, int64_t now_ns)
{
	if (now_ns - log->window_ns >= WINDOW_NS) {
		report_dropped(log, pid);
		log->window_ns = now_ns;
		log->lines = 0;
	}
	if (log->lines >= WORKER_LOG_LINES_PER_SECOND) {
		log->dropped++;
		return;
	}
	log->lines++;
	size_t skip;
	enum log_level level = claimed_level(log->program, log->line, log->len, pid, &skip);
	/* The line holds no NUL (one ends a line), so %.*s prints all of it. */
	log_message(level, __func__, "%s %d: %.*s%s", log->noun, (int)pid,
	    (int)(log->len - skip), log->line + skip, log->cut ? " [line cut]" : "");
}

/* The first newline or NUL byte of p[0..n), or NULL. */
static const char *
line_end(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n' || p[i] == '\0')
			return p + i;
	return NULL;
}

/* Adds bytes to the line being read; logs it at each newline or NUL. */
static void
take_bytes(struct worker_log *log, const char *p, size_t n, pid_t pid, int64_t now_ns)
{
	while (n > 0) {
		const char *nl = line_end(p, n);
		size_t part = nl ? (size_t)(nl - p) : n;
		size_t room = sizeof(log->line) - log->len;
		size_t keep = part < room ? part : room;
		memcpy(log->line + log->len, p, keep);
		log->len += keep;
		if (keep < part)
			log->cut = 1;
		if (nl == NULL)
			return;
		emit_line(log, pid, now_ns);
		log->len = 0;
		log->cut = 0;
		p += part + 1;
		n -= part + 1;
	}
}

int
worker_log_read(struct worker_log *log, int fd, pid_t pid, int64_t now_ns)
{
	char chunk[4096];
	for (int i = 0; i < READS_PER_CALL; i++) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 2 : -1;
		}
		take_bytes(log, chunk, (size_t)n, pid, now_ns);
	}
	return 1;
}

void
worker_log_finish(struct worker_log *log, pid_t pid)
{
	if (log->len || log->cut) {
		/* The last words of a worker are worth the rate limit's exception. */
		if (log->lines >= WORKER_LOG_LINES_PER_SECOND)
			log->lines = WORKER_LOG_LINES_PER_SECOND - 1;
		emit_line(log, pid, log->window_ns);
	}
	report_dropped(log, pid);
	log->len = 0;
	log->cut = 0;
}
