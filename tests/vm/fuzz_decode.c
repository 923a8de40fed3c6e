/*
 * fuzz_decode.c - libFuzzer harness: vm_json_decode against json_parse +
 * jsonpush_tree on every input, at a small depth limit and at none.  Aborts
 * when the decoder accepts what json_parse refuses, refuses what it accepts
 * for a reason src/vm/vm_json_decode.c does not document, or gives another
 * value (numbers bit for bit; a string may hold \u0000 where the tree path
 * cut it).  Built by `make fuzz` with clang, never by `make all`/`check`;
 * tests/vm/test_decode.c runs the same check on seeded random documents.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "support/jsoncompare.h"
#include "vm/vm_json.h"

#define SMALL_DEPTH	16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *current_text;
static size_t current_len;

static void
disagree(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_decode: %s%s\n", what, detail);
	fprintf(stderr, "input (%zu bytes): %.*s\n", current_len, (int)current_len,
	    current_text);
	abort();
}

/* Both paths at max_depth; aborts on a disagreement not documented. */
static void
compare_paths(lua_State *L, const char *text, size_t len, unsigned max_depth)
{
	struct jsoncompare_tally t;
	memset(&t, 0, sizeof(t));
	if (jsoncompare_paths(L, text, len, max_depth, &t) == -1)
		disagree(t.cmp.why, "");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static lua_State *L;

	if (L == NULL) {
		L = luaL_newstate();
		if (L == NULL)
			abort();
		luaL_openlibs(L);
		vm_json_open(L, SMALL_DEPTH);
		lua_setglobal(L, "json");
	}
	current_text = (const char *)data;
	current_len = size;
	compare_paths(L, current_text, size, SMALL_DEPTH);
	compare_paths(L, current_text, size, UINT_MAX);
	return 0;
}
