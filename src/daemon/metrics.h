/*
 * metrics.h - the daemon's counters and the Prometheus text rendering of
 * them and of the pool's stats.  Counters are atomics: any HTTP thread
 * records, any renders.
 */
#ifndef METRICS_H
#define METRICS_H

#include "common/buffer.h"
#include "luapool.h"

enum metrics_route {
	METRICS_ROUTE_EXEC,
	METRICS_ROUTE_COMPILE,
	METRICS_ROUTE_SCRIPTS,		/* list, describe, put, delete */
	METRICS_ROUTE_SCRIPT_RUN,	/* POST /v1/scripts/{name} */
	METRICS_ROUTE_HEALTHZ,
	METRICS_ROUTE_INFO,
	METRICS_ROUTE_METRICS,
	METRICS_ROUTE_OTHER,
	METRICS_ROUTE_COUNT
};

/* "exec", "compile", ... as used in the `route` label. */
const char *metrics_route_name(enum metrics_route route);

/* Records one answered request. */
void metrics_observe(enum metrics_route route, int status, double seconds);

/* Records one job the pool answered: its time in the queue and running. */
void metrics_observe_job(double queued_seconds, double run_seconds);

/* Appends every metric in Prometheus text format 0.0.4, names prefixed
 * luapoold_: requests_total{route,status}, request_duration_seconds
 * (histogram, per route), job_queue_seconds and job_run_seconds
 * (histograms), queue_depth, queue_capacity, workers{state},
 * jobs_total{status}, deadline_stops_total{kind="soft|hard|backstop"},
 * worker_crashes_total, worker_respawns_total, worker_recycles_total,
 * cache_hits_total, cache_misses_total, connections, scripts. */
int metrics_render(struct buffer *out, const struct luapool_stats *stats,
    unsigned connections, unsigned scripts);

#endif
