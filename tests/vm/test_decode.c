/*
 * test_decode.c - vm_json_decode, the direct JSON text to Lua decoder:
 * every type, escape and refusal, the limits, out of memory, and a seeded
 * differential test against json_parse + jsonpush_tree on random documents
 * and on random mutations of them.  The differences the decoder may have
 * (see the top of src/vm/vm_json_decode.c) are allowed in one direction only:
 * it may refuse, for a documented reason, what cJSON accepts, and it keeps
 * \u0000 as a NUL byte where the tree path cuts the string.  Also prints
 * (never asserts) the time of both paths for a 66 KiB context.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "common/buffer.h"
#include "support/json.h"
#include "support/jsoncompare.h"
#include "support/jsongen.h"
#include "support/jsonpush.h"
#include "vm/vm_json.h"
#include "vm/vm_json_common.h"
#include "vm/vm_json_decode.h"
#include "vm/vm_json_encode.h"

#define MAX_DEPTH		256
/* Small, so that random documents reach it. */
#define DIFFERENTIAL_DEPTH	12
#define RANDOM_DOCUMENTS	20000
#define MUTANTS_PER_DOCUMENT	2

/* Helpers ---------------------------------------------------------------- */

static lua_State *
new_state(void)
{
	lua_State *L = luaL_newstate();

	ck_assert_ptr_nonnull(L);
	luaL_openlibs(L);
	vm_json_open(L, MAX_DEPTH);
	lua_setglobal(L, "json");
	return L;
}

static void
run_lua(lua_State *L, const char *code)
{
	if (luaL_dostring(L, code) != 0)
		ck_abort_msg("Lua failed: %s", lua_tostring(L, -1));
}

/* Decodes text into the global v. */
static void
decode_to_global(lua_State *L, const char *text, size_t len)
{
	char err[256] = "";

	if (vm_json_decode(L, text, len, MAX_DEPTH, err, sizeof(err)) != 0)
		ck_abort_msg("%.*s: %s", (int)len, text, err);
	lua_setglobal(L, "v");
}

/* Decodes json, runs the Lua assertions in `check` on v. */
static void
assert_decoded(const char *json, const char *check)
{
	lua_State *L = new_state();

	decode_to_global(L, json, strlen(json));
	ck_assert_int_eq(lua_gettop(L), 0);
	run_lua(L, check);
	lua_close(L);
}

/* Decodes json and encodes the value again: the text must be `expected`. */
static void
assert_decodes_to(const char *json, const char *expected)
{
	size_t len = strlen(json);
	lua_State *L = new_state();
	struct buffer out;
	char err[256] = "";

	buffer_init(&out, 0);
	ck_assert_msg(vm_json_decode(L, json, len, MAX_DEPTH, err, sizeof(err)) == 0,
	    "%s: %s", json, err);
	ck_assert_msg(vm_json_encode(L, -1, &out, "value", MAX_DEPTH, err, sizeof(err)) ==
	    VM_JSON_OK, "%s: %s", json, err);
	char *text = buffer_steal(&out, NULL);
	ck_assert_str_eq(text, expected);
	free(text);
	lua_close(L);
}

static void
assert_decode_fails_with_depth(const char *json, size_t len, unsigned max_depth,
    const char *message)
{
	lua_State *L = new_state();
	char err[256] = "";

	lua_pushinteger(L, 7);
	ck_assert_msg(vm_json_decode(L, json, len, max_depth, err, sizeof(err)) == -1,
	    "%.*s should fail", (int)len, json);
	ck_assert_str_eq(err, message);
	ck_assert_int_eq(lua_gettop(L), 1);
	ck_assert_int_eq(lua_tointeger(L, 1), 7);
	lua_close(L);
}

static void
assert_decode_fails(const char *json, const char *message)
{
	assert_decode_fails_with_depth(json, strlen(json), MAX_DEPTH, message);
}

/* Fails for every text in the list, with an "invalid JSON" message. */
static void
assert_all_invalid(const char *const *texts, size_t count)
{
	lua_State *L = new_state();
	char err[256];

	for (size_t i = 0; i < count; i++) {
		err[0] = '\0';
		ck_assert_msg(vm_json_decode(L, texts[i], strlen(texts[i]), MAX_DEPTH, err,
		    sizeof(err)) == -1, "%s should fail", texts[i]);
		ck_assert_msg(strncmp(err, "invalid JSON at line ", 21) == 0, "%s: %s",
		    texts[i], err);
		ck_assert_int_eq(lua_gettop(L), 0);
	}
	lua_close(L);
}

#define COUNT(a)	(sizeof(a) / sizeof((a)[0]))

/* Both paths on text; fails the test on any disagreement not documented.
 * No Check assertion on the way: each one that passes costs a write. */
static void
expect_paths_agree(lua_State *L, const char *text, size_t len, struct jsoncompare_tally *t)
{
	if (jsoncompare_paths(L, text, len, DIFFERENTIAL_DEPTH, t) == -1)
		ck_abort_msg("%s: %.*s", t->cmp.why, (int)len, text);
}

static void
print_tally(const char *what, const struct jsoncompare_tally *t)
{
	printf("differential %s: %lu documents, %lu accepted by both, %lu refused by both",
	    what, t->documents, t->both_accepted, t->both_refused);
	for (int i = 1; i < JSONCOMPARE_KINDS; i++)
		printf(", %lu stricter (%s)", t->stricter[i], jsoncompare_strictness_names[i]);
	printf("; \\u0000 kept in %lu strings, %lu tables with NUL keys not compared\n",
	    t->cmp.nul_strings, t->cmp.nul_keys);
}

