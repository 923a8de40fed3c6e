/*
 * config_support.h - helpers shared by the configuration suites
 * (test_config, test_config_file, test_config_args): capturing what
 * config_* prints, temporary files, and comparing two configurations.
 * Each helper fails the running Check test itself; none of them may be
 * called outside a test.
 */
#ifndef CONFIG_SUPPORT_H
#define CONFIG_SUPPORT_H

#include <stdio.h>

#include "daemon/config.h"

struct config_support_capture {
	FILE *stream;
	int saved_fd;
	char path[64];
	char text[32768];
};

/* Sends everything written to `stream` (stdout or stderr) to a file until
 * config_support_capture_end, which returns it (kept in c->text). */
void config_support_capture_start(struct config_support_capture *c,
    FILE *stream);
const char *config_support_capture_end(struct config_support_capture *c);

/* Writes text to a new file in /tmp; path must hold 64 bytes.  The caller
 * removes the file. */
void config_support_write_temp_file(char *path, const char *text);

/* Asserts that every key field of a and b is the same. */
void config_support_assert_same_config(const struct config *a,
    const struct config *b);

/* Expects config_set to succeed. */
void config_support_set_ok(struct config *cfg, const char *key,
    const char *value);

#endif
