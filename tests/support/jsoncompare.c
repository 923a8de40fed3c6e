/*
 * jsoncompare.c - the differential oracle of the decoder tests: compares
 * vm_json_decode with json_parse + jsonpush_tree on a text, allowing only
 * the differences src/vm/vm_json_decode.c documents (see jsoncompare.h).
 * Used by tests/vm/test_decode.c and the libFuzzer harness tests/vm/fuzz_decode.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lua.h>

#include "support/json.h"
#include "support/jsoncompare.h"
#include "support/jsonpush.h"
#include "vm/vm_json_decode.h"



static int
unequal(struct jsoncompare *cmp, const char *why)
{
	snprintf(cmp->why, sizeof(cmp->why), "%s", why);
	return 0;
}

/* Strings are equal when they are, or when b holds a NUL and a is what
 * comes before it: the tree path pushes a C string. */
static int
strings_equal(lua_State *L, int a, int b, struct jsoncompare *cmp)
{
	size_t la, lb;
	const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
	const char *nul = memchr(sb, '\0', lb);

	if (la == lb && memcmp(sa, sb, la) == 0)
		return 1;
	if (nul != NULL && (size_t)(nul - sb) == la && memcmp(sa, sb, la) == 0) {
		cmp->nul_strings++;
		return 1;
	}
	snprintf(cmp->why, sizeof(cmp->why), "strings \"%.40s\" and \"%.40s\" (%zu, %zu bytes)",
	    sa, sb, la, lb);
	return 0;
}

static int
count_keys(lua_State *L, int table, int *nul_key)
{
	int count = 0;

	lua_pushnil(L);
	while (lua_next(L, table) != 0) {
		size_t len;
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING) {
			const char *key = lua_tolstring(L, -1, &len);
			if (memchr(key, '\0', len) != NULL)
				*nul_key = 1;
		}
		count++;
	}
	return count;
}

static int
tables_equal(lua_State *L, int a, int b, struct jsoncompare *cmp)
{
	int nul_key = 0, count_a, count_b, equal = 1;

	if (!lua_checkstack(L, 8))
		return unequal(cmp, "Lua stack exhausted");
	int meta_a = lua_getmetatable(L, a), meta_b = lua_getmetatable(L, b);
	if (meta_a != meta_b || (meta_a && !lua_rawequal(L, -1, -2)))
		equal = unequal(cmp, "one is an array, the other an object");
	lua_pop(L, meta_a + meta_b);
	if (!equal)
		return 0;
	count_b = count_keys(L, b, &nul_key);
	if (nul_key) {
		/* The tree path cut such keys, possibly into duplicates. */
		cmp->nul_keys++;
		return 1;
	}
	count_a = count_keys(L, a, &nul_key);
	if (count_a != count_b)
		return unequal(cmp, "tables of different sizes");
	lua_pushnil(L);
	while (equal && lua_next(L, a) != 0) {
		int value_a = lua_gettop(L);
		lua_pushvalue(L, -2);
		lua_rawget(L, b);
		equal = lua_isnil(L, -1) ? unequal(cmp, "a key is missing") :
		    jsoncompare_values(L, value_a, value_a + 1, cmp);
		lua_pop(L, 2);
	}
	if (!equal)
		lua_pop(L, 1);
	return equal;
}

/* Deep equality; numbers bit for bit (so -0 is not 0). */
int
jsoncompare_values(lua_State *L, int a, int b, struct jsoncompare *cmp)
{
	double x, y;

	if (lua_type(L, a) != lua_type(L, b))
		return unequal(cmp, "values of different types");
	switch (lua_type(L, a)) {
	case LUA_TNUMBER:
		x = lua_tonumber(L, a);
		y = lua_tonumber(L, b);
		if (memcmp(&x, &y, sizeof(x)) == 0)
			return 1;
		snprintf(cmp->why, sizeof(cmp->why), "numbers %.17g and %.17g", x, y);
		return 0;
	case LUA_TSTRING:
		return strings_equal(L, a, b, cmp);
	case LUA_TTABLE:
		return tables_equal(L, a, b, cmp);
	case LUA_TBOOLEAN:
		return lua_toboolean(L, a) == lua_toboolean(L, b) ? 1 :
		    unequal(cmp, "booleans");
	case LUA_TLIGHTUSERDATA:
		return lua_touserdata(L, a) == lua_touserdata(L, b) ? 1 :
		    unequal(cmp, "light userdata");
	default:
		return unequal(cmp, "values of an unexpected type");
	}
}

/* The documented strictness -------------------------------------------- */


const char *const jsoncompare_strictness_names[JSONCOMPARE_KINDS] = {
	"not documented", "control character", "invalid UTF-8", "bad \\u digit",
	"number form", "number out of range",
};

