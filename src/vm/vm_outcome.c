/*
 * vm_outcome.c - filling in a job's outcome (status, stable code, message).
 * A leaf: every other vm*.c file may use it, it uses none of them.
 */
#include <string.h>

#include "vm/vm_outcome.h"

void
vm_outcome_set(struct vm_outcome *out, enum luapool_status status, const char *code,
    const char *message)
{
	out->status = status;
	out->code = code;
	/* A long message is cut before a UTF-8 character, never inside one
	 * (the supervisor still replaces invalid bytes a script raised). */
	size_t len = strlen(message);
	if (len >= sizeof(out->message)) {
		len = sizeof(out->message) - 1;
		for (int back = 0; back < 3 && ((unsigned char)message[len] & 0xC0) == 0x80; back++)
			len--;
	}
	memcpy(out->message, message, len);
	out->message[len] = '\0';
}

void
vm_outcome_reset(struct vm_outcome *out)
{
	out->status = LUAPOOL_OK;
	out->code = "ok";
	out->message[0] = '\0';
	out->cache_hit = out->cache_miss = out->soft_stopped = out->heap_high = 0;
	out->replace = VM_REPLACE_NO;
	out->chunk_is_source = 0;
	out->body_has_logs = 0;
	buffer_reset(&out->body);
	buffer_reset(&out->traceback);
	buffer_reset(&out->logs);
	buffer_reset(&out->error_value);
}
