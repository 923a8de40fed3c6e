/*
 * vm_request.h - loading a job's JSON request into the VM (vm_request.c).
 */
#ifndef VM_REQUEST_H
#define VM_REQUEST_H

#include "vm/vm.h"

/*
 * Decodes and checks a request; its context stays in the VM for the next
 * vm_run_loaded.  Returns 0, or -1 with the outcome set (invalid_json,
 * invalid_request, invalid_base64, invalid_bytecode ...).  The request's
 * text and chunk must stay valid until the run.
 */
int vm_request_load(struct vm *vm, struct vm_request *request, struct vm_outcome *outcome);

#endif
