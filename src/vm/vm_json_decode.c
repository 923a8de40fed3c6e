/*
 * vm_json_decode.c - JSON text straight onto the Lua stack, with no cJSON
 * tree in between: the values json_parse + jsonpush_tree would give (arrays
 * with the shared marker metatable, null as json.null, numbers as the
 * double strtod reads, duplicate keys: the last one wins), in one pass.
 * (json_parse + jsonpush_tree, in tests/support/, is the reference the
 * tests and the fuzzer hold this file to.)
 *
 * It must never accept a text that json_parse refuses, and never give a
 * value that differs from json_parse + jsonpush_tree, except that \u0000
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
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "vm/vm_json_common.h"
#include "vm/vm_json_decode.h"
#include "vm/vm_json_path.h"
#include "vm/vm_json_scan.h"

/* cJSON's own nesting limit; also the deepest recursion of this file. */
#define NESTING_LIMIT		1000u

/* Numbers shorter than this are copied for strtod on the C stack. */
#define SHORT_NUMBER_SIZE	64

/* Tables on the first HINTED_LEVELS levels are created at the size of
 * their last sibling (see size_hint), up to SIZE_HINT_LIMIT, which bounds
 * the room a small table after a large one may waste. */
#define HINTED_LEVELS		32u
#define SIZE_HINT_LIMIT		64

/* Levels of a too-deep request's path kept: more than its message shows
 * (the path is cut at 192 bytes, each level takes at least two). */
#define DEEP_PATH_LEVELS	100u

/* First size of the scratch space for strings with escapes. */
#define SCRATCH_MIN_SIZE	256

enum failure {
	FAILED_SYNTAX,
	FAILED_DEPTH,
	FAILED_RANGE,
	FAILED_LUA_STACK,
	FAILED_DUPLICATE,
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
	int reject_duplicates;		/* requests: a top-level key twice is an error */
	char duplicate[64];		/* the key, printable, for the message */
	/* Requests: the path to a value nested too deep, one link per level
	 * from the root, written only as that failure unwinds. */
	struct vm_json_path deep_path[DEEP_PATH_LEVELS];
	unsigned deep_levels;
};

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

/*
 * The slow path: a string with an escape at `escape`.  Its text (from
 * `start`) is decoded into the scratch space, which it cannot outgrow: no
 * escape is shorter than the bytes it stands for.
 */
