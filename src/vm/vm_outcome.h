/*
 * vm_outcome.h - setting a job's outcome (vm_outcome.c).
 */
#ifndef VM_OUTCOME_H
#define VM_OUTCOME_H

#include "vm/vm.h"

void vm_outcome_set(struct vm_outcome *out, enum luapool_status status, const char *code,
    const char *message);
/* Back to "ok" with empty buffers (reset, not freed). */
void vm_outcome_reset(struct vm_outcome *out);

#endif
