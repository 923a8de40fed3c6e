/*
 * vm_json_decode.c - JSON text straight onto the Lua stack, with no cJSON
 * tree in between: the values json_parse + vm_json_push would give (arrays
 * with the shared marker metatable, null as json.null, numbers as the
 * double strtod reads, duplicate keys: the last one wins), in one pass.
 *
 * It must never accept a text that json_parse refuses, and never give a
 * value that differs from json_parse + vm_json_push, except that \u0000
 * becomes a NUL byte inside the string where the tree path cut the string
 * there (cJSON hands out C strings).  It may refuse more, because it reads
 * RFC 8259 strictly where cJSON 1.7.15 is lenient:
 *   - raw control characters (U+0000 to U+001F) in strings;
 *   - bytes other than space, tab, LF and CR between tokens (cJSON skips
 *     every byte up to 0x20), and a UTF-8 byte order mark at the start;
 *   - invalid UTF-8 in strings (RFC 3629: no overlong forms, surrogates or
 *     code points above U+10FFFF; the encoder would refuse it anyway);
 *   - \u escapes whose four digits are not all hexadecimal (cJSON reads
 *     them as U+0000 and so cuts the string);
 *   - numbers with leading zeros ("01"), an empty fraction ("1.", "1.e5")
 *     or no digit before the point ("-.5"), which strtod takes;
 *   - numbers too large for a double: "JSON number out of range" (cJSON
 *     gives inf, which no result could carry back).  Numbers too small
 *     round to 0 or a subnormal, as strtod does.
 * Numbers of any length are read in full, as Debian's cJSON 1.7.15 does
 * (with the fix for CVE-2023-26819; upstream 1.7.15 stopped at 63 bytes).
 * Nesting stops at 1000 levels whatever max_depth says, as in cJSON, which
 * also bounds the recursion here.  Errors carry the byte position; an
 * early end is reported at the last byte, as json_parse mostly does.  A
 * depth error is only found when the parse gets there (json_parse looks at
 * the depth first), so a text both too deep and invalid may get either.
 *
 * Lua may raise out of memory at any allocation: nothing here is malloc'd,
 * the scratch space for escaped strings and long numbers is a userdata on
 * the stack.
 */
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "vm/vm_json.h"

/* cJSON's own nesting limit; also the deepest recursion of this file. */
#define NESTING_LIMIT		1000u

/* Numbers shorter than this are copied for strtod on the C stack. */
#define SHORT_NUMBER_SIZE	64

/* Tables on the first HINTED_LEVELS levels are created at the size of
 * their last sibling (see size_hint), up to SIZE_HINT_LIMIT, which bounds
 * the room a small table after a large one may waste. */
#define HINTED_LEVELS		32u
#define SIZE_HINT_LIMIT		64

/* First size of the scratch space for strings with escapes. */
#define SCRATCH_MIN_SIZE	256

/* Below this a decimal mantissa is an exact double. */
#define EXACT_MANTISSA_LIMIT	((uint64_t)1 << 53)

/* A mantissa above this could overflow when one more digit comes. */
#define MANTISSA_DIGIT_LIMIT	((UINT64_MAX - 9) / 10)

/* Exponents are read up to about this, which keeps their sum with the
 * count of fraction digits in range; beyond it strtod reads the number. */
#define EXPONENT_LIMIT		100000

enum failure {
	FAILED_SYNTAX,
	FAILED_DEPTH,
	FAILED_RANGE,
	FAILED_LUA_STACK,
};

struct decoder {
	lua_State *L;
	const unsigned char *text, *at, *end;
	unsigned max_depth;
	int marker;			/* stack index of the array marker */
	int scratch;			/* stack index of the scratch userdata */
	unsigned char *scratch_data;	/* NULL until a string needs it */
	size_t scratch_size;
	enum failure failure;
	const unsigned char *failed_at;
	unsigned short object_sizes[HINTED_LEVELS];	/* see size_hint */
	unsigned short array_sizes[HINTED_LEVELS];
};

/* The bytes of a string, by what the decoder does with them. */
enum byte_class { PLAIN = 0, QUOTE = 1, BACKSLASH = 2, CONTROL = 3, HIGH = 4 };

