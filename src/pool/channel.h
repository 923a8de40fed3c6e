/*
 * channel.h - frames to and from workers (channel.c).  Dispatcher thread only.
 */
#ifndef POOL_CHANNEL_H
#define POOL_CHANNEL_H

#include "pool/pool_internal.h"

/* Hands a job to an idle worker; the worker holds it until answered. */
void channel_send_job(struct luapool *pool, struct worker *w, struct job *job);
/* Writes more of the frame being sent, a job or a module (its socket
 * became writable). */
void channel_continue_send(struct luapool *pool, struct worker *w);
/* Whether the job the worker holds, or the module it asked for, is not
 * yet completely written to it: a frame from it before that is out of
 * protocol order. */
int channel_sending(const struct worker *w);
/* Disarms EPOLLOUT (armed only while a large job is being written). */
void channel_stop_watching_writes(struct luapool *pool, struct worker *w);
/* Reads and handles what the worker sent. */
void channel_read(struct luapool *pool, struct worker *w);

#endif
