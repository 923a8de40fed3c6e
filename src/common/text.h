/*
 * text.h - UTF-8 sequence length, hex digits, and the small string checks
 * the servers share (text.c).
 */
#ifndef COMMON_TEXT_H
#define COMMON_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Lower-case hexadecimal digits, for escapes. */
extern const char text_hex_digits[];

/*
 * Length (2 to 4) of the UTF-8 sequence starting at s, or 0 if it is not
 * valid: overlong forms, surrogates and code points above U+10FFFF are
 * refused (RFC 3629).  The lead byte is at least 0x80; `available` bytes
 * may be read.
 */
size_t text_utf8_length(const unsigned char *s, size_t available);

/* Whether s is 1 to max bytes of visible ASCII (0x21..0x7e). */
int text_is_visible(const char *s, size_t max);
/* Whether given equals expected, in a time that does not depend on where
 * they differ (auth tokens). */
int text_secret_equal(const char *given, const char *expected);
/* splitmix64's finalizer: a bijection, so ids made from a counter never
 * repeat before 2^64, and neighbours do not look alike. */
uint64_t text_mix64(uint64_t x);
/* Appends ms with three decimals ("12.345"), in integers: printf's
 * floating-point path cost about 1 % of an event loop's time on every
 * answer.  At most 18 bytes; returns the end.  No NUL. */
char *text_put_milliseconds(char *at, double ms);
#endif
