/*
 * dispatcher.h - the pool's dispatcher (dispatcher.c), started by pool.c.
 */
#ifndef POOL_DISPATCHER_H
#define POOL_DISPATCHER_H

#include "pool/pool_internal.h"

int dispatcher_start(struct luapool *pool, struct luapool_error *err);
void dispatcher_wake(struct luapool *pool);
/* One round (see dispatcher.c); 1 once a shutdown finished. */
int dispatcher_run_once(struct luapool *pool, int max_wait_ms);
int dispatcher_next_timeout_ms(struct luapool *pool);
void dispatcher_join(struct luapool *pool);

#endif
