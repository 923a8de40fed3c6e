/*
 * jsonscan.h - finding one top-level member of a JSON request without
 * parsing the rest.  The supervisor uses it to learn a job's timeout_ms
 * (so queued jobs expire and the backstop fires on time), and, with
 * bytecode = signed, to find the "bytecode" it must check, while the
 * context, which may be large, is only skipped over, never parsed.
 */
#ifndef JSONSCAN_H
#define JSONSCAN_H

#include <stddef.h>

enum jsonscan_result {
	JSONSCAN_FOUND = 1,	/* *out is the member's value */
	JSONSCAN_ABSENT = 0,	/* the object certainly has no such member */
	JSONSCAN_UNSURE = -1	/* not an object, malformed, escaped keys, not an integer */
};

/* Looks for top-level "timeout_ms" holding an unsigned integer.  `text`
 * must be NUL-terminated at text[len]. */
enum jsonscan_result jsonscan_timeout_ms(const char *text, size_t len, unsigned long *out);

/* Looks for the top-level member `key` (written without escapes): on
 * FOUND, [*value, *value + *value_len) is its value as written (a string
 * keeps its quotes and escapes).  A repeated key is UNSURE.  `text` must
 * be NUL-terminated at text[len]. */
enum jsonscan_result jsonscan_member(const char *text, size_t len, const char *key,
    const char **value, size_t *value_len);

#endif
