/*
 * status.h - what the pool checks of a worker's answer (status.c).  The
 * public names of statuses and recycle reasons are in luapool.h.
 */
#ifndef COMMON_STATUS_H
#define COMMON_STATUS_H

#include "luapool.h"

/* Whether a worker may answer `status` with problem `code` (a worker is
 * never trusted to speak for the supervisor: overloaded, unauthorized ...). */
int luapool_worker_code_fits(enum luapool_status status, const char *code);

#endif
