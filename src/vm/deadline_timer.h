/*
 * deadline_timer.h - the one-shot CLOCK_MONOTONIC timer that stops a
 * running job (deadline_timer.c), shared by the worker's job loop and a
 * front's lane: SIGALRM, an absolute time, re-armed from its handler.
 */
#ifndef DEADLINE_TIMER_H
#define DEADLINE_TIMER_H

#include <stdint.h>
#include <time.h>

/* Installs handler for SIGALRM (SA_RESTART) and creates the timer that
 * raises it.  Before the sandbox.  0, or -1 with errno. */
int deadline_timer_create(void (*handler)(int), timer_t *timer);
/* Arms the timer for when_ns (frame_now_ns's clock); 0 disarms.
 * Async-signal-safe. */
void deadline_timer_arm(timer_t timer, int64_t when_ns);

#endif