START_TEST(decoder_should_match_the_tree_path_on_random_documents)
{
	struct jsongen g = { 0x2545f4914f6cdd1dULL, NULL };
	struct buffer doc;
	struct jsoncompare_tally t;
	lua_State *L = new_state();

	memset(&t, 0, sizeof(t));
	buffer_init(&doc, 0);
	g.out = &doc;
	for (int i = 0; i < RANDOM_DOCUMENTS; i++) {
		jsongen_document(&g);
		expect_paths_agree(L, doc.data, doc.len, &t);
	}
	print_tally("of valid documents", &t);
	/* Every one is valid JSON: only the depth may refuse one. */
	for (int i = 1; i < JSONCOMPARE_KINDS; i++)
		ck_assert_uint_eq(t.stricter[i], 0);
	ck_assert_uint_gt(t.both_accepted, RANDOM_DOCUMENTS * 8 / 10);
	ck_assert_uint_gt(t.both_refused, 0);
	ck_assert_uint_gt(t.cmp.nul_strings, 0);
	buffer_free(&doc);
	lua_close(L);
}
END_TEST

START_TEST(decoder_should_match_the_tree_path_on_mutated_documents)
{
	struct jsongen g = { 0x9e3779b97f4a7c15ULL, NULL };
	struct buffer doc, mutant;
	struct jsoncompare_tally t;
	lua_State *L = new_state();

	memset(&t, 0, sizeof(t));
	buffer_init(&doc, 0);
	buffer_init(&mutant, 0);
	g.out = &doc;
	for (int i = 0; i < RANDOM_DOCUMENTS; i++) {
		jsongen_document(&g);
		for (int m = 0; m < MUTANTS_PER_DOCUMENT; m++) {
			jsongen_mutate(&g, &doc, &mutant);
			expect_paths_agree(L, mutant.data, mutant.len, &t);
		}
	}
	print_tally("of mutated documents", &t);
	ck_assert_uint_gt(t.both_accepted, 0);
	ck_assert_uint_gt(t.both_refused, 0);
	for (int i = 1; i < JSONCOMPARE_KINDS - 1; i++)
		ck_assert_msg(t.stricter[i] > 0, "no mutant found the %s difference",
		    jsoncompare_strictness_names[i]);
	buffer_free(&doc);
	buffer_free(&mutant);
	lua_close(L);
}
END_TEST

/* Every type ------------------------------------------------------------- */

START_TEST(decode_should_convert_every_json_type)
{
	assert_decoded("{\"s\":\"x\",\"n\":1.5,\"i\":-7,\"t\":true,\"f\":false,"
	    "\"z\":null,\"a\":[1,\"b\"],\"o\":{\"k\":{}},\"e\":[]}",
	    "assert(v.s == 'x' and v.n == 1.5 and v.i == -7)\n"
	    "assert(v.t == true and v.f == false)\n"
	    "assert(v.z == json.null and type(v.z) == 'userdata')\n"
	    "assert(#v.a == 2 and v.a[1] == 1 and v.a[2] == 'b')\n"
	    "assert(type(v.o.k) == 'table' and next(v.o.k) == nil)\n"
	    "assert(#v.e == 0 and getmetatable(v.e) == 'json array')\n"
	    "assert(getmetatable(v.a) == 'json array' and getmetatable(v.o) == nil)\n");
	assert_decoded("\"just a string\"", "assert(v == 'just a string')");
	assert_decoded(" -12.5e-3 ", "assert(v == -0.0125)");
	assert_decoded("true", "assert(v == true)");
	assert_decoded("false", "assert(v == false)");
	assert_decoded("null", "assert(v == json.null)");
	assert_decoded("\"\"", "assert(v == '')");
}
END_TEST

START_TEST(decode_should_keep_the_marker_on_empty_arrays)
{
	assert_decodes_to("[]", "[]");
	assert_decodes_to("{}", "{}");
	assert_decodes_to("[[],[[]],{}]", "[[],[[]],{}]");
	assert_decodes_to(" [ ] ", "[]");
	assert_decoded("{\"a\":[],\"b\":{}}",
	    "assert(getmetatable(v.a) == 'json array' and getmetatable(v.b) == nil)\n"
	    "assert(json.encode(v.a) == '[]' and json.encode(v.b) == '{}')");
}
END_TEST

START_TEST(decode_should_share_the_marker_of_vm_json)
{
	lua_State *L = new_state();
	char err[256];
	cJSON *tree = json_parse("[]", 2, MAX_DEPTH, err, sizeof(err));

	ck_assert_int_eq(vm_json_decode(L, "[]", 2, MAX_DEPTH, err, sizeof(err)), 0);
	ck_assert_int_eq(jsonpush_tree(L, tree, "value", MAX_DEPTH, err, sizeof(err)), 0);
	lua_getmetatable(L, 1);
	lua_getmetatable(L, 2);
	vm_json_common_push_array_marker(L);
	ck_assert(lua_istable(L, -1));
	ck_assert(lua_rawequal(L, -1, -2) && lua_rawequal(L, -1, -3));
	cJSON_Delete(tree);
	lua_close(L);
}
END_TEST

START_TEST(decode_should_keep_nulls_in_arrays_and_objects)
{
	assert_decodes_to("[1,null,3]", "[1,null,3]");
	assert_decodes_to("{\"a\":null}", "{\"a\":null}");
	assert_decodes_to("[null]", "[null]");
	assert_decoded("[null,null]", "assert(#v == 2 and v[1] == json.null and v[2] == json.null)");
}
END_TEST

