/*
 * context.h - what the pool needs of a luapool_context.
 */
#ifndef CONTEXT_H
#define CONTEXT_H

#include "luapool.h"

/* {"context": {...}} as JSON text (ctx may be NULL: {}).  Caller frees
 * with cJSON_free; NULL when out of memory. */
char *context_request_json(const struct luapool_context *ctx);

#endif