/* The byte offset of a "line L, column C" in err, or -1. */
static long
error_offset(const char *text, size_t len, const char *err)
{
	const char *at = strstr(err, " at line ");
	unsigned long line, column, current = 1;
	size_t offset = 0;

	if (at == NULL || sscanf(at, " at line %lu, column %lu", &line, &column) != 2)
		return -1;
	while (current < line && offset < len)
		if (text[offset++] == '\n')
			current++;
	offset += column - 1;
	return offset < len ? (long)offset : -1;
}

static int
is_number_byte(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' ||
	    c == 'E';
}

/* The forms strtod reads and RFC 8259 does not, in the run of number bytes
 * around `offset`. */
static int
is_lenient_number(const char *text, size_t len, size_t offset)
{
	size_t start = offset, end = offset;

	while (start > 0 && is_number_byte(text[start - 1]))
		start--;
	while (end < len && is_number_byte(text[end]))
		end++;
	if (end - start < 2)
		return 0;
	const char *n = text + start + (text[start] == '-');
	if (n[0] == '0' && n + 1 < text + end && n[1] >= '0' && n[1] <= '9')
		return 1;		/* leading zero */
	if (n[0] == '.')
		return 1;		/* "-.5" */
	for (const char *c = n; c < text + end; c++)
		if (*c == '.' && (c + 1 == text + end || !(c[1] >= '0' && c[1] <= '9')))
			return 1;	/* "1.", "1.e5" */
	return 0;
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

enum jsoncompare_strictness
jsoncompare_refusal(const char *text, size_t len, const char *err)
{
	long found = error_offset(text, len, err);

	if (found < 0)
		return JSONCOMPARE_NOT_DOCUMENTED;
	size_t at = (size_t)found;
	unsigned char c = (unsigned char)text[at];
	if (strncmp(err, "JSON number out of range", 24) == 0) {
		/* The whole number: its exponent may come late. */
		char *copy = malloc(len - at + 1);
		size_t n = 0;
		if (copy == NULL)
			return JSONCOMPARE_NOT_DOCUMENTED;
		while (at + n < len && is_number_byte(text[at + n])) {
			copy[n] = text[at + n];
			n++;
		}
		copy[n] = '\0';
		int overflows = isinf(strtod(copy, NULL));
		free(copy);
		return overflows ? JSONCOMPARE_NUMBER_OUT_OF_RANGE : JSONCOMPARE_NOT_DOCUMENTED;
	}
	if (strncmp(err, "invalid JSON", 12) != 0)
		return JSONCOMPARE_NOT_DOCUMENTED;
	if (c < 0x20)
		return JSONCOMPARE_CONTROL_CHARACTER;
	if (c >= 0x80)
		return JSONCOMPARE_INVALID_UTF8;
	if (c == '\\' && at + 5 < len && text[at + 1] == 'u' && !(is_hex(text[at + 2]) &&
	    is_hex(text[at + 3]) && is_hex(text[at + 4]) && is_hex(text[at + 5])))
		return JSONCOMPARE_BAD_HEX_ESCAPE;
	if (is_lenient_number(text, len, at))
		return JSONCOMPARE_NUMBER_FORM;
	return JSONCOMPARE_NOT_DOCUMENTED;
}

/* The differential check ------------------------------------------------- */


int
jsoncompare_paths(lua_State *L, const char *text, size_t len, unsigned max_depth,
    struct jsoncompare_tally *t)
{
	char err_tree[256] = "", err_direct[256] = "";
	int top = lua_gettop(L), rc = 0;
	cJSON *tree = json_parse(text, len, max_depth, err_tree, sizeof(err_tree));
	int tree_ok = tree != NULL && jsonpush_tree(L, tree, "value", max_depth,
	    err_tree, sizeof(err_tree)) == 0;
	int direct_ok = vm_json_decode(L, text, len, max_depth, err_direct,
	    sizeof(err_direct)) == 0;

	cJSON_Delete(tree);
	t->documents++;
	if (lua_gettop(L) != top + tree_ok + direct_ok) {
		snprintf(t->cmp.why, sizeof(t->cmp.why), "the Lua stack is off");
		rc = -1;
	} else if (tree_ok && direct_ok) {
		t->both_accepted++;
		rc = jsoncompare_values(L, top + 1, top + 2, &t->cmp) ? 0 : -1;
	} else if (!tree_ok && !direct_ok) {
		t->both_refused++;
	} else if (direct_ok) {
		snprintf(t->cmp.why, sizeof(t->cmp.why),
		    "decoder accepts what json_parse refuses (%s)", err_tree);
		rc = -1;
	} else {
		enum jsoncompare_strictness why = jsoncompare_refusal(text, len, err_direct);
		if (why == JSONCOMPARE_NOT_DOCUMENTED) {
			snprintf(t->cmp.why, sizeof(t->cmp.why),
			    "decoder refuses (%s) what json_parse accepts", err_direct);
			rc = -1;
		}
		t->stricter[why]++;
	}
	lua_settop(L, top);
	return rc;
}
