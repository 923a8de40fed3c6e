/*
 * base64.h - RFC 4648 base64, both alphabets.
 * Decoding accepts '+/' and '-_' (even mixed), with or without '=' padding,
 * and skips ASCII whitespace (line breaks as base64(1) prints them).
 */
#ifndef BASE64_H
#define BASE64_H

#include <stddef.h>

/* Upper bound of the decoded size of `len` input bytes. */
size_t base64_decoded_max(size_t len);
/* Decodes into out (at least base64_decoded_max(len) bytes).  Returns the
 * decoded length, or -1 for a character outside the alphabets, padding in
 * the middle, or a dangling single character. */
long base64_decode(const char *in, size_t len, unsigned char *out);
/* Size of the encoding of `len` bytes with padding, without the NUL. */
size_t base64_encoded_size(size_t len);
/* Standard alphabet with padding; writes a NUL after; returns the length. */
size_t base64_encode(const void *in, size_t len, char *out);

#endif
