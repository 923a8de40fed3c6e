/*
 * vm_json_scan.h - reading the tokens of JSON text without Lua, for the
 * direct decoder (vm_json_decode.c): string bytes and escapes, and the
 * grammar and exact value of numbers (RFC 8259, strictly).
 *
 * Every function reads only up to the end it is given and allocates
 * nothing.
 */
#ifndef VM_JSON_SCAN_H
#define VM_JSON_SCAN_H

#include <stdint.h>

/* The bytes of a string, by what the decoder does with them. */
enum vm_json_scan_class {
	VM_JSON_SCAN_PLAIN = 0,
	VM_JSON_SCAN_QUOTE = 1,
	VM_JSON_SCAN_BACKSLASH = 2,
	VM_JSON_SCAN_CONTROL = 3,
	VM_JSON_SCAN_HIGH = 4,
};

extern const unsigned char vm_json_scan_byte_class[256];

/* What the grammar pass learnt about a number: mantissa * 10^exponent
 * when `exact`, else strtod must read the text.  Start from all zeros
 * but exact = 1. */
struct vm_json_number {
	uint64_t mantissa;
	long exponent;
	int exact;
	int negative;
};

/* Skips the bytes a string holds as they are (VM_JSON_SCAN_PLAIN), up to
 * the first other one or end. */
const unsigned char *vm_json_scan_plain_bytes(const unsigned char *at,
    const unsigned char *end);

/* The closing quote of the string whose text starts at s, escapes
 * skipped, or end when there is none. */
const unsigned char *vm_json_scan_closing_quote(const unsigned char *s,
    const unsigned char *end);

/* Writes the character of the escape at s (before `close`, the closing
 * quote) as UTF-8 to *out and advances *out; returns the byte after the
 * escape, or NULL when it is not one (bad digits, a lone surrogate).  No
 * escape is shorter than the bytes it writes. */
const unsigned char *vm_json_scan_escape(const unsigned char *s, const unsigned char *close,
    unsigned char **out);

/* Checks the grammar of the number at `at` (RFC 8259: -?(0|[1-9][0-9]*)
 * (.[0-9]+)?([eE][+-]?[0-9]+)?), filling n.  Returns 0 with *after at its
 * end, or -1 with *after at the byte that breaks the grammar.  at < end. */
int vm_json_scan_number(const unsigned char *at, const unsigned char *end,
    struct vm_json_number *n, const unsigned char **after);

/* Sets *value to the double of n and returns 1 when it can be computed
 * exactly without strtod; returns 0 when strtod must read the text. */
int vm_json_scan_exact_value(const struct vm_json_number *n, double *value);

#endif
