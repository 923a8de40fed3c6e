/*
 * metrics.c - request counters and latency histograms kept in atomics, and
 * the Prometheus text exposition (format 0.0.4) of them and of the pool's
 * stats.  Any thread records, any thread renders; nothing here locks,
 * allocates while recording, or blocks.  Durations are kept in whole
 * microseconds so the sum stays an exact integer.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "daemon/metrics.h"

/* The statuses the daemon answers with; anything else counts as "other". */
static const int known_statuses[] = {
	200, 201, 204, 400, 401, 404, 405, 413, 422, 500, 503, 504
};
#define STATUS_COUNT	(sizeof(known_statuses) / sizeof(known_statuses[0]))
#define STATUS_OTHER	STATUS_COUNT

/* Histogram upper bounds in microseconds, and their `le` labels. */
static const uint64_t bucket_bounds_us[] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};
static const char *const bucket_labels[] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
	"0.25", "0.5", "1", "2.5", "5", "10", "+Inf"
};
#define BOUND_COUNT	(sizeof(bucket_bounds_us) / sizeof(bucket_bounds_us[0]))
#define BUCKET_COUNT	(BOUND_COUNT + 1)	/* the last is +Inf */

_Static_assert(sizeof(bucket_labels) / sizeof(bucket_labels[0]) == BUCKET_COUNT,
    "one label per bucket");

static const char *const route_names[METRICS_ROUTE_COUNT] = {
	[METRICS_ROUTE_EXEC] = "exec",
	[METRICS_ROUTE_COMPILE] = "compile",
	[METRICS_ROUTE_SCRIPTS] = "scripts",
	[METRICS_ROUTE_SCRIPT_RUN] = "script_run",
	[METRICS_ROUTE_HEALTHZ] = "healthz",
	[METRICS_ROUTE_INFO] = "info",
	[METRICS_ROUTE_METRICS] = "metrics",
	[METRICS_ROUTE_OTHER] = "other",
};

/* Buckets are not cumulative here (one increment per observation); the
 * rendering adds them up, and _count is their total, so the +Inf bucket
 * and _count always agree. */
static _Atomic uint64_t requests[METRICS_ROUTE_COUNT][STATUS_COUNT + 1];
static _Atomic uint64_t duration_buckets[METRICS_ROUTE_COUNT][BUCKET_COUNT];
static _Atomic uint64_t duration_sum_us[METRICS_ROUTE_COUNT];
/* Jobs answered by the pool: [0] time queued, [1] time running. */
static _Atomic uint64_t job_buckets[2][BUCKET_COUNT];
static _Atomic uint64_t job_sum_us[2];

static enum metrics_route
route_or_other(enum metrics_route route)
{
	if ((unsigned)route >= METRICS_ROUTE_COUNT)
		return METRICS_ROUTE_OTHER;
	return route;
}

const char *
metrics_route_name(enum metrics_route route)
{
	return route_names[route_or_other(route)];
}

static unsigned
status_slot(int status)
{
	for (unsigned i = 0; i < STATUS_COUNT; i++) {
		if (known_statuses[i] == status)
			return i;
	}
	return STATUS_OTHER;
}

static uint64_t
microseconds_of(double seconds)
{
	if (!(seconds > 0))	/* also NaN */
		return 0;
	if (seconds > 1e12)
		return (uint64_t)1e18;
	return (uint64_t)(seconds * 1e6 + 0.5);
}

static unsigned
bucket_of(uint64_t us)
{
	unsigned i = 0;
	while (i < BOUND_COUNT && us > bucket_bounds_us[i])
		i++;
	return i;
}

void
metrics_observe(enum metrics_route route, int status, double seconds)
{
	uint64_t us = microseconds_of(seconds);

	route = route_or_other(route);
	atomic_fetch_add_explicit(&requests[route][status_slot(status)], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&duration_buckets[route][bucket_of(us)], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&duration_sum_us[route], us, memory_order_relaxed);
}

void
metrics_observe_job(double queued_seconds, double run_seconds)
{
	uint64_t us[2] = { microseconds_of(queued_seconds), microseconds_of(run_seconds) };

	for (int i = 0; i < 2; i++) {
		atomic_fetch_add_explicit(&job_buckets[i][bucket_of(us[i])], 1,
		    memory_order_relaxed);
		atomic_fetch_add_explicit(&job_sum_us[i], us[i], memory_order_relaxed);
	}
}

/* Rendering ----------------------------------------------------------- */

