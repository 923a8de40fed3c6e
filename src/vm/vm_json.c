/*
 * vm_json.c - JSON values in and out of the worker's Lua state: cJSON trees
 * become Lua values (contexts), Lua values become JSON text (results), and
 * the `json` table gives scripts the same two conversions.
 *
 * This runs on every request, so it writes straight into the caller's
 * buffer and allocates nothing per value.  It must never emit text that is
 * not JSON (NaN, invalid UTF-8, a cycle), never run script code (only raw
 * table access, so no metamethod can raise or yield in here) and never
 * convert a key in place while iterating a table (lua_next would lose its
 * place).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "common/buffer.h"
#include "vm/vm_json.h"

/* json.encode output bound.  The text is malloc'd outside the Lua heap
 * limit, and a table reached many times (not a cycle) can expand
 * exponentially, so it needs a bound of its own. */
#define HELPER_TEXT_LIMIT	((size_t)16 * 1024 * 1024)

/* Room for a number: "-1.2345678901234567e-308" and a NUL. */
#define NUMBER_TEXT_SIZE	32

/* Error paths are cut here so that the message after them survives. */
#define PATH_TEXT_SIZE		192
#define KEY_SHOWN_BYTES		40

/* Registry keys: only their addresses matter. */
static char array_marker_key;
static char scratch_metatable_key;

/*
 * Where a value sits: a chain from the value up to the root, one link per
 * level on the C stack of the recursion.  It names the value in error
 * messages and, through `table`, lists the tables on the current path so
 * that the encoder can see a cycle.
 */
struct step {
	const struct step *parent;	/* NULL at the root */
	const void *table;		/* encoder: the table holding the value */
	const char *key;		/* object key, the root's name, or NULL */
	size_t key_len;
	double index;			/* when key is NULL: index or number key */
};

struct encoder {
	lua_State *L;
	struct buffer *out;
	int marker;			/* stack index of the array marker */
	unsigned max_depth;
	char *err;
	size_t errlen;
};

struct pusher {
	lua_State *L;
	int marker;
	unsigned max_depth;
	char *err;
	size_t errlen;
};

/* What json.encode allocates outside the Lua heap, kept in a userdata so
 * that a Lua error (out of memory) cannot leak it. */
struct scratch {
	struct buffer text;
};

/* Text of a bounded size that drops, rather than cuts, a piece that does
 * not fit, so multi-byte characters stay whole. */
struct text {
	char *data;
	size_t len, cap;
	int truncated;
};

