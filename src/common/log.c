/*
 * log.c - stderr logging.  Each event is formatted into one buffer and
 * written with a single write(2) so lines from threads and worker processes
 * never interleave.
 *
 * Messages carry text from outside (paths, names, worker output): every
 * message is escaped here, so no caller can forget, and nothing from
 * outside can start a line of its own or smuggle terminal escapes.  Under
 * systemd (JOURNAL_STREAM names our stderr) lines start with their syslog
 * priority, so `journalctl -p err` works; log_format = json writes one
 * JSON object per line for log shippers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/text.h"

static volatile enum log_level current_level = LOG_INFO;
static const char *program_name = "luapoold";

static volatile enum log_format current_format = LOG_FORMAT_TEXT;
static volatile int journal_stream = -1;	/* -1: not looked at yet */
static volatile int raw_lines;		/* see log_set_raw */

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* syslog priorities: err, warning, info, debug */
static const char level_priorities[] = { '3', '4', '6', '7' };

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

void
log_set_raw(int raw)
{
	raw_lines = raw;
}

void
log_set_format(enum log_format format)
{
	current_format = format;
}

int
log_parse_format(const char *name, enum log_format *out)
{
	if (strcmp(name, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(name, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

/* Whether stderr is the journal's stream (JOURNAL_STREAM is "dev:ino"). */
static int
stderr_is_journal(void)
{
	if (journal_stream >= 0)
		return journal_stream;
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int yes = env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 && st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
	journal_stream = yes;
	return yes;
}

size_t
log_escape(char *out, size_t cap, const char *text, size_t len, int json)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t o = 0;
	if (cap == 0)
		return 0;
	for (size_t i = 0; i < len; ) {
		size_t seq = s[i] >= 0x80 ? text_utf8_length(s + i, len - i) : 0;
		char esc[8];
		size_t elen = 0;
		if (seq > 0) {
			if (o + seq >= cap)
				break;
			memcpy(out + o, s + i, seq);
			o += seq;
			i += seq;
			continue;
		}
		if (s[i] == '\\' || (json && s[i] == '"')) {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			elen = 2;
		} else if (s[i] < 0x20 || s[i] >= 0x7f) {
			/* \u00XX stays valid JSON; \xXX reads better in text */
			memcpy(esc, json ? "\\u00" : "\\x", json ? 4 : 2);
			elen = json ? 4 : 2;
			esc[elen++] = text_hex_digits[s[i] >> 4];
			esc[elen++] = text_hex_digits[s[i] & 15];
		} else {
			esc[0] = (char)s[i];
			elen = 1;
		}
		if (o + elen >= cap)
			break;
		memcpy(out + o, esc, elen);
		o += elen;
		i++;
	}
	out[o] = '\0';
	return o;
}

/* "2026-11-30T10:52:27.123Z" */
static void
format_time(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void
log_write(enum log_level level, const char *func, const char *fmt, va_list ap)
{
	char message[2048], escaped[3072], line[4096];
	int saved_errno = errno;
	int m = vsnprintf(message, sizeof(message), fmt, ap);
	size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(message) ? (size_t)m : sizeof(message) - 1;
	int json = current_format == LOG_FORMAT_JSON;
	if (raw_lines) {
		/* A worker: the supervisor escapes its lines; only keep one line. */
		for (size_t i = 0; i < mlen; i++)
			escaped[i] = message[i] == '\n' || message[i] == '\0' ? ' ' : message[i];
		escaped[mlen] = '\0';
	} else {
		log_escape(escaped, sizeof(escaped), message, mlen, json);
	}
	int n;
	if (json) {
		char when[40];
		format_time(when, sizeof(when));
		n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"program\":"
		    "\"%s\",\"pid\":%d,\"func\":\"%s\",\"message\":\"%s\"}", when,
		    level_names[level], program_name, (int)getpid(), func, escaped);
	} else {
		char priority[4] = "";
		if (stderr_is_journal())
			snprintf(priority, sizeof(priority), "<%c>", level_priorities[level]);
		n = snprintf(line, sizeof(line), "%s%s[%d]: %s: %s: %s", priority, program_name,
		    (int)getpid(), level_names[level], func, escaped);
	}
	size_t len = n < 0 ? 0 : (size_t)n;
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