START_TEST(decode_should_let_the_last_duplicate_key_win)
{
	assert_decoded("{\"a\":1,\"b\":2,\"a\":3}", "assert(v.a == 3 and v.b == 2)");
	assert_decoded("{\"a\":{\"x\":1},\"a\":[]}", "assert(#v.a == 0 and v.a.x == nil)");
	assert_decoded("[{\"k\":1,\"k\":2},{\"k\":3,\"j\":0,\"k\":4}]",
	    "assert(v[1].k == 2 and v[2].k == 4)");
}
END_TEST

START_TEST(decode_should_size_tables_without_changing_them)
{
	/* Siblings of very different sizes: the size hints must not leak
	 * members or lose any. */
	assert_decoded("[{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5},{\"z\":0},{},"
	    "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9}]",
	    "local n = 0 for _ in pairs(v[2]) do n = n + 1 end assert(n == 1)\n"
	    "assert(next(v[3]) == nil and v[4].i == 9 and v[1].e == 5)");
	assert_decoded("[[1,2,3,4,5,6,7,8],[1],[],[1,2,3,4,5,6,7,8,9,10]]",
	    "assert(#v[1] == 8 and #v[2] == 1 and #v[3] == 0 and #v[4] == 10)\n"
	    "assert(json.encode(v) == '[[1,2,3,4,5,6,7,8],[1],[],[1,2,3,4,5,6,7,8,9,10]]')");
}
END_TEST

/* Strings ---------------------------------------------------------------- */

START_TEST(decode_should_unescape_every_escape)
{
	assert_decoded("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"",
	    "assert(v == 'a\"b\\\\c/d\\be\\ff\\ng\\rh\\ti')");
	assert_decoded("\"\\u0041\\u00e9\\u00E9\\u20ac\\uFFFF\"",
	    "assert(v == 'A\\195\\169\\195\\169\\226\\130\\172\\239\\191\\191')");
	assert_decoded("\"\\u0001\\u001F\\u007f\"", "assert(v == '\\1\\31\\127')");
	assert_decoded("{\"k\\u00e9 y\\n\":\"\\\"\"}", "assert(v['k\\195\\169 y\\n'] == '\"')");
	/* Long enough to need more than the first scratch space. */
	assert_decoded("[\"\\n0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789\\t\","
	    "\"\\u00e9\"]",
	    "assert(#v[1] == 282 and v[1]:sub(1, 1) == '\\n' and v[1]:sub(-1) == '\\t')\n"
	    "assert(v[2] == '\\195\\169')");
}
END_TEST

START_TEST(decode_should_join_surrogate_pairs)
{
	assert_decoded("\"\\ud834\\udd1e\"", "assert(v == '\\240\\157\\132\\158')");
	assert_decoded("\"\\uD83D\\uDE00x\"", "assert(v == '\\240\\159\\152\\128x')");
	assert_decoded("\"\\ud800\\udc00\\udbff\\udfff\"",
	    "assert(v == '\\240\\144\\128\\128\\244\\143\\191\\191')");
}
END_TEST

START_TEST(decode_should_keep_u0000_as_a_nul_byte)
{
	/* The tree path cuts the string there (cJSON hands out C strings). */
	assert_decoded("[\"a\\u0000b\", \"\\u0000\"]",
	    "assert(v[1] == 'a\\0b' and #v[1] == 3 and v[2] == '\\0')");
	assert_decoded("{\"k\\u0000\":1}", "assert(v['k\\0'] == 1 and v.k == nil)");
}
END_TEST

START_TEST(decode_should_take_raw_utf8)
{
	assert_decodes_to("[\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e\"]",
	    "[\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e\"]");
	assert_decodes_to("\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80\x7f\"",
	    "\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80\x7f\"");
}
END_TEST

START_TEST(decode_should_refuse_lone_surrogates)
{
	static const char *const texts[] = {
		"\"\\ud800\"", "\"\\udc00\"", "\"\\udfff\"", "\"\\ud800x\"",
		"\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"", "\"\\ud834\\n\"",
		"\"\\udd1e\\ud834\"", "\"\\ud834\\udd\"", "\"\\ud834\"",
	};

	assert_all_invalid(texts, COUNT(texts));
	assert_decode_fails("[\"ab\\ud800\"]", "invalid JSON at line 1, column 5");
}
END_TEST

START_TEST(decode_should_refuse_bad_escapes)
{
	static const char *const texts[] = {
		"\"\\x41\"", "\"\\a\"", "\"\\'\"", "\"\\0\"", "\"\\U0041\"", "\"\\u12\"",
		"\"\\u123\"", "\"\\uZZZZ\"", "\"\\u00g0\"", "\"\\u-123\"", "\"\\u\"",
		"\"\\\"", "\"\\", "\"abc\\", "\"\\ \"", "\"\\\xc3\xa9\"",
	};

	assert_all_invalid(texts, COUNT(texts));
	assert_decode_fails("{\"a\":\"xy\\q\"}", "invalid JSON at line 1, column 9");
}
END_TEST

START_TEST(decode_should_refuse_invalid_utf8)
{
	static const char *const texts[] = {
		"\"\xff\"",			/* not a lead byte */
		"\"\x80\"",			/* a lone continuation byte */
		"\"\xc0\x80\"",			/* overlong NUL */
		"\"\xc1\xbf\"",			/* overlong '\x7f' */
		"\"\xe0\x80\x80\"",		/* overlong three-byte form */
		"\"\xf0\x80\x80\x80\"",		/* overlong four-byte form */
		"\"\xed\xa0\x80\"",		/* surrogate U+D800 */
		"\"\xed\xbf\xbf\"",		/* surrogate U+DFFF */
		"\"\xf4\x90\x80\x80\"",		/* U+110000 */
		"\"\xf5\x80\x80\x80\"",		/* lead byte above F4 */
		"\"\xe2\x9c\"",			/* truncated three-byte sequence */
		"\"ok\xc3\"",			/* truncated before the quote */
		"\"\xc3(\"",			/* bad continuation byte */
		"\"\\n\xff\"",			/* after an escape */
		"{\"\xff\":1}",			/* in a key */
		"\xef\xbb\xbf[1]",		/* a byte order mark */
		"[1]\xc3\xa9",			/* outside strings */
	};

	assert_all_invalid(texts, COUNT(texts));
	assert_decode_fails("[\"abc\xe2\x9c\"]", "invalid JSON at line 1, column 6");
}
END_TEST

