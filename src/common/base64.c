/*
 * base64.c - RFC 4648 base64 for bytecode carried in JSON requests and
 * replies.  Decoding is lenient about form (either alphabet, padding or
 * not, line breaks) but never about content: a byte outside the alphabets,
 * data after padding or a lone trailing character is an error, never
 * silently skipped.
 */
#include <stddef.h>

#include "common/base64.h"

/* Values of the decoding table besides 0..63. */
#define XX	255	/* not base64 */
#define WS	64	/* whitespace, skipped */
#define EQ	65	/* padding */

static const char encoding_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Both alphabets: '+' and '-' are 62, '/' and '_' are 63. */
static const unsigned char decoding_table[256] = {
	XX, XX, XX, XX, XX, XX, XX, XX, XX, WS, WS, XX, XX, WS, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	WS, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, 62, XX, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, EQ, XX, XX,
	XX, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, 63,
	XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};

size_t
base64_decoded_max(size_t len)
{
	/* Every 4 characters give 3 bytes; a partial group of r characters
	 * gives r - 1 bytes, fewer than r. */
	return len / 4 * 3 + len % 4;
}

/*
 * Writes the bytes of the last, incomplete group of `count` characters
 * (held in the low bits of `bits`) and checks its padding: 2 characters
 * take at most "==", 3 at most "=", a complete group none.  Returns the
 * number of bytes written or -1.
 */
static int
finish_partial_group(unsigned long bits, unsigned count, unsigned padding,
    unsigned char *out)
{
	switch (count) {
	case 0:
		return padding == 0 ? 0 : -1;
	case 2:
		out[0] = (unsigned char)(bits >> 4);
		return 1;
	case 3:
		if (padding > 1)
			return -1;
		out[0] = (unsigned char)(bits >> 10);
		out[1] = (unsigned char)(bits >> 2);
		return 2;
	default:
		return -1;	/* a single character carries less than a byte */
	}
}

long
base64_decode(const char *in, size_t len, unsigned char *out)
{
	unsigned long bits = 0;
	unsigned count = 0, padding = 0;
	size_t written = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char value = decoding_table[(unsigned char)in[i]];
		if (value == WS)
			continue;
		if (value == EQ) {
			if (++padding > 2)
				return -1;
			continue;
		}
		if (value == XX || padding > 0)
			return -1;
		bits = bits << 6 | value;
		if (++count == 4) {
			out[written++] = (unsigned char)(bits >> 16);
			out[written++] = (unsigned char)(bits >> 8);
			out[written++] = (unsigned char)bits;
			bits = 0;
			count = 0;
		}
	}
	int tail = finish_partial_group(bits, count, padding, out + written);
	if (tail == -1)
		return -1;
	return (long)(written + (size_t)tail);
}

size_t
base64_encoded_size(size_t len)
{
	return len / 3 * 4 + (len % 3 ? 4 : 0);
}

size_t
base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *bytes = in;
	size_t i = 0, written = 0;

	for (; i + 3 <= len; i += 3) {
		unsigned long bits = (unsigned long)bytes[i] << 16 |
		    (unsigned long)bytes[i + 1] << 8 | bytes[i + 2];
		out[written++] = encoding_alphabet[bits >> 18 & 63];
		out[written++] = encoding_alphabet[bits >> 12 & 63];
		out[written++] = encoding_alphabet[bits >> 6 & 63];
		out[written++] = encoding_alphabet[bits & 63];
	}
	if (i < len) {
		unsigned long bits = (unsigned long)bytes[i] << 16;
		if (i + 1 < len)
			bits |= (unsigned long)bytes[i + 1] << 8;
		out[written++] = encoding_alphabet[bits >> 18 & 63];
		out[written++] = encoding_alphabet[bits >> 12 & 63];
		out[written++] = i + 1 < len ? encoding_alphabet[bits >> 6 & 63] : '=';
		out[written++] = '=';
	}
	out[written] = '\0';
	return written;
}
