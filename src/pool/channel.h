/*
 * channel.h - frames to and from workers (channel.c).  Dispatcher thread only.
 */
#ifndef POOL_CHANNEL_H
#define POOL_CHANNEL_H

#include "pool/pool_internal.h"

/* Hands a job to an idle worker; the worker holds it until answered. */
void channel_send_job(struct luapool *pool, struct worker *w, struct job *job);
/* Writes more of the job being sent (its socket became writable). */
void channel_continue_send(struct luapool *pool, struct worker *w);
/* Reads and handles what the worker sent. */
void channel_read(struct luapool *pool, struct worker *w);

#endif
