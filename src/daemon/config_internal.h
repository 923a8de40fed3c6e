/*
 * config_internal.h - what the configuration's own files share and nobody
 * else may use: the table of keys (config_keys.c) and the per-type value
 * parsing behind it.  config.c, config_file.c and config_args.c read the
 * table through these declarations; config_keys.c calls none of them.
 * Never include this outside src/daemon/config*.c: the public API is
 * config.h.
 */
#ifndef CONFIG_INTERNAL_H
#define CONFIG_INTERNAL_H

#include <stddef.h>

struct config;

#define PROGRAM			"luapoold"

enum key_type {
	TYPE_UNSIGNED,		/* unsigned: decimal, 0..UINT_MAX */
	TYPE_SIZE,		/* size_t: bytes, or with a k/M/G suffix (KiB...) */
	TYPE_BOOL,		/* int 0/1: yes/no, true/false, on/off, 1/0 */
	TYPE_PATH,		/* char *: a file or directory; empty: unset */
	TYPE_LISTEN,		/* char *: host:port, [v6]:port or :port */
	TYPE_LOG_LEVEL,		/* char *: error warn info debug */
	TYPE_BYTECODE,		/* int: enum config_bytecode, off verified signed */
	TYPE_NAME,		/* char *: a name (a user); never empty */
	TYPE_LOG_FORMAT		/* int: enum config_log_format, text json */
};

struct config_key {
	const char *name;	/* the file's spelling; options use '-' for '_' */
	enum key_type type;
	size_t offset;		/* of the field in struct config */
	const char *help;	/* one line for --help */
	int alias;		/* another spelling of the key before it (same
				 * field): not written by config_print, and a
				 * file may set only one of the two */
};

/* Entries of config_keys; config_keys.c fails to compile when the table
 * has another length, so a new key updates this count too. */
#define CONFIG_KEY_COUNT	38

/* Every key, in the order of struct config (and of conf/luapoold.conf). */
extern const struct config_key config_keys[];

/* Fills err and returns -1, so that errors read `return config_keys_fail(...)`. */
int config_keys_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The key called `name` (len bytes, not necessarily NUL-terminated), where
 * `separator` stands for each '_' of the key: '_' in the file, '-' on the
 * command line.  NULL when there is none.
 */
const struct config_key *config_keys_find(const char *name, size_t len,
    char separator);

/* Sets one key from text; err gets the problem without the key's name. */
int config_keys_set(struct config *cfg, const struct config_key *key,
    const char *value, char *err, size_t errlen);

/* Replaces *field with a copy of value (NULL: unset); the old string is
 * freed.  -1 with err filled when out of memory. */
int config_keys_set_string(char **field, const char *value, char *err,
    size_t errlen);

/* The value of key in cfg as the file would spell it: either the string
 * field itself, or buf; NULL when the key is unset. */
const char *config_keys_value_text(const struct config *cfg,
    const struct config_key *key, char *buf, size_t len);

/* The key's option name, --without-the-dashes: '_' becomes '-'
 * (config_usage.c). */
void config_option_name(const struct config_key *key, char *buf, size_t len);

/* The key that owns key's field: key itself, or for an alias the key
 * it spells differently. */
const struct config_key *config_keys_owner(const struct config_key *key);

/* The lower-case spelling of a log level, or NULL. */
const char *config_keys_canonical_log_level(const char *value);

#endif
