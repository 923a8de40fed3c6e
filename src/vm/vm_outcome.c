/*
 * vm_outcome.c - filling in a job's outcome (status, stable code, message).
 * A leaf: every other vm*.c file may use it, it uses none of them.
 */
#include <stdio.h>

#include "vm/vm_outcome.h"

void
vm_outcome_set(struct vm_outcome *out, enum luapool_status status, const char *code,
    const char *message)
{
	out->status = status;
	out->code = code;
	snprintf(out->message, sizeof(out->message), "%s", message);
}

void
vm_outcome_reset(struct vm_outcome *out)
{
	out->status = LUAPOOL_OK;
	out->code = "ok";
	out->message[0] = '\0';
	out->cache_hit = out->cache_miss = out->soft_stopped = out->heap_high = 0;
	out->replace = VM_REPLACE_NO;
	buffer_reset(&out->body);
	buffer_reset(&out->traceback);
}