static const unsigned char string_byte_class[256] = {
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

static int decode_value(struct decoder *d, unsigned depth);

static int
fail(struct decoder *d, enum failure failure, const unsigned char *at)
{
	d->failure = failure;
	d->failed_at = at;
	return -1;
}

static int
fail_syntax(struct decoder *d, const unsigned char *at)
{
	return fail(d, FAILED_SYNTAX, at);
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static void
skip_whitespace(struct decoder *d)
{
	const unsigned char *at = d->at;

	while (at < d->end && *at <= ' ' &&
	    (*at == ' ' || *at == '\n' || *at == '\r' || *at == '\t'))
		at++;
	d->at = at;
}

/* Strings ---------------------------------------------------------------- */

/*
 * Length (2 to 4) of the UTF-8 sequence at s, or 0 when it is not valid
 * (RFC 3629: no overlong forms, surrogates or code points above U+10FFFF).
 * The lead byte is at least 0x80.
 */
static size_t
utf8_length_at(const unsigned char *s, const unsigned char *end)
{
	unsigned char low = 0x80, high = 0xbf;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		low = s[0] == 0xe0 ? 0xa0 : 0x80;
		high = s[0] == 0xed ? 0x9f : 0xbf;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		low = s[0] == 0xf0 ? 0x90 : 0x80;
		high = s[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if ((size_t)(end - s) < len || s[1] < low || s[1] > high)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

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

/* Writes the character of the escape at s to *out; returns the byte after
 * the escape, or NULL when it is not one. */
static const unsigned char *
decode_escape(const unsigned char *s, const unsigned char *close, unsigned char **out)
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

/* Makes the scratch space at least `size` bytes.  May raise (memory). */
static void
reserve_scratch(struct decoder *d, size_t size)
{
	size_t grown = d->scratch_size * 2;

	if (size <= d->scratch_size)
		return;
	if (grown < size)
		grown = size;
	if (grown < SCRATCH_MIN_SIZE)
		grown = SCRATCH_MIN_SIZE;
	d->scratch_data = lua_newuserdata(d->L, grown);
	d->scratch_size = grown;
	lua_replace(d->L, d->scratch);
}

/* The closing quote of the string whose text starts at s, escapes
 * skipped, or end when there is none. */
static const unsigned char *
find_closing_quote(const unsigned char *s, const unsigned char *end)
{
	while (s < end && *s != '"') {
		if (*s == '\\' && end - s < 2)
			return end;
		s += *s == '\\' ? 2 : 1;
	}
	return s;
}

/*
 * The slow path: a string with an escape at `escape`.  Its text (from
 * `start`) is decoded into the scratch space, which it cannot outgrow: no
 * escape is shorter than the bytes it stands for.
 */
static int
decode_escaped_string(struct decoder *d, const unsigned char *start,
    const unsigned char *escape)
{
	const unsigned char *close = find_closing_quote(escape, d->end);
	const unsigned char *at = escape, *next;
	unsigned char *out;
	size_t n;

	reserve_scratch(d, (size_t)(close - start));
	memcpy(d->scratch_data, start, (size_t)(escape - start));
	out = d->scratch_data + (escape - start);
	while (at < close) {
		switch (string_byte_class[*at]) {
		case PLAIN:
			*out++ = *at++;
			break;
		case BACKSLASH:
			if ((next = decode_escape(at, close, &out)) == NULL)
				return fail_syntax(d, at);
			at = next;
			break;
		case HIGH:
			if ((n = utf8_length_at(at, close)) == 0)
				return fail_syntax(d, at);
			memcpy(out, at, n);
			out += n;
			at += n;
			break;
		default:
			return fail_syntax(d, at);
		}
	}
	if (close == d->end)
		return fail_syntax(d, d->end);
	lua_pushlstring(d->L, (const char *)d->scratch_data, (size_t)(out - d->scratch_data));
	d->at = close + 1;
	return 0;
}

/*
 * The bytes of x that are below 0x20, a quote, a backslash or above 0x7f,
 * as their high bits.  (x - ones * n) & ~x & highs marks the bytes below n
 * (n <= 0x80) and possibly bytes above a marked one, where a borrow went:
 * so the lowest mark is always right, which is all skip_plain_bytes uses.
 */
static uint64_t
special_bytes(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u, highs = ones * 0x80;
	uint64_t quotes = x ^ (ones * '"'), backslashes = x ^ (ones * '\\');

	return (((x - ones * 0x20) & ~x) | ((quotes - ones) & ~quotes) |
	    ((backslashes - ones) & ~backslashes) | x) & highs;
}

/* Skips the bytes a string holds as they are, up to the first special
 * one: eight at a time while eight are left, on little-endian machines
 * (where the lowest mark is the first byte in memory). */
static const unsigned char *
skip_plain_bytes(const unsigned char *at, const unsigned char *end)
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
	while (at < end && string_byte_class[*at] == PLAIN)
		at++;
	return at;
}

/* Pushes the string whose opening quote is at d->at.  Strings without
 * escapes (most) go to Lua straight from the text. */
static int
decode_string(struct decoder *d)
{
	const unsigned char *start = d->at + 1, *at = start, *end = d->end;
	size_t n;

	for (;;) {
		at = skip_plain_bytes(at, end);
		if (at == end)
			return fail_syntax(d, end);
		switch (string_byte_class[*at]) {
		case QUOTE:
			lua_pushlstring(d->L, (const char *)start, (size_t)(at - start));
			d->at = at + 1;
			return 0;
		case BACKSLASH:
			return decode_escaped_string(d, start, at);
		case HIGH:
			if ((n = utf8_length_at(at, end)) == 0)
				return fail_syntax(d, at);
			at += n;
			break;
		default:
			return fail_syntax(d, at);
		}
	}
}

/* Numbers ---------------------------------------------------------------- */

/* What the grammar pass learnt about a number: mantissa * 10^exponent
 * when `exact`, else strtod must read the text. */
struct number {
	uint64_t mantissa;
	long exponent;
	int exact;
	int negative;
};

static const unsigned char *
read_digits(const unsigned char *at, const unsigned char *end, struct number *n,
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
read_exponent(const unsigned char *at, const unsigned char *end, struct number *n)
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

/*
 * Checks the grammar of the number at d->at (RFC 8259: -?(0|[1-9][0-9]*)
 * (.[0-9]+)?([eE][+-]?[0-9]+)?) and sets *after to its end.
 */
static int
scan_number(struct decoder *d, struct number *n, const unsigned char **after)
{
	const unsigned char *at = d->at, *end = d->end;

	if (*at == '-') {
		n->negative = 1;
		at++;
	}
	if (at == end || !is_digit(*at))
		return fail_syntax(d, at);
	if (*at == '0') {
		if (++at < end && is_digit(*at))
			return fail_syntax(d, at);
	} else {
		at = read_digits(at, end, n, 0);
	}
	if (at < end && *at == '.') {
		if (++at == end || !is_digit(*at))
			return fail_syntax(d, at);
		at = read_digits(at, end, n, 1);
	}
	if (at < end && (*at == 'e' || *at == 'E')) {
		const unsigned char *digits = at + 1;
		if (digits < end && (*digits == '+' || *digits == '-'))
			digits++;
		if (digits == end || !is_digit(*digits))
			return fail_syntax(d, digits);
		at = read_exponent(at + 1, end, n);
	}
	*after = at;
	return 0;
}

/* strtod on a NUL-terminated copy (the text has no NUL after it), with
 * '.' made the locale's decimal point as cJSON does, so that the two read
 * the same double.  Long numbers are copied to the scratch space. */
static double
read_with_strtod(struct decoder *d, const unsigned char *start, size_t len)
{
	char short_copy[SHORT_NUMBER_SIZE];
	char *copy = short_copy;
	char point = localeconv()->decimal_point[0];

	if (len >= sizeof(short_copy)) {
		reserve_scratch(d, len + 1);
		copy = (char *)d->scratch_data;
	}
	memcpy(copy, start, len);
	copy[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (copy[i] == '.')
			copy[i] = point;
	return strtod(copy, NULL);
}

/*
 * The double of a number.  A mantissa below 2^53 and a power of ten up to
 * 10^22 are both exact doubles, so one correctly rounded multiplication or
 * division gives the double nearest the decimal value, which is what
 * strtod returns.  (Only where doubles are evaluated as doubles.)
 */
static double
number_value(struct decoder *d, const struct number *n, const unsigned char *start,
    size_t len)
{
#if FLT_EVAL_METHOD == 0
	if (n->exact && n->mantissa <= EXACT_MANTISSA_LIMIT &&
	    n->exponent >= -EXACT_POWER_LIMIT && n->exponent <= EXACT_POWER_LIMIT) {
		double x = (double)n->mantissa;
		if (n->exponent < 0)
			x /= powers_of_ten[-n->exponent];
		else
			x *= powers_of_ten[n->exponent];
		return n->negative ? -x : x;
	}
#endif
	return read_with_strtod(d, start, len);
}

static int
decode_number(struct decoder *d)
{
	const unsigned char *start = d->at, *after = NULL;
	struct number n = { 0, 0, 1, 0 };
	double x;

	if (scan_number(d, &n, &after) == -1)
		return -1;
	x = number_value(d, &n, start, (size_t)(after - start));
	if (isinf(x))
		return fail(d, FAILED_RANGE, start);
	lua_pushnumber(d->L, x);
	d->at = after;
	return 0;
}

/* Containers ------------------------------------------------------------- */

/* The likely size of the next table at `depth`: that of the last one
 * closed there.  Arrays of records are common, and a table created at its
 * final size is not rehashed at every power of two as it grows. */
static int
size_hint(const unsigned short *hints, unsigned depth)
{
	return depth < HINTED_LEVELS ? hints[depth] : 0;
}

static void
remember_size(unsigned short *hints, unsigned depth, int size)
{
	if (depth < HINTED_LEVELS)
		hints[depth] = (unsigned short)(size < SIZE_HINT_LIMIT ? size : SIZE_HINT_LIMIT);
}

static int
enter_container(struct decoder *d, unsigned depth)
{
	if (depth + 1 > d->max_depth)
		return fail(d, FAILED_DEPTH, d->at);
	/* The table, a key and a value. */
	if (!lua_checkstack(d->L, 3))
		return fail(d, FAILED_LUA_STACK, d->at);
	d->at++;
	skip_whitespace(d);
	return 0;
}

/* After a member: returns 1 past the closing byte, 0 after a comma (and
 * the whitespace after it), -1 otherwise. */
static int
next_member(struct decoder *d, unsigned char closing)
{
	skip_whitespace(d);
	if (d->at == d->end)
		return fail_syntax(d, d->end);
	if (*d->at == closing) {
		d->at++;
		return 1;
	}
	if (*d->at != ',')
		return fail_syntax(d, d->at);
	d->at++;
	skip_whitespace(d);
	return 0;
}

static void
push_array_table(struct decoder *d, int size)
{
	lua_createtable(d->L, size, 0);
	lua_pushvalue(d->L, d->marker);
	lua_setmetatable(d->L, -2);
}

static int
decode_array(struct decoder *d, unsigned depth)
{
	int count = 0, done;

	if (enter_container(d, depth) == -1)
		return -1;
	if (d->at < d->end && *d->at == ']') {
		d->at++;
		push_array_table(d, 0);
		return 0;
	}
	push_array_table(d, size_hint(d->array_sizes, depth));
	do {
		if (count == INT_MAX)
			return fail_syntax(d, d->at);
		if (decode_value(d, depth + 1) == -1)
			return -1;
		lua_rawseti(d->L, -2, ++count);
	} while ((done = next_member(d, ']')) == 0);
	remember_size(d->array_sizes, depth, count);
	return done == 1 ? 0 : -1;
}

/* Pushes the key and the value of an object member. */
static int
decode_member(struct decoder *d, unsigned depth)
{
	if (d->at == d->end || *d->at != '"')
		return fail_syntax(d, d->at);
	if (decode_string(d) == -1)
		return -1;
	skip_whitespace(d);
	if (d->at == d->end || *d->at != ':')
		return fail_syntax(d, d->at);
	d->at++;
	skip_whitespace(d);
	return decode_value(d, depth + 1);
}

/* Members are stored in document order: the last of duplicate keys wins,
 * as in vm_json_push. */
static int
decode_object(struct decoder *d, unsigned depth)
{
	int count = 0, done;

	if (enter_container(d, depth) == -1)
		return -1;
	if (d->at < d->end && *d->at == '}') {
		d->at++;
		lua_createtable(d->L, 0, 0);
		return 0;
	}
	lua_createtable(d->L, 0, size_hint(d->object_sizes, depth));
	do {
		if (decode_member(d, depth) == -1)
			return -1;
		lua_rawset(d->L, -3);
		count += count < INT_MAX;
	} while ((done = next_member(d, '}')) == 0);
	remember_size(d->object_sizes, depth, count);
	return done == 1 ? 0 : -1;
}

static int
decode_literal(struct decoder *d, const char *word, size_t len)
{
	if ((size_t)(d->end - d->at) < len || memcmp(d->at, word, len) != 0)
		return fail_syntax(d, d->at);
	d->at += len;
	return 0;
}

/* Pushes the value at d->at; `depth` counts the containers around it. On
 * error the partly built tables stay on the stack; the caller resets it. */
static int
decode_value(struct decoder *d, unsigned depth)
{
	if (d->at == d->end)
		return fail_syntax(d, d->end);
	switch (*d->at) {
	case '{':
		return decode_object(d, depth);
	case '[':
		return decode_array(d, depth);
	case '"':
		return decode_string(d);
	case 't':
		if (decode_literal(d, "true", 4) == -1)
			return -1;
		lua_pushboolean(d->L, 1);
		return 0;
	case 'f':
		if (decode_literal(d, "false", 5) == -1)
			return -1;
		lua_pushboolean(d->L, 0);
		return 0;
	case 'n':
		if (decode_literal(d, "null", 4) == -1)
			return -1;
		lua_pushlightuserdata(d->L, NULL);
		return 0;
	default:
		if (*d->at == '-' || is_digit(*d->at))
			return decode_number(d);
		return fail_syntax(d, d->at);
	}
}

/* Errors ----------------------------------------------------------------- */

/* Fills err with the failure and its line and column (1-based, bytes). */
static void
report(const struct decoder *d, char *err, size_t errlen)
{
	size_t len = (size_t)(d->end - d->text);
	size_t offset = (size_t)(d->failed_at - d->text), line_start = 0;
	unsigned long line = 1;

	if (err == NULL || errlen == 0)
		return;
	if (d->failure == FAILED_DEPTH) {
		snprintf(err, errlen, "JSON nested deeper than %u levels", d->max_depth);
		return;
	}
	if (d->failure == FAILED_LUA_STACK) {
		snprintf(err, errlen, "JSON nested too deep for the Lua stack");
		return;
	}
	if (offset >= len && len > 0)
		offset = len - 1;
	for (size_t i = 0; i < offset; i++) {
		if (d->text[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	if (d->failure == FAILED_RANGE)
		snprintf(err, errlen, "JSON number out of range at line %lu, column %zu",
		    line, offset - line_start + 1);
	else
		snprintf(err, errlen, "invalid JSON at line %lu, column %zu", line,
		    offset - line_start + 1);
}

int
vm_json_decode(lua_State *L, const char *text, size_t len, unsigned max_depth,
    char *err, size_t errlen)
{
	static const unsigned char empty[1];
	int top = lua_gettop(L);
	struct decoder d;

	d.L = L;
	d.text = d.at = text != NULL ? (const unsigned char *)text : empty;
	d.end = d.text + (text != NULL ? len : 0);
	d.max_depth = max_depth < NESTING_LIMIT ? max_depth : NESTING_LIMIT;
	d.marker = top + 1;
	d.scratch = top + 2;
	d.scratch_data = NULL;
	d.scratch_size = 0;
	d.failure = FAILED_SYNTAX;
	d.failed_at = d.text;
	memset(d.object_sizes, 0, sizeof(d.object_sizes));
	memset(d.array_sizes, 0, sizeof(d.array_sizes));
	if (!lua_checkstack(L, 4)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "Lua stack exhausted");
		return -1;
	}
	vm_json_push_array_marker(L);
	lua_pushnil(L);
	skip_whitespace(&d);
	if (decode_value(&d, 0) == -1)
		goto fail;
	skip_whitespace(&d);
	if (d.at != d.end) {
		fail_syntax(&d, d.at);
		goto fail;
	}
	lua_replace(L, top + 1);
	lua_settop(L, top + 1);
	return 0;

fail:
	report(&d, err, errlen);
	lua_settop(L, top);
	return -1;
}