START_TEST(decode_should_refuse_raw_control_characters)
{
	static const char *const texts[] = {
		"\"a\x01\"", "\"\x1f\"", "\"tab\there\"", "\"line\nbreak\"", "\"\\n\x02\"",
		"\x01[1]", "[1,\x0b 2]", "[1\x0c]", "{\"a\"\x1f:1}",
	};

	assert_all_invalid(texts, COUNT(texts));
	assert_decode_fails_with_depth("\"a\0b\"", 5, MAX_DEPTH, "invalid JSON at line 1, column 3");
	assert_decode_fails_with_depth("[1,\0 2]", 7, MAX_DEPTH, "invalid JSON at line 1, column 4");
}
END_TEST

/* Numbers ---------------------------------------------------------------- */

/* The decoded number must be the very double strtod reads. */
static void
assert_number_reads_as_strtod(lua_State *L, const char *text)
{
	char err[256] = "";
	double expected = strtod(text, NULL);

	ck_assert_msg(vm_json_decode(L, text, strlen(text), MAX_DEPTH, err, sizeof(err)) == 0,
	    "%s: %s", text, err);
	double got = lua_tonumber(L, -1);
	ck_assert_msg(memcmp(&got, &expected, sizeof(got)) == 0, "%s read as %.17g, not %.17g",
	    text, got, expected);
	lua_pop(L, 1);
}

START_TEST(decode_should_read_numbers_as_strtod_does)
{
	static const char *const texts[] = {
		"0", "-0", "0.0", "-0.0", "0e0", "-0e-5", "1", "-1", "42", "1.5", "-2.5",
		"0.1", "0.2", "0.3", "0.30000000000000004", "336.16", "704.28", "1e22",
		"1e23", "1e-22", "1e-23", "9007199254740991", "-9007199254740991",
		"9007199254740992", "9007199254740993", "9007199254740995",
		"18446744073709551615", "18446744073709551616", "123456789012345678901234",
		"1.7976931348623157e308", "1.7976931348623158e308", "4.9e-324", "5e-324",
		"2e-324", "1e-400", "-1e-400", "2.2250738585072014e-308",
		"2.2250738585072011e-308", "0.000001", "1E+2", "1e-0", "1E02",
		"123.456e-7", "3.14159265358979323846264338327950288",
		"0.1e1", "99999999999999999999e-20", "4503599627370497.5",
		"1234567890123456789.5e-3", "7.2057594037927933e16",
	};
	lua_State *L = new_state();

	for (size_t i = 0; i < COUNT(texts); i++)
		assert_number_reads_as_strtod(L, texts[i]);
	/* And random ones, of every shape the fast path could get wrong. */
	struct jsongen g = { 0x853c49e6748fea9bULL, NULL };
	struct buffer text;
	buffer_init(&text, 0);
	g.out = &text;
	for (int i = 0; i < 20000; i++) {
		buffer_reset(&text);
		jsongen_number(&g);
		buffer_append_char(&text, '\0');
		char err[256];
		double expected = strtod(text.data, NULL);
		if (vm_json_decode(L, text.data, text.len - 1, MAX_DEPTH, err, sizeof(err)) != 0)
			ck_abort_msg("%s: %s", text.data, err);
		double got = lua_tonumber(L, -1);
		if (memcmp(&got, &expected, sizeof(got)) != 0)
			ck_abort_msg("%s read as %.17g, not %.17g", text.data, got, expected);
		lua_pop(L, 1);
	}
	buffer_free(&text);
	lua_close(L);
}
END_TEST

START_TEST(decode_should_keep_two_to_the_53_minus_one_exact)
{
	assert_decodes_to("[9007199254740991,-9007199254740991]",
	    "[9007199254740991,-9007199254740991]");
	assert_decoded("[9007199254740991, -0]",
	    "assert(v[1] == 2^53 - 1 and v[1] - 1 == 2^53 - 2 and 1 / v[2] == -math.huge)");
}
END_TEST

START_TEST(decode_should_refuse_numbers_json_does_not_allow)
{
	static const char *const texts[] = {
		"01", "-01", "00", "0123", "[01]", "1.", "1.e5", "-.5", ".5", "+1", "-",
		"--1", "1e", "1e+", "1E-", "1.5e", "0x10", "1_000", "1,5", "- 1", "1 .5",
		"NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "[1e5.5]", "1ee5",
	};

	assert_all_invalid(texts, COUNT(texts));
	assert_decode_fails("[0, 01]", "invalid JSON at line 1, column 6");
	assert_decode_fails("[1.]", "invalid JSON at line 1, column 4");
	assert_decode_fails("-.5", "invalid JSON at line 1, column 2");
}
END_TEST

