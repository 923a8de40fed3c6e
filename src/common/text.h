/*
 * text.h - UTF-8 sequence length and hex digits (text.c).
 */
#ifndef COMMON_TEXT_H
#define COMMON_TEXT_H

#include <stddef.h>

/* Lower-case hexadecimal digits, for escapes. */
extern const char text_hex_digits[];

/*
 * Length (2 to 4) of the UTF-8 sequence starting at s, or 0 if it is not
 * valid: overlong forms, surrogates and code points above U+10FFFF are
 * refused (RFC 3629).  The lead byte is at least 0x80; `available` bytes
 * may be read.
 */
size_t text_utf8_length(const unsigned char *s, size_t available);

#endif