/* 0: copied as is, 1: escaped, 2: starts a multi-byte sequence. */
static const unsigned char byte_kind[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static const char hex_digits[] = "0123456789abcdef";

/* Numbers and UTF-8 ---------------------------------------------------- */

static size_t
format_integer(long long value, char *out)
{
	char digits[24];
	size_t count = 0, len = 0;
	unsigned long long rest = value < 0 ? 0ULL - (unsigned long long)value :
	    (unsigned long long)value;

	do {
		digits[count++] = (char)('0' + rest % 10);
		rest /= 10;
	} while (rest != 0);
	if (value < 0)
		out[len++] = '-';
	while (count > 0)
		out[len++] = digits[--count];
	out[len] = '\0';
	return len;
}

/*
 * Writes x as JSON into out (NUMBER_TEXT_SIZE bytes) and returns the
 * length, or 0 when x is NaN or infinite.  Integers below 2^53 print
 * without a fraction (-0 as 0); other numbers use the fewest significant
 * digits (14 to 17) that read back as the same double.  The search starts
 * at 15: when 14 digits suffice, %.15g prints the same text (a double is
 * too precise for the 15th digit of that number to be anything but 0).
 */
static size_t
format_number(double x, char *out)
{
	if (!isfinite(x))
		return 0;
	if (fabs(x) < 9007199254740992.0 && x == (double)(long long)x)
		return format_integer((long long)x, out);
	for (int digits = 15; digits < 17; digits++) {
		int len = snprintf(out, NUMBER_TEXT_SIZE, "%.*g", digits, x);
		if (strtod(out, NULL) == x)
			return (size_t)len;
	}
	return (size_t)snprintf(out, NUMBER_TEXT_SIZE, "%.17g", x);
}

static const char *
describe_non_finite(double x)
{
	if (isnan(x))
		return "NaN";
	return x > 0 ? "inf" : "-inf";
}

/*
 * Length (2 to 4) of the UTF-8 sequence starting at s, or 0 if it is not
 * valid: overlong forms, surrogates and code points above U+10FFFF are
 * refused (RFC 3629).  The lead byte is at least 0x80.
 */
static size_t
utf8_sequence_length(const unsigned char *s, size_t available)
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

/* Error messages --------------------------------------------------------- */

static void
text_append(struct text *t, const char *s, size_t len)
{
	if (t->truncated || len >= t->cap - t->len) {
		t->truncated = 1;
		return;
	}
	memcpy(t->data + t->len, s, len);
	t->len += len;
	t->data[t->len] = '\0';
}

static int
key_is_identifier(const char *key, size_t len)
{
	if (len == 0 || (key[0] >= '0' && key[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* Appends at most KEY_SHOWN_BYTES of key in quotes, escaping what would not
 * be printable or valid UTF-8 in a message. */
static void
path_append_quoted_key(struct text *t, const char *key, size_t len)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t at = 0;

	text_append(t, "[\"", 2);
	while (at < len && at < KEY_SHOWN_BYTES) {
		size_t n = s[at] >= 0x80 ? utf8_sequence_length(s + at, len - at) : 1;
		if (s[at] == '"' || s[at] == '\\') {
			char escape[2] = { '\\', key[at] };
			text_append(t, escape, 2);
		} else if (n == 0 || s[at] < 0x20 || s[at] == 0x7f) {
			char escape[4] = { '\\', 'x', hex_digits[s[at] >> 4],
			    hex_digits[s[at] & 15] };
			text_append(t, escape, 4);
			n = 1;
		} else {
			text_append(t, key + at, n);
		}
		at += n;
	}
	if (at < len)
		text_append(t, "...", 3);
	text_append(t, "\"]", 2);
}

/* Writes the path of `at`, root first: result.items[3]["a b"].  Indexes
 * are 1-based, as the script sees them, not 0-based as in the JSON. */
static void
path_append(struct text *t, const struct step *at)
{
	char number[NUMBER_TEXT_SIZE];

	if (at->parent == NULL) {
		text_append(t, at->key, at->key_len);
		return;
	}
	path_append(t, at->parent);
	if (at->key == NULL) {
		size_t len = format_number(at->index, number);
		text_append(t, "[", 1);
		text_append(t, number, len);
		text_append(t, "]", 1);
	} else if (key_is_identifier(at->key, at->key_len) &&
	    at->key_len <= KEY_SHOWN_BYTES) {
		text_append(t, ".", 1);
		text_append(t, at->key, at->key_len);
	} else {
		path_append_quoted_key(t, at->key, at->key_len);
	}
}

/* Fills err with "path: message". */
static void
fail_at(char *err, size_t errlen, const struct step *at, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static void
fail_at(char *err, size_t errlen, const struct step *at, const char *format, ...)
{
	char path[PATH_TEXT_SIZE], message[128];
	/* Half of err at most for the path, three bytes kept for "...". */
	size_t room = errlen / 2 < sizeof(path) ? errlen / 2 : sizeof(path);
	struct text t = { path, 0, room > 8 ? room - 3 : 5, 0 };
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	path[0] = '\0';
	path_append(&t, at);
	if (t.truncated)
		memcpy(path + t.len, "...", 4);
	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", path, message);
}

static void
push_array_marker(lua_State *L)
{
	lua_pushlightuserdata(L, &array_marker_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
}

void
vm_json_push_array_marker(lua_State *L)
{
	push_array_marker(L);
}

/* Lua to JSON ------------------------------------------------------------ */

static enum vm_json_result encode_value(struct encoder *e, int index,
    const struct step *at, unsigned depth);

static enum vm_json_result
put(struct encoder *e, const char *s, size_t len)
{
	return buffer_append(e->out, s, len) == 0 ? VM_JSON_OK : VM_JSON_TOO_LARGE;
}

static enum vm_json_result
put_char(struct encoder *e, char c)
{
	return buffer_append_char(e->out, c) == 0 ? VM_JSON_OK : VM_JSON_TOO_LARGE;
}

/* Writes the escape of c: quotes, backslashes and control characters. */
static int
append_escape(struct buffer *out, unsigned char c)
{
	/* Pairs of a character and the letter of its two-character escape. */
	static const char short_forms[] = "\"\"\\\\\bb\ff\nn\rr\tt";
	char escape[6] = { '\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15] };

	for (const char *form = short_forms; *form != '\0'; form += 2) {
		if ((unsigned char)form[0] == c) {
			escape[1] = form[1];
			return buffer_append(out, escape, 2);
		}
	}
	return buffer_append(out, escape, 6);
}

/*
 * Appends s as a JSON string: quotes, backslashes and control characters
 * escaped, everything else (valid UTF-8 included) copied in runs.  Returns
 * VM_JSON_NOT_SERIALIZABLE, without filling any message, for invalid UTF-8.
 */
static enum vm_json_result
append_string(struct buffer *out, const char *s, size_t len)
{
	const unsigned char *bytes = (const unsigned char *)s;
	size_t at = 0, run = 0;

	/* The text is at least this long, so failing here is no false alarm,
	 * and most strings then need no further growth. */
	if (buffer_reserve(out, len + 2) == -1 || buffer_append_char(out, '"') == -1)
		return VM_JSON_TOO_LARGE;
	while (at < len) {
		unsigned char kind = byte_kind[bytes[at]];
		if (kind == 0) {
			at++;
		} else if (kind == 2) {
			size_t n = utf8_sequence_length(bytes + at, len - at);
			if (n == 0)
				return VM_JSON_NOT_SERIALIZABLE;
			at += n;
		} else {
			if (buffer_append(out, s + run, at - run) == -1 ||
			    append_escape(out, bytes[at]) == -1)
				return VM_JSON_TOO_LARGE;
			run = ++at;
		}
	}
	if (buffer_append(out, s + run, at - run) == -1 ||
	    buffer_append_char(out, '"') == -1)
		return VM_JSON_TOO_LARGE;
	return VM_JSON_OK;
}

static enum vm_json_result
encode_number(struct encoder *e, double x, const struct step *at)
{
	char number[NUMBER_TEXT_SIZE];
	size_t len = format_number(x, number);

	if (len == 0) {
		fail_at(e->err, e->errlen, at, "%s is not JSON", describe_non_finite(x));
		return VM_JSON_NOT_SERIALIZABLE;
	}
	return put(e, number, len);
}

static enum vm_json_result
encode_string(struct encoder *e, int index, const struct step *at)
{
	size_t len;
	const char *s = lua_tolstring(e->L, index, &len);
	enum vm_json_result result = append_string(e->out, s, len);

	if (result == VM_JSON_NOT_SERIALIZABLE)
		fail_at(e->err, e->errlen, at, "string is not valid UTF-8");
	return result;
}

/*
 * True when the keys of the table are exactly 1..n, n being its length
 * (n = 0: no keys at all).  Reads the keys in place without converting.
 */
static int
keys_are_sequence(lua_State *L, int table, size_t n)
{
	size_t count = 0;

	lua_pushnil(L);
	while (lua_next(L, table) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TNUMBER)
			goto fail;
		double key = lua_tonumber(L, -1);
		if (!(key >= 1 && key <= (double)n && key == floor(key)))
			goto fail;
		count++;
	}
	return count == n;

fail:
	lua_pop(L, 1);
	return 0;
}

static int
has_array_marker(struct encoder *e, int table)
{
	if (lua_getmetatable(e->L, table) == 0)
		return 0;
	int marked = lua_rawequal(e->L, -1, e->marker);
	lua_pop(e->L, 1);
	return marked;
}

static enum vm_json_result
encode_array(struct encoder *e, int table, size_t n, const struct step *at,
    unsigned depth)
{
	enum vm_json_result result = put_char(e, '[');
	struct step element = { at, lua_topointer(e->L, table), NULL, 0, 0 };

	for (size_t i = 1; i <= n && result == VM_JSON_OK; i++) {
		if (i > 1 && (result = put_char(e, ',')) != VM_JSON_OK)
			break;
		lua_rawgeti(e->L, table, (int)i);
		element.index = (double)i;
		result = encode_value(e, lua_gettop(e->L), &element, depth);
		lua_pop(e->L, 1);
	}
	return result == VM_JSON_OK ? put_char(e, ']') : result;
}

/* Writes the key at `index` followed by ':' and records it in `member` for
 * error paths.  The key is read, never converted, so lua_next can go on. */
static enum vm_json_result
encode_key(struct encoder *e, int index, const struct step *at, struct step *member)
{
	char number[NUMBER_TEXT_SIZE];
	enum vm_json_result result;
	int type = lua_type(e->L, index);

	if (type == LUA_TSTRING) {
		member->key = lua_tolstring(e->L, index, &member->key_len);
		result = append_string(e->out, member->key, member->key_len);
		if (result == VM_JSON_NOT_SERIALIZABLE)
			fail_at(e->err, e->errlen, at, "table key is not valid UTF-8");
	} else if (type == LUA_TNUMBER) {
		member->key = NULL;
		member->index = lua_tonumber(e->L, index);
		size_t len = format_number(member->index, number);
		if (len == 0) {
			fail_at(e->err, e->errlen, at, "table key %s is not JSON",
			    describe_non_finite(member->index));
			return VM_JSON_NOT_SERIALIZABLE;
		}
		result = put_char(e, '"');
		if (result == VM_JSON_OK)
			result = put(e, number, len);
		if (result == VM_JSON_OK)
			result = put_char(e, '"');
	} else {
		fail_at(e->err, e->errlen, at, "table key of type %s is not JSON",
		    lua_typename(e->L, type));
		return VM_JSON_NOT_SERIALIZABLE;
	}
	return result == VM_JSON_OK ? put_char(e, ':') : result;
}

/* On error the iteration's key and value stay on the stack; the caller
 * resets the stack. */
static enum vm_json_result
encode_object(struct encoder *e, int table, const struct step *at, unsigned depth)
{
	enum vm_json_result result = put_char(e, '{');
	struct step member = { at, lua_topointer(e->L, table), NULL, 0, 0 };
	int first = 1;

	lua_pushnil(e->L);
	while (result == VM_JSON_OK && lua_next(e->L, table) != 0) {
		if (!first && (result = put_char(e, ',')) != VM_JSON_OK)
			break;
		first = 0;
		int value = lua_gettop(e->L);
		result = encode_key(e, value - 1, at, &member);
		if (result == VM_JSON_OK)
			result = encode_value(e, value, &member, depth);
		lua_pop(e->L, 1);
	}
	return result == VM_JSON_OK ? put_char(e, '}') : result;
}

static enum vm_json_result
encode_table(struct encoder *e, int table, const struct step *at, unsigned depth)
{
	const void *self = lua_topointer(e->L, table);

	if (depth + 1 > e->max_depth) {
		fail_at(e->err, e->errlen, at, "nesting deeper than %u", e->max_depth);
		return VM_JSON_NOT_SERIALIZABLE;
	}
	for (const struct step *s = at; s != NULL; s = s->parent) {
		if (s->table == self) {
			fail_at(e->err, e->errlen, at, "cycle");
			return VM_JSON_NOT_SERIALIZABLE;
		}
	}
	/* Key and value kept per level, and at most two more while looking. */
	if (!lua_checkstack(e->L, 4)) {
		fail_at(e->err, e->errlen, at, "nesting too deep for the Lua stack");
		return VM_JSON_NOT_SERIALIZABLE;
	}
	size_t n = lua_objlen(e->L, table);
	if ((n > 0 || has_array_marker(e, table)) && keys_are_sequence(e->L, table, n))
		return encode_array(e, table, n, at, depth + 1);
	return encode_object(e, table, at, depth + 1);
}

/* `depth` counts the tables around the value. */
static enum vm_json_result
encode_value(struct encoder *e, int index, const struct step *at, unsigned depth)
{
	int type = lua_type(e->L, index);

	switch (type) {
	case LUA_TNONE:
	case LUA_TNIL:
		return put(e, "null", 4);
	case LUA_TBOOLEAN:
		return lua_toboolean(e->L, index) ? put(e, "true", 4) : put(e, "false", 5);
	case LUA_TNUMBER:
		return encode_number(e, lua_tonumber(e->L, index), at);
	case LUA_TSTRING:
		return encode_string(e, index, at);
	case LUA_TTABLE:
		return encode_table(e, index, at, depth);
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(e->L, index) == NULL)
			return put(e, "null", 4);
		break;
	default:
		break;
	}
	fail_at(e->err, e->errlen, at, "%s is not JSON", lua_typename(e->L, type));
	return VM_JSON_NOT_SERIALIZABLE;
}

enum vm_json_result
vm_json_encode(lua_State *L, int index, struct buffer *out, const char *root,
    unsigned max_depth, char *err, size_t errlen)
{
	int top = lua_gettop(L);
	size_t start = out->len;
	struct encoder e = { L, out, top + 1, max_depth, err, errlen };
	struct step at = { NULL, NULL, root ? root : "value", 0, 0 };
	enum vm_json_result result;

	at.key_len = strlen(at.key);
	if (index < 0 && index > LUA_REGISTRYINDEX)
		index = top + index + 1;
	if (!lua_checkstack(L, 2)) {
		fail_at(err, errlen, &at, "Lua stack exhausted");
		return VM_JSON_NOT_SERIALIZABLE;
	}
	push_array_marker(L);
	result = encode_value(&e, index, &at, 0);
	lua_settop(L, top);
	if (result == VM_JSON_OK)
		return VM_JSON_OK;
	if (result == VM_JSON_TOO_LARGE && err != NULL && errlen > 0) {
		if (out->limit > 0)
			snprintf(err, errlen, "%s: JSON text larger than %zu bytes",
			    at.key, out->limit);
		else
			snprintf(err, errlen, "%s: out of memory for the JSON text", at.key);
	}
	out->len = start;
	return result;
}

/* JSON to Lua ------------------------------------------------------------ */

static int push_item(struct pusher *p, const cJSON *item, const struct step *at,
    unsigned depth);

static int
count_children(const cJSON *item)
{
	int count = 0;

	for (const cJSON *child = item->child; child != NULL; child = child->next)
		count++;
	return count;
}

static int
enter_container(struct pusher *p, const struct step *at, unsigned depth)
{
	if (depth + 1 > p->max_depth) {
		fail_at(p->err, p->errlen, at, "nesting deeper than %u", p->max_depth);
		return -1;
	}
	if (!lua_checkstack(p->L, 3)) {
		fail_at(p->err, p->errlen, at, "nesting too deep for the Lua stack");
		return -1;
	}
	return 0;
}

static int
push_array(struct pusher *p, const cJSON *array, const struct step *at, unsigned depth)
{
	struct step element = { at, NULL, NULL, 0, 0 };
	int i = 0;

	if (enter_container(p, at, depth) == -1)
		return -1;
	lua_createtable(p->L, count_children(array), 0);
	lua_pushvalue(p->L, p->marker);
	lua_setmetatable(p->L, -2);
	for (const cJSON *child = array->child; child != NULL; child = child->next) {
		element.index = ++i;
		if (push_item(p, child, &element, depth + 1) == -1)
			return -1;
		lua_rawseti(p->L, -2, i);
	}
	return 0;
}

static int
push_object(struct pusher *p, const cJSON *object, const struct step *at, unsigned depth)
{
	struct step member = { at, NULL, NULL, 0, 0 };

	if (enter_container(p, at, depth) == -1)
		return -1;
	lua_createtable(p->L, 0, count_children(object));
	for (const cJSON *child = object->child; child != NULL; child = child->next) {
		member.key = child->string ? child->string : "";
		member.key_len = strlen(member.key);
		lua_pushlstring(p->L, member.key, member.key_len);
		if (push_item(p, child, &member, depth + 1) == -1)
			return -1;
		lua_rawset(p->L, -3);
	}
	return 0;
}

/* On error the partly built tables stay on the stack; the caller resets
 * the stack. */
static int
push_item(struct pusher *p, const cJSON *item, const struct step *at, unsigned depth)
{
	switch (item->type & 0xff) {
	case cJSON_NULL:
		lua_pushlightuserdata(p->L, NULL);
		return 0;
	case cJSON_False:
		lua_pushboolean(p->L, 0);
		return 0;
	case cJSON_True:
		lua_pushboolean(p->L, 1);
		return 0;
	case cJSON_Number:
		lua_pushnumber(p->L, item->valuedouble);
		return 0;
	case cJSON_String:
		lua_pushstring(p->L, item->valuestring ? item->valuestring : "");
		return 0;
	case cJSON_Array:
		return push_array(p, item, at, depth);
	case cJSON_Object:
		return push_object(p, item, at, depth);
	default:
		fail_at(p->err, p->errlen, at, "not a JSON value (cJSON type %d)",
		    item->type & 0xff);
		return -1;
	}
}

int
vm_json_push(lua_State *L, const cJSON *item, const char *root, unsigned max_depth,
    char *err, size_t errlen)
{
	int top = lua_gettop(L);
	struct pusher p = { L, top + 1, max_depth, err, errlen };
	struct step at = { NULL, NULL, root ? root : "value", 0, 0 };

	at.key_len = strlen(at.key);
	if (!lua_checkstack(L, 3)) {
		fail_at(err, errlen, &at, "Lua stack exhausted");
		return -1;
	}
	push_array_marker(L);
	if (item == NULL)
		lua_pushlightuserdata(L, NULL);
	else if (push_item(&p, item, &at, 0) == -1)
		goto fail;
	lua_remove(L, top + 1);
	return 0;

fail:
	lua_settop(L, top);
	return -1;
}

/* The json table --------------------------------------------------------- */

static int
release_scratch(lua_State *L)
{
	struct scratch *s = lua_touserdata(L, 1);

	buffer_free(&s->text);
	return 0;
}

static struct scratch *
push_scratch(lua_State *L, size_t text_limit)
{
	struct scratch *s = lua_newuserdata(L, sizeof(*s));

	buffer_init(&s->text, text_limit);
	lua_pushlightuserdata(L, &scratch_metatable_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	lua_setmetatable(L, -2);
	return s;
}

static unsigned
helper_max_depth(lua_State *L)
{
	return (unsigned)lua_tonumber(L, lua_upvalueindex(1));
}

/* json.encode(v): the JSON text of v; raises "value.a: ... is not JSON". */
static int
helper_encode(lua_State *L)
{
	char err[256];

	luaL_checkany(L, 1);
	lua_settop(L, 1);
	struct scratch *s = push_scratch(L, HELPER_TEXT_LIMIT);
	if (vm_json_encode(L, 1, &s->text, "value", helper_max_depth(L), err,
	    sizeof(err)) != VM_JSON_OK) {
		buffer_free(&s->text);
		return luaL_error(L, "%s", err);
	}
	lua_pushlstring(L, s->text.data, s->text.len);
	buffer_free(&s->text);
	return 1;
}

/* json.decode(s): the Lua value of the JSON text s; raises on bad JSON. */
static int
helper_decode(lua_State *L)
{
	char err[256];
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);

	if (vm_json_decode(L, text, len, helper_max_depth(L), err, sizeof(err)) == -1)
		return luaL_error(L, "%s", err);
	return 1;
}

/* The shared metatable of decoded arrays.  Its __metatable field hides and
 * locks it, so that no script can change how another script's arrays
 * behave in this long-lived state. */
static void
create_array_marker(lua_State *L)
{
	lua_pushlightuserdata(L, &array_marker_key);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "json array");
	lua_setfield(L, -2, "__metatable");
	lua_rawset(L, LUA_REGISTRYINDEX);
}

static void
create_scratch_metatable(lua_State *L)
{
	lua_pushlightuserdata(L, &scratch_metatable_key);
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, release_scratch);
	lua_setfield(L, -2, "__gc");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_rawset(L, LUA_REGISTRYINDEX);
}

static void
set_helper(lua_State *L, const char *name, lua_CFunction helper, unsigned max_depth)
{
	lua_pushnumber(L, max_depth);
	lua_pushcclosure(L, helper, 1);
	lua_setfield(L, -2, name);
}

void
vm_json_open(lua_State *L, unsigned max_depth)
{
	create_array_marker(L);
	create_scratch_metatable(L);
	lua_createtable(L, 0, 3);
	set_helper(L, "encode", helper_encode, max_depth);
	set_helper(L, "decode", helper_decode, max_depth);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
}