START_TEST(decode_should_refuse_numbers_out_of_range)
{
	assert_decode_fails("1e400", "JSON number out of range at line 1, column 1");
	assert_decode_fails("[0,\n -1.8e308]", "JSON number out of range at line 2, column 2");
	assert_decode_fails("123456789e999999999999", "JSON number out of range at line 1, column 1");
	assert_decoded("[1e-400, -1e-99999999999]", "assert(v[1] == 0 and v[2] == 0)");

	/* 99999 zeros after the point and an exponent of 10^9: the sum of the
	 * two must not be taken from an exponent read only in part. */
	struct buffer text;
	buffer_init(&text, 0);
	buffer_append_string(&text, "0.");
	for (int i = 0; i < 99999; i++)
		buffer_append_char(&text, '0');
	buffer_append_string(&text, "1e1000000000");
	assert_decode_fails(text.data, "JSON number out of range at line 1, column 1");
	buffer_reset(&text);
	buffer_append_string(&text, "[12345");
	for (int i = 0; i < 99999; i++)
		buffer_append_char(&text, '0');
	buffer_append_string(&text, "e-1000000000]");
	assert_decoded(text.data, "assert(v[1] == 0)");
	buffer_free(&text);
}
END_TEST

START_TEST(decode_should_read_long_numbers_in_full)
{
	/* Past the 64 bytes copied on the C stack, and past the first scratch
	 * space.  (Upstream cJSON 1.7.15 refused numbers over 63 bytes,
	 * Debian's reads them, and so does the decoder.) */
	struct buffer text;
	lua_State *L = new_state();

	buffer_init(&text, 0);
	for (int digits = 60; digits < 700; digits += 7) {
		buffer_reset(&text);
		buffer_append_string(&text, "-1");
		for (int i = 0; i < digits; i++)
			buffer_append_char(&text, (char)('0' + i * 7 % 10));
		buffer_printf(&text, ".5e-%d", digits);
		buffer_append_char(&text, '\0');
		assert_number_reads_as_strtod(L, text.data);
		buffer_reset(&text);
		buffer_append_string(&text, "0.");
		for (int i = 0; i < digits; i++)
			buffer_append_char(&text, '3');
		buffer_append_char(&text, '\0');
		assert_number_reads_as_strtod(L, text.data);
	}
	buffer_free(&text);
	lua_close(L);
}
END_TEST

/* Refusals --------------------------------------------------------------- */

START_TEST(decode_should_refuse_truncated_text)
{
	static const char json[] = "{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\n\"],\"b\":{}}";
	lua_State *L = new_state();
	char err[256];

	for (size_t len = 0; len < sizeof(json) - 1; len++) {
		/* Exactly the bytes, with nothing after them: ASan checks. */
		char *text = malloc(len ? len : 1);
		memcpy(text, json, len);
		if (vm_json_decode(L, text, len, MAX_DEPTH, err, sizeof(err)) != -1)
			ck_abort_msg("%zu bytes of %s accepted", len, json);
		ck_assert_int_eq(lua_gettop(L), 0);
		free(text);
	}
	ck_assert_int_eq(vm_json_decode(L, json, sizeof(json) - 1, MAX_DEPTH, err,
	    sizeof(err)), 0);
	lua_close(L);
}
END_TEST

START_TEST(decode_should_refuse_trailing_garbage)
{
	assert_decode_fails("[1] x", "invalid JSON at line 1, column 5");
	assert_decode_fails("[1]]", "invalid JSON at line 1, column 4");
	assert_decode_fails("{}\n\x01", "invalid JSON at line 2, column 1");
	assert_decode_fails("1 2", "invalid JSON at line 1, column 3");
	assert_decode_fails("\"a\"\"b\"", "invalid JSON at line 1, column 4");
	assert_decode_fails("truex", "invalid JSON at line 1, column 5");
	assert_decode_fails("null,", "invalid JSON at line 1, column 5");
}
END_TEST

START_TEST(decode_should_refuse_comments_and_other_extensions)
{
	static const char *const texts[] = {
		"/* c */ 1", "// c\n1", "[1 /* c */]", "[1, // c\n2]", "# c\n1",
		"[1,]", "{\"a\":1,}", "[,1]", "{,}", "{a:1}", "{'a':1}", "['a']",
		"{\"a\" 1}", "{\"a\"::1}", "{1:1}", "[1 2]", "{\"a\":1 \"b\":2}",
		"tru", "nul", "fals", "True", "NULL", "undefined", "()", "<>", "=",
	};

	assert_all_invalid(texts, COUNT(texts));
}
END_TEST

START_TEST(decode_should_report_the_positions_json_parse_reports)
{
	static const char *const texts[] = {
		"{\n  \"a\": tru\n}", "[1,]", "", "[1] x", "[1]]", "{}\n\x01", "1 2", "[1,",
		"[1", "{\"a\"}", "{\"a\":}", "[,1]", "[1 2]", "nul", "truex", "[.5]", "[+1]",
		"[\"a\"]]", "[\"\\x\"]", "[[],", "[null", "{\"a\":1", "{\"a\":\"b\"",
	};
	lua_State *L = new_state();
	char err_tree[256], err_direct[256];

	for (size_t i = 0; i < COUNT(texts); i++) {
		size_t len = strlen(texts[i]);
		ck_assert_ptr_null(json_parse(texts[i], len, MAX_DEPTH, err_tree,
		    sizeof(err_tree)));
		ck_assert_int_eq(vm_json_decode(L, texts[i], len, MAX_DEPTH, err_direct,
		    sizeof(err_direct)), -1);
		ck_assert_msg(strcmp(err_tree, err_direct) == 0, "%s: json_parse says \"%s\", "
		    "the decoder \"%s\"", texts[i], err_tree, err_direct);
	}
	ck_assert_int_eq(vm_json_decode(L, NULL, 0, MAX_DEPTH, err_direct, sizeof(err_direct)), -1);
	ck_assert_str_eq(err_direct, "invalid JSON at line 1, column 1");
	ck_assert_int_eq(vm_json_decode(L, " \n ", 3, MAX_DEPTH, err_direct, sizeof(err_direct)), -1);
	ck_assert_str_eq(err_direct, "invalid JSON at line 2, column 1");
	ck_assert_int_eq(vm_json_decode(L, "[1]", 3, MAX_DEPTH, NULL, 0), 0);
	ck_assert_int_eq(vm_json_decode(L, "[1", 2, MAX_DEPTH, NULL, 0), -1);
	ck_assert_int_eq(lua_gettop(L), 1);
	lua_close(L);
}
END_TEST

