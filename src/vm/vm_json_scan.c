/*
 * vm_json_scan.c - the pieces of JSON text the direct decoder
 * (vm_json_decode.c) reads without Lua: what each byte of a string is, runs
 * of plain bytes, escapes, and the grammar and exact value of numbers.
 *
 * Pure functions over bytes: it must never allocate, read past the end it
 * is given, or accept what RFC 8259 does not (the decoder's strictness
 * rests on it).
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "vm/vm_json_scan.h"

/* Below this a decimal mantissa is an exact double. */
#define EXACT_MANTISSA_LIMIT	((uint64_t)1 << 53)

/* A mantissa above this could overflow when one more digit comes. */
#define MANTISSA_DIGIT_LIMIT	((UINT64_MAX - 9) / 10)

/* Exponents are read up to about this, which keeps their sum with the
 * count of fraction digits in range; beyond it strtod reads the number. */
#define EXPONENT_LIMIT		100000

/* What each byte of a string is, by enum vm_json_scan_class. */
const unsigned char vm_json_scan_byte_class[256] = {
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

/* Exact powers of ten as doubles: 10^22 is the last one. */
static const double powers_of_ten[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define EXACT_POWER_LIMIT	((int)(sizeof(powers_of_ten) / sizeof(powers_of_ten[0])) - 1)

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Strings ---------------------------------------------------------------- */

/* Reads four hexadecimal digits; -1 if one is not. */
static long
read_hex4(const unsigned char *s)
{
	long value = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];
		int digit;
		if (c >= '0' && c <= '9')
			digit = c - '0';
		else if (c >= 'a' && c <= 'f')
			digit = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			digit = c - 'A' + 10;
		else
			return -1;
		value = value * 16 + digit;
	}
	return value;
}

static unsigned char *
put_utf8(unsigned char *out, unsigned long code)
{
	if (code < 0x80) {
		*out++ = (unsigned char)code;
	} else if (code < 0x800) {
		*out++ = (unsigned char)(0xc0 | code >> 6);
		*out++ = (unsigned char)(0x80 | (code & 0x3f));
	} else if (code < 0x10000) {
		*out++ = (unsigned char)(0xe0 | code >> 12);
		*out++ = (unsigned char)(0x80 | (code >> 6 & 0x3f));
		*out++ = (unsigned char)(0x80 | (code & 0x3f));
	} else {
		*out++ = (unsigned char)(0xf0 | code >> 18);
		*out++ = (unsigned char)(0x80 | (code >> 12 & 0x3f));
		*out++ = (unsigned char)(0x80 | (code >> 6 & 0x3f));
		*out++ = (unsigned char)(0x80 | (code & 0x3f));
	}
	return out;
}

/*
 * Decodes the \u escape at s (before `close`, the closing quote): one code
 * unit, or a surrogate pair.  Returns the code point and sets *consumed, or
 * -1 for bad digits or a lone surrogate.
 */
static long
read_unicode_escape(const unsigned char *s, const unsigned char *close, size_t *consumed)
{
	long first, second;

	if (close - s < 6 || (first = read_hex4(s + 2)) == -1)
		return -1;
	if (first >= 0xdc00 && first <= 0xdfff)
		return -1;
	if (first < 0xd800 || first > 0xdbff) {
		*consumed = 6;
		return first;
	}
	if (close - s < 12 || s[6] != '\\' || s[7] != 'u')
		return -1;
	second = read_hex4(s + 8);
	if (second < 0xdc00 || second > 0xdfff)
		return -1;
	*consumed = 12;
	return 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
}

const unsigned char *
vm_json_scan_escape(const unsigned char *s, const unsigned char *close, unsigned char **out)
{
	static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	size_t consumed;
	long code;

	if (close - s < 2)
		return NULL;
	if (s[1] == 'u') {
		if ((code = read_unicode_escape(s, close, &consumed)) == -1)
			return NULL;
		*out = put_utf8(*out, (unsigned long)code);
		return s + consumed;
	}
	for (const char *pair = simple; *pair != '\0'; pair += 2) {
		if ((unsigned char)pair[0] == s[1]) {
			*(*out)++ = (unsigned char)pair[1];
			return s + 2;
		}
	}
	return NULL;
}

const unsigned char *
vm_json_scan_closing_quote(const unsigned char *s, const unsigned char *end)
{
	while (s < end && *s != '"') {
		if (*s == '\\' && end - s < 2)
			return end;
		s += *s == '\\' ? 2 : 1;
	}
	return s;
}