static int
decode_escaped_string(struct decoder *d, const unsigned char *start,
    const unsigned char *escape)
{
	const unsigned char *close = vm_json_scan_closing_quote(escape, d->end);
	const unsigned char *at = escape, *next;
	unsigned char *out;
	size_t n;

	reserve_scratch(d, (size_t)(close - start));
	memcpy(d->scratch_data, start, (size_t)(escape - start));
	out = d->scratch_data + (escape - start);
	while (at < close) {
		switch (vm_json_scan_byte_class[*at]) {
		case VM_JSON_SCAN_PLAIN:
			*out++ = *at++;
			break;
		case VM_JSON_SCAN_BACKSLASH:
			if ((next = vm_json_scan_escape(at, close, &out)) == NULL)
				return fail_syntax(d, at);
			at = next;
			break;
		case VM_JSON_SCAN_HIGH:
			if ((n = text_utf8_length(at, (size_t)(close - at))) == 0)
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

/* Pushes the string whose opening quote is at d->at.  Strings without
 * escapes (most) go to Lua straight from the text. */
static int
decode_string(struct decoder *d)
{
	const unsigned char *start = d->at + 1, *at = start, *end = d->end;
	size_t n;

	for (;;) {
		at = vm_json_scan_plain_bytes(at, end);
		if (at == end)
			return fail_syntax(d, end);
		switch (vm_json_scan_byte_class[*at]) {
		case VM_JSON_SCAN_QUOTE:
			lua_pushlstring(d->L, (const char *)start, (size_t)(at - start));
			d->at = at + 1;
			return 0;
		case VM_JSON_SCAN_BACKSLASH:
			return decode_escaped_string(d, start, at);
		case VM_JSON_SCAN_HIGH:
			if ((n = text_utf8_length(at, (size_t)(end - at))) == 0)
				return fail_syntax(d, at);
			at += n;
			break;
		default:
			return fail_syntax(d, at);
		}
	}
}

/* Numbers ---------------------------------------------------------------- */

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

static int
decode_number(struct decoder *d)
{
	const unsigned char *start = d->at, *after = NULL;
	struct vm_json_number n = { 0, 0, 1, 0 };
	double x;

	if (vm_json_scan_number(d->at, d->end, &n, &after) == -1)
		return fail_syntax(d, after);
	if (!vm_json_scan_exact_value(&n, &x))
		x = read_with_strtod(d, start, (size_t)(after - start));
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

/* On the way out of a depth failure in a request: the container at
 * `depth` holds the too-deep value under key (len bytes, on the Lua stack
 * until the failure is reported) or, when key is NULL, at index. */
static void
note_deep_path(struct decoder *d, unsigned depth, const char *key, size_t len, int index)
{
	if (d->failure != FAILED_DEPTH || !d->reject_duplicates || depth >= DEEP_PATH_LEVELS)
		return;
	d->deep_path[depth] = (struct vm_json_path){ .key = key, .key_len = len,
	    .index = index };
	if (depth + 1 > d->deep_levels)
		d->deep_levels = depth + 1;
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
		if (decode_value(d, depth + 1) == -1) {
			note_deep_path(d, depth, NULL, 0, count + 1);
			return -1;
		}
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
	int key = lua_gettop(d->L);
	if (decode_value(d, depth + 1) == 0)
		return 0;
	size_t len;
	const char *text = lua_tolstring(d->L, key, &len);
	note_deep_path(d, depth, text, len, 0);
	return -1;
}

/* With the member's key and value on the stack above its object: -1 if
 * the object has the key already (remembered for the message). */
static int
refuse_duplicate(struct decoder *d, const unsigned char *member)
{
	lua_pushvalue(d->L, -2);
	lua_rawget(d->L, -4);
	int seen = !lua_isnil(d->L, -1);
	lua_pop(d->L, 1);
	if (!seen)
		return 0;
	size_t len, i;
	const char *key = lua_tolstring(d->L, -2, &len);
	for (i = 0; i < len && i < sizeof(d->duplicate) - 1; i++)
		d->duplicate[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
	d->duplicate[i] = '\0';
	return fail(d, FAILED_DUPLICATE, member);
}

/* Members are stored in document order: the last of duplicate keys wins,
 * as in jsonpush_tree and JSON.parse, except in a request's own top level
 * (timeout_ms, bytecode ...), where the supervisor reads the first: there
 * a key given twice is refused.  Checking every level cost a quarter of
 * the time of decoding a large context. */
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
		const unsigned char *member = d->at;
		if (decode_member(d, depth) == -1)
			return -1;
		if (depth == 0 && d->reject_duplicates && refuse_duplicate(d, member) == -1)
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
		if (*d->at == '-' || (*d->at >= '0' && *d->at <= '9'))
			return decode_number(d);
		return fail_syntax(d, d->at);
	}
}

/* Errors ----------------------------------------------------------------- */

/* A request object with a value nested too deep.  A root that is no
 * object is no request: "[[[[..." stays a JSON error. */
static int
names_deep_path(const struct decoder *d)
{
	return d->failure == FAILED_DEPTH && d->deep_levels > 0 && d->deep_path[0].key != NULL;
}

/* A request's value nested too deep: "context.a[2]...: nested deeper than
 * max_json_depth (N)", N being the limit below the request object.  The
 * path starts at the request's field, "context" for a context. */
static void
report_deep_path(const struct decoder *d, char *err, size_t errlen)
{
	struct vm_json_path links[DEEP_PATH_LEVELS];
	int in_context = d->deep_path[0].key_len == 7 &&
	    memcmp(d->deep_path[0].key, "context", 7) == 0;

	memcpy(links, d->deep_path, d->deep_levels * sizeof(links[0]));
	vm_json_path_fail_levels(err, errlen, in_context ? "context" : "request",
	    links + in_context, d->deep_levels - (unsigned)in_context,
	    "nested deeper than max_json_depth (%u)", d->max_depth - 1);
}

/* Fills err with the failure and its line and column (1-based, bytes). */
static void
report(const struct decoder *d, char *err, size_t errlen)
{
	size_t len = (size_t)(d->end - d->text);
	size_t offset = (size_t)(d->failed_at - d->text), line_start = 0;
	unsigned long line = 1;

	if (err == NULL || errlen == 0)
		return;
	if (names_deep_path(d)) {
		report_deep_path(d, err, errlen);
		return;
	}
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
	else if (d->failure == FAILED_DUPLICATE)
		snprintf(err, errlen, "duplicate key \"%s\" at line %lu, column %zu",
		    d->duplicate, line, offset - line_start + 1);
	else
		snprintf(err, errlen, "invalid JSON at line %lu, column %zu", line,
		    offset - line_start + 1);
}

static int
decode_text(lua_State *L, const char *text, size_t len, unsigned max_depth,
    int reject_duplicates, char *err, size_t errlen)
{
	static const unsigned char empty[1];
	int top = lua_gettop(L);
	struct decoder d;

	d.L = L;
	d.reject_duplicates = reject_duplicates;
	d.text = d.at = text != NULL ? (const unsigned char *)text : empty;
	d.end = d.text + (text != NULL ? len : 0);
	d.max_depth = max_depth < NESTING_LIMIT ? max_depth : NESTING_LIMIT;
	d.marker = top + 1;
	d.scratch = top + 2;
	d.scratch_data = NULL;
	d.scratch_size = 0;
	d.failure = FAILED_SYNTAX;
	d.failed_at = d.text;
	d.deep_levels = 0;
	memset(d.object_sizes, 0, sizeof(d.object_sizes));
	memset(d.array_sizes, 0, sizeof(d.array_sizes));
	if (!lua_checkstack(L, 4)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "Lua stack exhausted");
		return -1;
	}
	vm_json_common_push_array_marker(L);
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
	return names_deep_path(&d) ? -2 : -1;
}

int
vm_json_decode(lua_State *L, const char *text, size_t len, unsigned max_depth,
    char *err, size_t errlen)
{
	return decode_text(L, text, len, max_depth, 0, err, errlen);
}

int
vm_json_decode_request(lua_State *L, const char *text, size_t len, unsigned max_depth,
    char *err, size_t errlen)
{
	return decode_text(L, text, len, max_depth, 1, err, errlen);
}