START_TEST(decode_should_respect_the_length)
{
	static const char json[] = "{\"a\":[1,2]}";
	lua_State *L = new_state();
	char err[256];
	/* Exactly the bytes, with no NUL after them: ASan checks the reads. */
	char *text = malloc(sizeof(json) - 1);

	memcpy(text, json, sizeof(json) - 1);
	ck_assert_int_eq(vm_json_decode(L, text, sizeof(json) - 1, MAX_DEPTH, err, sizeof(err)), 0);
	ck_assert_int_eq(vm_json_decode(L, text, sizeof(json) - 2, MAX_DEPTH, err, sizeof(err)), -1);
	free(text);
	ck_assert_int_eq(vm_json_decode(L, "[1]]]", 3, MAX_DEPTH, err, sizeof(err)), 0);
	ck_assert_int_eq(vm_json_decode(L, "12345", 2, MAX_DEPTH, err, sizeof(err)), 0);
	ck_assert_double_eq(lua_tonumber(L, -1), 12);
	ck_assert_int_eq(vm_json_decode(L, "\"abc\"", 4, MAX_DEPTH, err, sizeof(err)), -1);
	ck_assert_int_eq(vm_json_decode(L, "true", 3, MAX_DEPTH, err, sizeof(err)), -1);
	ck_assert_int_eq(vm_json_decode(L, "\"a\\u0041\"", 8, MAX_DEPTH, err, sizeof(err)), -1);
	ck_assert_int_eq(vm_json_decode(L, "[1] \n\t\r ", 8, MAX_DEPTH, err, sizeof(err)), 0);
	ck_assert_int_eq(lua_gettop(L), 4);
	lua_close(L);
}
END_TEST

/* Depth ------------------------------------------------------------------ */