/*
 * The bytes of x that are below 0x20, a quote, a backslash or above 0x7f,
 * as their high bits.  (x - ones * n) & ~x & highs marks the bytes below n
 * (n <= 0x80) and possibly bytes above a marked one, where a borrow went:
 * so the lowest mark is always right, which is all vm_json_scan_plain_bytes
 * uses.
 */
static uint64_t
special_bytes(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u, highs = ones * 0x80;
	uint64_t quotes = x ^ (ones * '"'), backslashes = x ^ (ones * '\\');

	return (((x - ones * 0x20) & ~x) | ((quotes - ones) & ~quotes) |
	    ((backslashes - ones) & ~backslashes) | x) & highs;
}

/* Eight bytes at a time while eight are left, on little-endian machines
 * (where the lowest mark is the first byte in memory). */
const unsigned char *
vm_json_scan_plain_bytes(const unsigned char *at, const unsigned char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t eight, marks;

	while (end - at >= 8) {
		memcpy(&eight, at, sizeof(eight));
		if ((marks = special_bytes(eight)) != 0)
			return at + (__builtin_ctzll(marks) >> 3);
		at += 8;
	}
#endif
	while (at < end && vm_json_scan_byte_class[*at] == VM_JSON_SCAN_PLAIN)
		at++;
	return at;
}

/* Numbers ---------------------------------------------------------------- */

static const unsigned char *
read_digits(const unsigned char *at, const unsigned char *end, struct vm_json_number *n,
    int fraction)
{
	for (; at < end && is_digit(*at); at++) {
		if (n->mantissa > MANTISSA_DIGIT_LIMIT) {
			n->exact = 0;
			continue;
		}
		n->mantissa = n->mantissa * 10 + (uint64_t)(*at - '0');
		if (fraction)
			n->exponent--;
	}
	return at;
}

static const unsigned char *
read_exponent(const unsigned char *at, const unsigned char *end, struct vm_json_number *n)
{
	long exponent = 0;
	int negative = 0;

	if (at < end && (*at == '+' || *at == '-'))
		negative = *at++ == '-';
	for (; at < end && is_digit(*at); at++) {
		if (exponent < EXPONENT_LIMIT)
			exponent = exponent * 10 + (*at - '0');
		else
			n->exact = 0;	/* the sum below would be wrong */
	}
	n->exponent += negative ? -exponent : exponent;
	return at;
}

/* Sets *after to the byte that breaks the grammar; returns -1. */
static int
refuse(const unsigned char *at, const unsigned char **after)
{
	*after = at;
	return -1;
}

int
vm_json_scan_number(const unsigned char *at, const unsigned char *end,
    struct vm_json_number *n, const unsigned char **after)
{
	if (*at == '-') {
		n->negative = 1;
		at++;
	}
	if (at == end || !is_digit(*at))
		return refuse(at, after);
	if (*at == '0') {
		if (++at < end && is_digit(*at))
			return refuse(at, after);
	} else {
		at = read_digits(at, end, n, 0);
	}
	if (at < end && *at == '.') {
		if (++at == end || !is_digit(*at))
			return refuse(at, after);
		at = read_digits(at, end, n, 1);
	}
	if (at < end && (*at == 'e' || *at == 'E')) {
		const unsigned char *digits = at + 1;
		if (digits < end && (*digits == '+' || *digits == '-'))
			digits++;
		if (digits == end || !is_digit(*digits))
			return refuse(digits, after);
		at = read_exponent(at + 1, end, n);
	}
	*after = at;
	return 0;
}

/*
 * A mantissa below 2^53 and a power of ten up to 10^22 are both exact
 * doubles, so one correctly rounded multiplication or division gives the
 * double nearest the decimal value, which is what strtod returns.  (Only
 * where doubles are evaluated as doubles.)
 */
int
vm_json_scan_exact_value(const struct vm_json_number *n, double *value)
{
#if FLT_EVAL_METHOD == 0
	if (n->exact && n->mantissa <= EXACT_MANTISSA_LIMIT &&
	    n->exponent >= -EXACT_POWER_LIMIT && n->exponent <= EXACT_POWER_LIMIT) {
		double x = (double)n->mantissa;
		if (n->exponent < 0)
			x /= powers_of_ten[-n->exponent];
		else
			x *= powers_of_ten[n->exponent];
		*value = n->negative ? -x : x;
		return 1;
	}
#else
	(void)n;
	(void)value;
#endif
	return 0;
}
