/*
 * jsoncompare.h - the decoder's differential oracle for tests: runs
 * json_parse + jsonpush_tree (the tree path) and vm_json_decode on the same
 * text and says whether they agree.  They may differ only as documented
 * in src/vm/vm_json_decode.c: the decoder may refuse, for a documented
 * reason, what cJSON accepts, and keeps \u0000 as a NUL byte where the
 * tree path cuts the string.
 */
#ifndef JSONCOMPARE_H
#define JSONCOMPARE_H

#include <stddef.h>

typedef struct lua_State lua_State;

/* What comparing a value of the tree path (a) with one of the decoder (b)
 * came across. */
struct jsoncompare {
	unsigned long nul_strings;	/* b held \u0000 where a was cut */
	unsigned long nul_keys;		/* tables not compared: a key held NUL */
	char why[300];			/* the disagreement, when there is one */
};

/* Why the decoder may refuse a text that json_parse accepts. */
enum jsoncompare_strictness {
	JSONCOMPARE_NOT_DOCUMENTED,
	JSONCOMPARE_CONTROL_CHARACTER,	/* in a string, or as whitespace */
	JSONCOMPARE_INVALID_UTF8,	/* in a string, or a byte order mark */
	JSONCOMPARE_BAD_HEX_ESCAPE,	/* \u with a digit that is not hex */
	JSONCOMPARE_NUMBER_FORM,	/* leading zero, empty fraction, "-." */
	JSONCOMPARE_NUMBER_OUT_OF_RANGE,
	JSONCOMPARE_KINDS
};

extern const char *const jsoncompare_strictness_names[JSONCOMPARE_KINDS];

struct jsoncompare_tally {
	unsigned long documents, both_accepted, both_refused;
	unsigned long stricter[JSONCOMPARE_KINDS];
	struct jsoncompare cmp;
};

/* Deep equality of two values on the stack; numbers bit for bit. */
int jsoncompare_values(lua_State *L, int a, int b, struct jsoncompare *cmp);
/* Which documented strictness explains the decoder's error err. */
enum jsoncompare_strictness jsoncompare_refusal(const char *text, size_t len, const char *err);
/* Both paths on text at max_depth; counts into t.  -1 when they disagree
 * in a way not documented, with t->cmp.why saying how. */
int jsoncompare_paths(lua_State *L, const char *text, size_t len, unsigned max_depth,
    struct jsoncompare_tally *t);

#endif
