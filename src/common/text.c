/*
 * text.c - the byte-level facts about text that several layers need: where
 * a valid UTF-8 character ends, and hexadecimal digits for escapes.  One
 * copy for the log, the problem bodies and the worker's JSON codecs.
 * Allocates nothing, knows nothing of Lua or HTTP.
 */
#include <string.h>

#include "common/text.h"

const char text_hex_digits[] = "0123456789abcdef";

size_t
text_utf8_length(const unsigned char *s, size_t available)
{
	unsigned char low = 0x80, high = 0xbf;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			low = 0xa0;
		else if (s[0] == 0xed)
			high = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			low = 0x90;
		else if (s[0] == 0xf4)
			high = 0x8f;
	} else {
		return 0;
	}
	if (available < len || s[1] < low || s[1] > high)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

int
text_is_visible(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++)
		if (n >= max || s[n] < 0x21 || s[n] > 0x7e)
			return 0;
	return n > 0;
}

int
text_secret_equal(const char *given, const char *expected)
{
	size_t a = strlen(given), b = strlen(expected);
	unsigned char diff = a != b;
	for (size_t i = 0; i < b; i++)
		diff |= (unsigned char)(given[i < a ? i : 0] ^ expected[i]);
	return diff == 0;
}

uint64_t
text_mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

char *
text_put_milliseconds(char *at, double ms)
{
	if (!(ms < 1e12))
		ms = ms > 0 ? 1e12 : 0;	/* NaN, or past any deadline */
	unsigned long long us = ms > 0 ? (unsigned long long)(ms * 1000.0 + 0.5) : 0;
	char digits[24];
	int n = 0;
	do {
		digits[n++] = (char)('0' + us % 10);
		us /= 10;
	} while (us > 0 || n < 4);
	while (n > 3)
		*at++ = digits[--n];
	*at++ = '.';
	while (n > 0)
		*at++ = digits[--n];
	return at;
}