START_TEST(a_request_too_deep_should_name_the_path_and_a_non_object_should_not)
{
	lua_State *L = new_state();
	char err[256];
	static const char deep[] = "{\"source\":\"x\",\"context\":{\"a\":[{\"b c\":[1]}]}}";

	/* The request is level 1: the context may nest max_depth - 1. */
	ck_assert_int_eq(vm_json_decode_request(L, deep, strlen(deep), 5, err, sizeof(err)), 0);
	lua_pop(L, 1);
	ck_assert_int_eq(vm_json_decode_request(L, deep, strlen(deep), 4, err, sizeof(err)), -2);
	ck_assert_str_eq(err, "context.a[1][\"b c\"]: nested deeper than max_json_depth (3)");
	static const char other[] = "{\"x\":[[[]]],\"source\":\"x\"}";
	ck_assert_int_eq(vm_json_decode_request(L, other, strlen(other), 3, err, sizeof(err)), -2);
	ck_assert_str_eq(err, "request.x[1][1]: nested deeper than max_json_depth (2)");
	/* A root that is no object is no request: a JSON error. */
	ck_assert_int_eq(vm_json_decode_request(L, "[[[[", 4, 3, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "JSON nested deeper than 3 levels");
	/* json.decode keeps its own message. */
	ck_assert_int_eq(vm_json_decode(L, deep, strlen(deep), 4, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "JSON nested deeper than 4 levels");
	ck_assert_int_eq(lua_gettop(L), 0);
	lua_close(L);
}
END_TEST

START_TEST(decode_should_refuse_100000_nested_brackets_without_crashing)
{
	static const size_t levels = 100000;
	char *text = malloc(2 * levels);

	ck_assert_ptr_nonnull(text);
	memset(text, '[', levels);
	memset(text + levels, ']', levels);
	assert_decode_fails_with_depth(text, levels, MAX_DEPTH,
	    "JSON nested deeper than 256 levels");
	assert_decode_fails_with_depth(text, 2 * levels, MAX_DEPTH,
	    "JSON nested deeper than 256 levels");
	/* Whatever max_depth says, the recursion stops at cJSON's 1000. */
	assert_decode_fails_with_depth(text, 2 * levels, UINT_MAX,
	    "JSON nested deeper than 1000 levels");
	for (size_t i = 0; i + 5 <= levels; i += 5)
		memcpy(text + i, "[{\"\":", 5);
	assert_decode_fails_with_depth(text, levels, MAX_DEPTH,
	    "JSON nested deeper than 256 levels");
	free(text);
}
END_TEST

START_TEST(decode_should_accept_nesting_up_to_the_limit)
{
	char text[2 * 1001];
	lua_State *L = new_state();
	char err[256];

	memset(text, '[', 1001);
	memset(text + 1001, ']', 1001);
	ck_assert_int_eq(vm_json_decode(L, text + 1001 - 256, 2 * 256, MAX_DEPTH, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(vm_json_decode(L, text + 1001 - 257, 2 * 257, MAX_DEPTH, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "JSON nested deeper than 256 levels");
	ck_assert_int_eq(vm_json_decode(L, text + 1, 2 * 1000, UINT_MAX, err, sizeof(err)), 0);
	ck_assert_int_eq(vm_json_decode(L, text, sizeof(text), UINT_MAX, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "JSON nested deeper than 1000 levels");
	ck_assert_int_eq(vm_json_decode(L, "[[1]]", 5, 2, err, sizeof(err)), 0);
	ck_assert_int_eq(vm_json_decode(L, "{\"a\":[1]}", 9, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "JSON nested deeper than 1 levels");
	ck_assert_int_eq(vm_json_decode(L, "7", 1, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(vm_json_decode(L, "[]", 2, 0, err, sizeof(err)), -1);
	ck_assert_int_eq(lua_gettop(L), 4);
	lua_close(L);
}
END_TEST

/* Memory ----------------------------------------------------------------- */

struct limited_heap {
	size_t used, limit;
};

static void *
limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct limited_heap *heap = ud;

	if (nsize == 0) {
		heap->used -= ptr != NULL ? osize : 0;
		free(ptr);
		return NULL;
	}
	size_t old = ptr != NULL ? osize : 0;
	if (nsize > old && heap->used + (nsize - old) > heap->limit)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (p != NULL)
		heap->used = heap->used - old + nsize;
	return p;
}

struct decode_call {
	const char *text;
	size_t len;
	int result;
};

static int
call_decode(lua_State *L)
{
	struct decode_call *call = lua_touserdata(L, 1);
	char err[256];

	call->result = vm_json_decode(L, call->text, call->len, MAX_DEPTH, err, sizeof(err));
	return 0;
}

START_TEST(decode_should_survive_running_out_of_memory)
{
	struct buffer doc;
	struct jsongen g = { 0x61c8864680b583ebULL, NULL };
	int failed = 0, succeeded = 0;

	buffer_init(&doc, 0);
	g.out = &doc;
	buffer_append_char(&doc, '[');
	for (int i = 0; i < 60; i++) {
		buffer_printf(&doc, "%s{\"n\":%d,\"s\":\"\\u00e9 escaped %d\\n", i ? "," : "", i, i);
		jsongen_string_body(&g, 0);
		buffer_append_string(&doc, "\",\"a\":[1.5,true,null,\"x\"]}");
	}
	buffer_append_char(&doc, ']');
	/* A heap that runs out somewhere in the decoding, further each time. */
	for (size_t room = 0; room < 64 * 1024 && succeeded < 3; room += 512) {
		struct limited_heap heap = { 0, SIZE_MAX };
		lua_State *L = lua_newstate(limited_alloc, &heap);
		ck_assert_ptr_nonnull(L);
		luaL_openlibs(L);
		vm_json_open(L, MAX_DEPTH);
		lua_setglobal(L, "json");
		lua_gc(L, LUA_GCCOLLECT, 0);
		heap.limit = heap.used + room;
		struct decode_call call = { doc.data, doc.len, 1 };
		int status = lua_cpcall(L, call_decode, &call);
		if (status == LUA_ERRMEM) {
			failed++;
		} else {
			ck_assert_int_eq(status, 0);
			ck_assert_int_eq(call.result, 0);
			succeeded++;
		}
		heap.limit = SIZE_MAX;
		lua_close(L);
	}
	ck_assert_int_gt(failed, 3);
	ck_assert_int_gt(succeeded, 0);
	buffer_free(&doc);
}
END_TEST

/* The json table --------------------------------------------------------- */

START_TEST(json_decode_should_use_the_direct_decoder)
{
	lua_State *L = new_state();

	run_lua(L, "local v = json.decode('{\"a\":[],\"b\":[1,null,3],\"c\":\"\\\\u00e9\\\\u0000\"}')\n"
	    "assert(#v.a == 0 and v.b[2] == json.null and v.c == '\\195\\169\\0')\n"
	    "assert(json.encode(v.a) == '[]' and json.encode(v.c) == '\"\\195\\169\\\\u0000\"')\n"
	    "local ok, e = pcall(json.decode, '[1,')\n"
	    "assert(not ok and e:find('invalid JSON at line 1, column 3', 1, true), e)\n"
	    "ok, e = pcall(json.decode, '[01]')\n"
	    "assert(not ok and e:find('invalid JSON at line 1, column 3', 1, true), e)\n"
	    "ok, e = pcall(json.decode, '1e999')\n"
	    "assert(not ok and e:find('JSON number out of range', 1, true), e)\n"
	    "ok, e = pcall(json.decode, string.rep('[', 300))\n"
	    "assert(not ok and e:find('JSON nested deeper than 256 levels', 1, true), e)\n"
	    "assert(json.decode(' 12.5 ') == 12.5 and json.decode('\"x\"') == 'x')\n");
	lua_close(L);
}
END_TEST

/* Speed ------------------------------------------------------------------ */

/* A context shaped like the benchmark's bigctx (scripts/bench-gen.lua):
 * {"items":[...]} of about `bytes` bytes. */
static void
build_items_context(struct buffer *out, size_t bytes)
{
	static const char *const words[] = { "alpha", "bravo", "charlie", "delta" };

	buffer_append_string(out, "{\"items\":[");
	for (int i = 1; out->len < bytes; i++) {
		const char *w = words[i % 4];
		buffer_printf(out, "%s{\"id\":%d,\"name\":\"item-%05d-%s\",\"sku\":\"SKU-%08d\","
		    "\"price\":%d.%02d,\"qty\":%d,\"tag\":\"%s-%s\",\"note\":\"%s %s %s %s\"}",
		    i > 1 ? "," : "", i, i, w, (i * 7919) % 100000000, (i * 37) % 1000,
		    (i * 13) % 100, (i * 11) % 60, w, w, w, w, w, w);
	}
	buffer_append_string(out, "]}");
}

/* LUAPOOL_BENCH_CONTEXT may name a request file ({"context": ...}) or a
 * context to time instead. */
static int
load_context(struct buffer *out)
{
	const char *path = getenv("LUAPOOL_BENCH_CONTEXT");
	FILE *f = path != NULL ? fopen(path, "rb") : NULL;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buffer_append(out, chunk, n);
	fclose(f);
	cJSON *whole = cJSON_ParseWithLength(out->data, out->len);
	cJSON *context = cJSON_GetObjectItemCaseSensitive(whole, "context");
	if (context != NULL) {
		char *text = cJSON_PrintUnformatted(context);
		buffer_reset(out);
		buffer_append_string(out, text);
		cJSON_free(text);
	}
	cJSON_Delete(whole);
	return 0;
}

static double
seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Microseconds per decoding by the fastest of `rounds` rounds. */
static double
time_path(lua_State *L, const struct buffer *doc, int direct, int rounds, int per_round)
{
	double best = 1e30;
	char err[256];

	for (int r = 0; r < rounds; r++) {
		double start = seconds_now();
		for (int i = 0; i < per_round; i++) {
			if (direct) {
				vm_json_decode(L, doc->data, doc->len, MAX_DEPTH, err, sizeof(err));
			} else {
				cJSON *tree = json_parse(doc->data, doc->len, MAX_DEPTH, err,
				    sizeof(err));
				jsonpush_tree(L, tree, "context", MAX_DEPTH, err, sizeof(err));
				cJSON_Delete(tree);
			}
			lua_settop(L, 0);
		}
		double took = (seconds_now() - start) / per_round * 1e6;
		if (took < best)
			best = took;
	}
	return best;
}

START_TEST(decoder_speed_should_be_printed_for_a_66_kib_context)
{
	struct buffer doc;
	lua_State *L = new_state();
	struct jsoncompare_tally t;

	memset(&t, 0, sizeof(t));
	buffer_init(&doc, 0);
	if (load_context(&doc) == -1)
		build_items_context(&doc, 66 * 1024);
	expect_paths_agree(L, doc.data, doc.len, &t);
	ck_assert_uint_eq(t.both_accepted, 1);
	double tree = time_path(L, &doc, 0, 5, 40);
	double direct = time_path(L, &doc, 1, 5, 40);
	printf("decoding a %zu-byte context: json_parse + jsonpush_tree %.0f us, "
	    "vm_json_decode %.0f us (%.2fx)\n", doc.len, tree, direct, tree / direct);
	buffer_free(&doc);
	lua_close(L);
}
END_TEST

static Suite *
decode_suite(void)
{
	Suite *suite = suite_create("decode");
	TCase *types = tcase_create("types");
	TCase *strings = tcase_create("strings");
	TCase *numbers = tcase_create("numbers");
	TCase *refusals = tcase_create("refusals");
	TCase *limits = tcase_create("limits");
	TCase *differential = tcase_create("differential");
	TCase *speed = tcase_create("speed");

	tcase_add_test(types, decode_should_convert_every_json_type);
	tcase_add_test(types, decode_should_keep_the_marker_on_empty_arrays);
	tcase_add_test(types, decode_should_share_the_marker_of_vm_json);
	tcase_add_test(types, decode_should_keep_nulls_in_arrays_and_objects);
	tcase_add_test(types, decode_should_let_the_last_duplicate_key_win);
	tcase_add_test(types, decode_should_size_tables_without_changing_them);
	tcase_add_test(types, json_decode_should_use_the_direct_decoder);
	suite_add_tcase(suite, types);

	tcase_add_test(strings, decode_should_unescape_every_escape);
	tcase_add_test(strings, decode_should_join_surrogate_pairs);
	tcase_add_test(strings, decode_should_keep_u0000_as_a_nul_byte);
	tcase_add_test(strings, decode_should_take_raw_utf8);
	tcase_add_test(strings, decode_should_refuse_lone_surrogates);
	tcase_add_test(strings, decode_should_refuse_bad_escapes);
	tcase_add_test(strings, decode_should_refuse_invalid_utf8);
	tcase_add_test(strings, decode_should_refuse_raw_control_characters);
	suite_add_tcase(suite, strings);

	tcase_add_test(numbers, decode_should_read_numbers_as_strtod_does);
	tcase_add_test(numbers, decode_should_keep_two_to_the_53_minus_one_exact);
	tcase_add_test(numbers, decode_should_refuse_numbers_json_does_not_allow);
	tcase_add_test(numbers, decode_should_refuse_numbers_out_of_range);
	tcase_add_test(numbers, decode_should_read_long_numbers_in_full);
	suite_add_tcase(suite, numbers);

	tcase_add_test(refusals, decode_should_refuse_truncated_text);
	tcase_add_test(refusals, decode_should_refuse_trailing_garbage);
	tcase_add_test(refusals, decode_should_refuse_comments_and_other_extensions);
	tcase_add_test(refusals, decode_should_report_the_positions_json_parse_reports);
	tcase_add_test(refusals, decode_should_respect_the_length);
	suite_add_tcase(suite, refusals);

	tcase_add_test(limits, decode_should_refuse_100000_nested_brackets_without_crashing);
	tcase_add_test(limits, decode_should_accept_nesting_up_to_the_limit);
	tcase_add_test(limits, a_request_too_deep_should_name_the_path_and_a_non_object_should_not);
	tcase_add_test(limits, decode_should_survive_running_out_of_memory);
	tcase_set_timeout(limits, 30);
	suite_add_tcase(suite, limits);

	tcase_add_test(differential, decoder_should_match_the_tree_path_on_random_documents);
	tcase_add_test(differential, decoder_should_match_the_tree_path_on_mutated_documents);
	tcase_set_timeout(differential, 60);
	suite_add_tcase(suite, differential);

	tcase_add_test(speed, decoder_speed_should_be_printed_for_a_66_kib_context);
	tcase_set_timeout(speed, 60);
	suite_add_tcase(suite, speed);
	return suite;
}

int
main(void)
{
	SRunner *runner = srunner_create(decode_suite());

	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
