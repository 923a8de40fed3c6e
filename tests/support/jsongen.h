/*
 * jsongen.h - random JSON text for the codec tests: a seeded xorshift
 * generator that writes every kind of value, escape, character and number
 * shape in random layouts, and mutates documents byte by byte.
 */
#ifndef JSONGEN_H
#define JSONGEN_H

#include <stdint.h>

#include "common/buffer.h"

struct jsongen {
	uint64_t state;		/* the seed; never 0 */
	struct buffer *out;	/* where the text goes */
	int unique_keys;	/* no repeated key in an object (cJSON_Compare needs it) */
};

uint32_t jsongen_next(struct jsongen *g);
unsigned jsongen_below(struct jsongen *g, unsigned n);
void jsongen_space(struct jsongen *g);
/* The inside of a string; keys never get \u0000. */
void jsongen_string_body(struct jsongen *g, int key);
void jsongen_number(struct jsongen *g);
void jsongen_container(struct jsongen *g, unsigned depth, int object);
/* Resets out and writes a document: usually a container, sometimes a
 * scalar, sometimes wrapped 6 to 15 levels deep. */
void jsongen_document(struct jsongen *g);
/* Copies `in` to `out` with one to three random changes. */
void jsongen_mutate(struct jsongen *g, const struct buffer *in, struct buffer *out);

#endif
