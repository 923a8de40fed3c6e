/*
 * vm_log.h - a job's print and log.* output, captured (vm_log.c).
 *
 * The log is a JSON array of {"level": "debug"|"info"|"warn"|"error",
 * "text": ...} entries, kept in C memory by the vm and bounded by
 * vm_limits.max_log_bytes.  Only vm*.c include the Lua headers; this
 * header does not.
 */
#ifndef VM_LOG_H
#define VM_LOG_H

#include "common/buffer.h"

struct vm;
typedef struct lua_State lua_State;

/* Pushes print and the log table (debug, info, warn, error).  They format
 * their arguments with the function at tostring_index (the sandbox's
 * address-free tostring), tab-separated as Lua's print does. */
void vm_log_push_functions(lua_State *L, int tostring_index);

/* Whether the running job has written an entry (or the marker). */
int vm_log_has_entries(const struct vm *vm);

/* Appends the job's log to out as a JSON array; -1 if out refuses it. */
int vm_log_append_array(const struct vm *vm, struct buffer *out);

/* Forgets the job's entries; the storage stays for the next job. */
void vm_log_clear(struct vm *vm);

#endif
