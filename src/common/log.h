/*
 * log.h - one line per event on stderr, with a level and the function name.
 * journald adds the time; we add "luapoold[pid]: level: func: ".
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error" "warn" "info" "debug"; returns -1 for anything else. */
int log_parse_level(const char *name, enum log_level *out);
void log_set_name(const char *name);
void log_set_format(enum log_format format);
/* 1: messages are not escaped, only kept on one line: for a worker, whose
 * stderr the supervisor reads and escapes (escaping twice would double
 * every backslash). */
void log_set_raw(int raw);
/* "text" "json"; returns -1 for anything else. */
int log_parse_format(const char *name, enum log_format *out);
/* Copies len bytes of text into out (cap bytes, NUL-terminated) with every
 * control byte, backslash and invalid UTF-8 byte escaped (\xNN, or \u00NN
 * and \" when json); valid UTF-8 passes.  Stops at a whole character when
 * out is full.  Returns the length written.  Log messages are escaped by
 * log_message itself; this is for callers that build other lines. */
size_t log_escape(char *out, size_t cap, const char *text, size_t len, int json);
void log_message(enum log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void log_fatal(const char *func, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_message(LOG_ERROR, __func__, __VA_ARGS__)
#define log_warn(...)  log_message(LOG_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_message(LOG_INFO, __func__, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_DEBUG) \
	log_message(LOG_DEBUG, __func__, __VA_ARGS__); } while (0)
#define fatal(...)     log_fatal(__func__, __VA_ARGS__)

#endif