static int
append_family(struct buffer *out, const char *name, const char *type, const char *help)
{
	return buffer_printf(out, "# HELP luapoold_%s %s\n# TYPE luapoold_%s %s\n",
	    name, help, name, type);
}

static int
append_requests(struct buffer *out)
{
	if (append_family(out, "requests_total", "counter",
	    "HTTP requests answered, by route and status.") == -1)
		return -1;
	for (unsigned r = 0; r < METRICS_ROUTE_COUNT; r++) {
		for (unsigned i = 0; i <= STATUS_COUNT; i++) {
			uint64_t n = atomic_load_explicit(&requests[r][i],
			    memory_order_relaxed);
			if (n == 0)
				continue;
			int failed = i == STATUS_OTHER ?
			    buffer_printf(out, "luapoold_requests_total{route=\"%s\","
			    "status=\"other\"} %llu\n", route_names[r],
			    (unsigned long long)n) :
			    buffer_printf(out, "luapoold_requests_total{route=\"%s\","
			    "status=\"%d\"} %llu\n", route_names[r], known_statuses[i],
			    (unsigned long long)n);
			if (failed == -1)
				return -1;
		}
	}
	return 0;
}

/* The series of one histogram: luapoold_<name>_bucket{<label>le=...},
 * _sum and _count; label is "" or `key="value",`.  Nothing when empty,
 * unless always (a histogram without labels still shows its zeros). */
static int
append_histogram(struct buffer *out, const char *name, const char *label,
    _Atomic uint64_t *buckets, _Atomic uint64_t *sum_us, int always)
{
	uint64_t counts[BUCKET_COUNT], total = 0;

	for (unsigned i = 0; i < BUCKET_COUNT; i++) {
		counts[i] = atomic_load_explicit(&buckets[i], memory_order_relaxed);
		total += counts[i];
	}
	if (total == 0 && !always)
		return 0;
	uint64_t sum = atomic_load_explicit(sum_us, memory_order_relaxed);
	uint64_t cumulative = 0;
	for (unsigned i = 0; i < BUCKET_COUNT; i++) {
		cumulative += counts[i];
		if (buffer_printf(out, "luapoold_%s_bucket{%sle=\"%s\"} %llu\n", name, label,
		    bucket_labels[i], (unsigned long long)cumulative) == -1)
			return -1;
	}
	size_t label_len = strlen(label);
	/* The label without its trailing comma, in braces, or nothing. */
	return buffer_printf(out, "luapoold_%s_sum%s%.*s%s %llu.%06llu\n"
	    "luapoold_%s_count%s%.*s%s %llu\n",
	    name, label_len ? "{" : "", (int)(label_len ? label_len - 1 : 0), label,
	    label_len ? "}" : "", (unsigned long long)(sum / 1000000),
	    (unsigned long long)(sum % 1000000),
	    name, label_len ? "{" : "", (int)(label_len ? label_len - 1 : 0), label,
	    label_len ? "}" : "", (unsigned long long)total);
}

static int
append_route_histogram(struct buffer *out, unsigned route)
{
	char label[48];

	snprintf(label, sizeof(label), "route=\"%s\",", route_names[route]);
	return append_histogram(out, "request_duration_seconds", label,
	    duration_buckets[route], &duration_sum_us[route], 0);
}

static int
append_job_times(struct buffer *out)
{
	if (append_family(out, "job_queue_seconds", "histogram",
	    "Time jobs waited for a worker (and were being sent to it).") == -1 ||
	    append_histogram(out, "job_queue_seconds", "", job_buckets[0], &job_sum_us[0],
	    1) == -1 ||
	    append_family(out, "job_run_seconds", "histogram",
	    "Time jobs ran in a worker, request decoding and result encoding included.") == -1)
		return -1;
	return append_histogram(out, "job_run_seconds", "", job_buckets[1], &job_sum_us[1], 1);
}

static int
append_durations(struct buffer *out)
{
	if (append_family(out, "request_duration_seconds", "histogram",
	    "Time from a request's arrival to its answer, by route.") == -1)
		return -1;
	for (unsigned r = 0; r < METRICS_ROUTE_COUNT; r++) {
		if (append_route_histogram(out, r) == -1)
			return -1;
	}
	return 0;
}

static int
append_single(struct buffer *out, const char *name, const char *type,
    const char *help, unsigned long long value)
{
	if (append_family(out, name, type, help) == -1)
		return -1;
	return buffer_printf(out, "luapoold_%s %llu\n", name, value);
}

