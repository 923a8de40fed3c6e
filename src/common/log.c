/*
 * log.c - stderr logging.  Each event is formatted into one buffer and
 * written with a single write(2) so lines from threads and worker processes
 * never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static volatile enum log_level current_level = LOG_INFO;
static const char *program_name = "luapoold";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level
log_get_level(void)
{
	return current_level;
}

int
log_parse_level(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_name(const char *name)
{
	program_name = name;
}

static void
log_write(enum log_level level, const char *func, const char *fmt, va_list ap)
{
	char line[2048];
	int saved_errno = errno;
	int n = snprintf(line, sizeof(line), "%s[%d]: %s: %s: ", program_name,
	    (int)getpid(), level_names[level], func);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t unused = write(STDERR_FILENO, line, len);
	(void)unused;
	errno = saved_errno;
}

void
log_message(enum log_level level, const char *func, const char *fmt, ...)
{
	if (level > current_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_write(level, func, fmt, ap);
	va_end(ap);
}

void
log_fatal(const char *func, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_write(LOG_ERROR, func, fmt, ap);
	va_end(ap);
	exit(1);
}
