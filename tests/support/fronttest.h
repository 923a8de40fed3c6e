/*
 * fronttest.h - what the suites that run luapoold with fronts share
 * (fronttest.c): requests on kept connections, the lane's mark, learning a
 * chunk into the lane, /metrics series, the daemon's fronts.  On
 * apitest_server unless a port is given.
 */
#ifndef FRONTTEST_H
#define FRONTTEST_H

#include <sys/types.h>

#include "support/httpc.h"

#define FRONTTEST_COMM		"luapool-front"
#define FRONTTEST_TRAIN_MAX	20	/* requests a chunk may take to reach the lane */

int fronttest_connect_at(int line, unsigned port);
void fronttest_send_at(int line, int fd, const char *method, const char *path,
    const char *headers, const char *body);
/* One request on a connection kept open; fails the test without an answer. */
void fronttest_exchange_at(int line, int fd, const char *method, const char *path,
    const char *headers, const char *body, struct httpc_response *r);
/* Whether the answer came from a front's lane (queue;dur=0.000). */
int fronttest_from_lane(const struct httpc_response *r);
/* Posts body on fd until an answer comes from the lane, each 200 with
 * `result`; returns how many came from the pool first. */
int fronttest_train_at(int line, int fd, const char *headers, const char *body,
    const char *result);
/* One series of /metrics (0 when it is not there yet). */
double fronttest_metric_at(int line, const char *series);
/* Polls until the daemon has exactly `count` fronts, none of them
 * `not_this` (0: any); returns the first one's pid. */
pid_t fronttest_wait_for_fronts_at(int line, int count, pid_t not_this);
/* Polls until process pid has used `ms` more CPU time than when called,
 * or is gone: a job that burns CPU has surely started (a sleep would only
 * hope so). */
void fronttest_wait_for_cpu_at(int line, pid_t pid, unsigned ms);

#endif