static int
append_workers(struct buffer *out, const struct luapool_stats *stats)
{
	if (append_family(out, "workers", "gauge",
	    "Worker processes: live, busy with a job, idle, and the target count.") == -1)
		return -1;
	return buffer_printf(out, "luapoold_workers{state=\"live\"} %u\n"
	    "luapoold_workers{state=\"busy\"} %u\n"
	    "luapoold_workers{state=\"idle\"} %u\n"
	    "luapoold_workers{state=\"target\"} %u\n",
	    stats->workers_live, stats->workers_busy, stats->workers_idle,
	    stats->workers_target);
}

static int
append_jobs(struct buffer *out, const struct luapool_stats *stats)
{
	if (append_family(out, "jobs_total", "counter",
	    "Jobs finished by the pool, by outcome.") == -1)
		return -1;
	for (int i = LUAPOOL_OK; i <= LUAPOOL_E_SHUTDOWN; i++) {
		if (buffer_printf(out, "luapoold_jobs_total{status=\"%s\"} %llu\n",
		    luapool_status_code((enum luapool_status)i),
		    (unsigned long long)stats->jobs_by_status[i]) == -1)
			return -1;
	}
	return 0;
}

static int
append_deadline_stops(struct buffer *out, const struct luapool_stats *stats)
{
	if (append_family(out, "deadline_stops_total", "counter",
	    "Jobs stopped at their deadline: soft (hook, worker kept), hard "
	    "(worker exited), backstop (killed by the supervisor).") == -1)
		return -1;
	return buffer_printf(out, "luapoold_deadline_stops_total{kind=\"soft\"} %llu\n"
	    "luapoold_deadline_stops_total{kind=\"hard\"} %llu\n"
	    "luapoold_deadline_stops_total{kind=\"backstop\"} %llu\n",
	    (unsigned long long)stats->soft_deadline_stops,
	    (unsigned long long)stats->hard_deadline_stops,
	    (unsigned long long)stats->backstop_kills);
}

static int
append_recycle_reasons(struct buffer *out, const struct luapool_stats *stats)
{
	if (append_family(out, "worker_replacements_total", "counter",
	    "Worker processes retired while alive, by reason.") == -1)
		return -1;
	for (int r = 0; r < LUAPOOL_RECYCLE_REASONS; r++)
		if (buffer_printf(out, "luapoold_worker_replacements_total{reason=\"%s\"} %llu\n",
		    luapool_recycle_reason_name((enum luapool_recycle_reason)r),
		    (unsigned long long)stats->recycles_by_reason[r]) == -1)
			return -1;
	return 0;
}

static int
append_pool(struct buffer *out, const struct luapool_stats *stats)
{
	if (append_single(out, "queue_depth", "gauge",
	    "Jobs waiting for a worker.", stats->queued) == -1 ||
	    append_single(out, "queue_capacity", "gauge",
	    "Jobs that may wait before new ones are refused.", stats->queue_depth) == -1 ||
	    append_workers(out, stats) == -1 ||
	    append_jobs(out, stats) == -1 ||
	    append_deadline_stops(out, stats) == -1 ||
	    append_single(out, "worker_crashes_total", "counter",
	    "Worker processes that died unexpectedly.", stats->crashes) == -1 ||
	    append_single(out, "worker_respawns_total", "counter",
	    "Worker processes started to replace one.", stats->respawns) == -1 ||
	    append_single(out, "worker_recycles_total", "counter",
	    "Worker processes retired while alive (any reason).",
	    stats->recycles) == -1 ||
	    append_recycle_reasons(out, stats) == -1 ||
	    append_single(out, "cache_hits_total", "counter",
	    "Bytecode cache hits in the workers.", stats->cache_hits) == -1 ||
	    append_single(out, "cache_misses_total", "counter",
	    "Bytecode cache misses in the workers.", stats->cache_misses) == -1)
		return -1;
	return 0;
}

/* stats may be NULL (no pool yet): the pool series are then zero. */
int
metrics_render(struct buffer *out, const struct luapool_stats *stats,
    unsigned connections, unsigned scripts)
{
	static const struct luapool_stats no_stats;
	size_t start = out->len;

	if (stats == NULL)
		stats = &no_stats;
	if (append_requests(out) == -1 ||
	    append_durations(out) == -1 ||
	    append_job_times(out) == -1 ||
	    append_pool(out, stats) == -1 ||
	    append_single(out, "connections", "gauge",
	    "Open HTTP connections.", connections) == -1 ||
	    append_single(out, "scripts", "gauge",
	    "Stored scripts.", scripts) == -1)
		goto fail;
	return 0;
fail:
	out->len = start;
	return -1;
}
