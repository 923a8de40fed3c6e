/*
 * test_metrics.c - the Prometheus rendering: request counters by route and
 * status, cumulative histograms whose +Inf bucket matches _count, the pool
 * series from a stats struct, the job-time histograms, build info and the
 * process_* series, the syntax of every line of the exposition,
 * and (at the end) the sd_notify datagram of notify.c.
 *
 * The counters are process-wide: every test observes on routes and statuses
 * no other test uses, so the assertions hold with or without CK_FORK.
 */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "common/log.h"
#include "daemon/metrics.h"
#include "daemon/metrics_process.h"
#include "daemon/notify.h"

static char *
render_text(const struct luapool_stats *stats, unsigned connections, unsigned scripts)
{
	struct buffer out;

	buffer_init(&out, 0);
	ck_assert_int_eq(metrics_render(&out, stats, connections, scripts), 0);
	char *text = buffer_steal(&out, NULL);
	ck_assert_ptr_nonnull(text);
	return text;
}

/* The value of the sample line that starts with `series` followed by a
 * space, or -1 when there is no such line. */
static double
series_value(const char *text, const char *series)
{
	size_t len = strlen(series);

	for (const char *line = text; *line != '\0'; ) {
		if (strncmp(line, series, len) == 0 && line[len] == ' ')
			return strtod(line + len + 1, NULL);
		const char *next = strchr(line, '\n');
		if (next == NULL)
			break;
		line = next + 1;
	}
	return -1;
}

static void
assert_series(const char *text, const char *series, double expected)
{
	double value = series_value(text, series);
	ck_assert_msg(value == expected, "%s should be %g, is %g\n%s", series, expected,
	    value, text);
}

/* Requests ------------------------------------------------------------- */

START_TEST(route_name_should_name_every_route_and_default_to_other)
{
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_EXEC), "exec");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_COMPILE), "compile");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_SCRIPTS), "scripts");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_SCRIPT_RUN), "script_run");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_HEALTHZ), "healthz");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_INFO), "info");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_METRICS), "metrics");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_OTHER), "other");
	ck_assert_str_eq(metrics_route_name(METRICS_ROUTE_COUNT), "other");
}
END_TEST

START_TEST(render_should_count_requests_by_route_and_status)
{
	for (int i = 0; i < 3; i++)
		metrics_observe(METRICS_ROUTE_EXEC, 200, 0.002);
	metrics_observe(METRICS_ROUTE_EXEC, 422, 0.01);
	metrics_observe(METRICS_ROUTE_COMPILE, 400, 0.001);
	metrics_observe(METRICS_ROUTE_COMPILE, 400, 0.001);

	char *text = render_text(NULL, 0, 0);
	assert_series(text, "luapoold_requests_total{route=\"exec\",status=\"200\"}", 3);
	assert_series(text, "luapoold_requests_total{route=\"exec\",status=\"422\"}", 1);
	assert_series(text, "luapoold_requests_total{route=\"compile\",status=\"400\"}", 2);
	/* Zero series are left out. */
	assert_series(text, "luapoold_requests_total{route=\"compile\",status=\"200\"}", -1);
	assert_series(text, "luapoold_requests_total{route=\"exec\",status=\"500\"}", -1);
	free(text);
}
END_TEST

START_TEST(render_should_count_unknown_statuses_as_other)
{
	metrics_observe(METRICS_ROUTE_INFO, 418, 0.0001);
	metrics_observe(METRICS_ROUTE_INFO, 302, 0.0001);
	metrics_observe(METRICS_ROUTE_INFO, 200, 0.0001);
	metrics_observe(METRICS_ROUTE_COUNT + 3, 200, 0.0001);	/* out of range */

	char *text = render_text(NULL, 0, 0);
	assert_series(text, "luapoold_requests_total{route=\"info\",status=\"other\"}", 2);
	assert_series(text, "luapoold_requests_total{route=\"info\",status=\"200\"}", 1);
	assert_series(text, "luapoold_requests_total{route=\"other\",status=\"200\"}", 1);
	free(text);
}
END_TEST

START_TEST(render_should_print_help_and_type_of_every_family_without_requests)
{
	static const char *const families[] = {
		"requests_total counter", "request_duration_seconds histogram",
		"queue_depth gauge", "queue_capacity gauge", "workers gauge",
		"jobs_total counter", "deadline_stops_total counter",
		"worker_crashes_total counter", "worker_respawns_total counter",
		"worker_recycles_total counter", "worker_replacements_total counter",
		"cache_hits_total counter",
		"cache_misses_total counter", "connections gauge", "scripts gauge",
		"job_queue_seconds histogram", "job_run_seconds histogram",
	};
	char line[128];

	char *text = render_text(NULL, 0, 0);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "\n# TYPE luapoold_%s\n", families[i]);
		ck_assert_msg(strstr(text, line) != NULL, "missing %s", line);
		snprintf(line, sizeof(line), "# HELP luapoold_%.*s ",
		    (int)strcspn(families[i], " "), families[i]);
		ck_assert_msg(strstr(text, line) != NULL, "missing %s", line);
	}
	/* No test observes the metrics route. */
	ck_assert_ptr_null(strstr(text, "route=\"metrics\""));
	free(text);
}
END_TEST

/* Histograms ----------------------------------------------------------- */

START_TEST(histogram_buckets_should_be_cumulative_and_match_the_count)
{
	static const struct { const char *le; double count; } expected[] = {
		{ "0.0005", 1 }, { "0.001", 2 }, { "0.0025", 2 }, { "0.005", 3 },
		{ "0.01", 3 }, { "0.025", 3 }, { "0.05", 3 }, { "0.1", 3 },
		{ "0.25", 4 }, { "0.5", 4 }, { "1", 4 }, { "2.5", 4 }, { "5", 4 },
		{ "10", 4 }, { "+Inf", 5 },
	};
	char series[160];

	metrics_observe(METRICS_ROUTE_SCRIPT_RUN, 200, 0.0003);
	metrics_observe(METRICS_ROUTE_SCRIPT_RUN, 200, 0.001);	/* on the bound */
	metrics_observe(METRICS_ROUTE_SCRIPT_RUN, 504, 0.003);
	metrics_observe(METRICS_ROUTE_SCRIPT_RUN, 200, 0.2);
	metrics_observe(METRICS_ROUTE_SCRIPT_RUN, 504, 20.0);

	char *text = render_text(NULL, 0, 0);
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		snprintf(series, sizeof(series), "luapoold_request_duration_seconds_bucket"
		    "{route=\"script_run\",le=\"%s\"}", expected[i].le);
		assert_series(text, series, expected[i].count);
	}
	assert_series(text, "luapoold_request_duration_seconds_count{route=\"script_run\"}", 5);
	ck_assert_msg(strstr(text, "luapoold_request_duration_seconds_sum"
	    "{route=\"script_run\"} 20.204300\n") != NULL, "%s", text);
	free(text);
}
END_TEST

START_TEST(histogram_should_treat_negative_and_nan_durations_as_zero)
{
	metrics_observe(METRICS_ROUTE_SCRIPTS, 204, -1.0);
	metrics_observe(METRICS_ROUTE_SCRIPTS, 204, NAN);

	char *text = render_text(NULL, 0, 0);
	assert_series(text, "luapoold_request_duration_seconds_bucket"
	    "{route=\"scripts\",le=\"0.0005\"}", 2);
	assert_series(text, "luapoold_request_duration_seconds_sum{route=\"scripts\"}", 0);
	free(text);
}
END_TEST

START_TEST(job_times_should_be_two_histograms_without_labels)
{
	char *text = render_text(NULL, 0, 0);
	/* Shown with zeros before the first job. */
	double before = series_value(text, "luapoold_job_run_seconds_count");
	ck_assert(before >= 0);
	free(text);

	metrics_observe_job(0.0002, 0.003);
	metrics_observe_job(0.02, 2.0);
	text = render_text(NULL, 0, 0);
	assert_series(text, "luapoold_job_queue_seconds_count", before + 2);
	assert_series(text, "luapoold_job_run_seconds_count", before + 2);
	assert_series(text, "luapoold_job_queue_seconds_bucket{le=\"0.0005\"}", before + 1);
	assert_series(text, "luapoold_job_run_seconds_bucket{le=\"0.0025\"}", before);
	assert_series(text, "luapoold_job_run_seconds_bucket{le=\"0.005\"}", before + 1);
	assert_series(text, "luapoold_job_run_seconds_bucket{le=\"2.5\"}", before + 2);
	assert_series(text, "luapoold_job_run_seconds_bucket{le=\"+Inf\"}", before + 2);
	ck_assert(series_value(text, "luapoold_job_run_seconds_sum") >= 2.003);
	free(text);
}
END_TEST

struct observer {
	int rounds;
};

static void *
observe_many(void *arg)
{
	const struct observer *o = arg;

	for (int i = 0; i < o->rounds; i++)
		metrics_observe(METRICS_ROUTE_HEALTHZ, 503, 0.004);
	return NULL;
}

START_TEST(observe_from_several_threads_should_lose_no_counts)
{
	struct observer o = { 20000 };
	pthread_t threads[4];

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, observe_many, &o), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);

	char *text = render_text(NULL, 0, 0);
	assert_series(text, "luapoold_requests_total{route=\"healthz\",status=\"503\"}", 80000);
	assert_series(text, "luapoold_request_duration_seconds_count{route=\"healthz\"}", 80000);
	assert_series(text, "luapoold_request_duration_seconds_bucket"
	    "{route=\"healthz\",le=\"0.0025\"}", 0);
	assert_series(text, "luapoold_request_duration_seconds_bucket"
	    "{route=\"healthz\",le=\"0.005\"}", 80000);
	assert_series(text, "luapoold_request_duration_seconds_sum{route=\"healthz\"}", 320);
	free(text);
}
END_TEST

/* Pool ----------------------------------------------------------------- */

static void
fill_stats(struct luapool_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	stats->workers_live = 4;
	stats->workers_busy = 3;
	stats->workers_idle = 1;
	stats->workers_target = 5;
	stats->queued = 7;
	stats->queue_depth = 1024;
	for (int i = LUAPOOL_OK; i <= LUAPOOL_E_SHUTDOWN; i++)
		stats->jobs_by_status[i] = 100 + (uint64_t)i;
	stats->soft_deadline_stops = 11;
	stats->hard_deadline_stops = 12;
	stats->backstop_kills = 13;
	stats->crashes = 21;
	stats->respawns = 22;
	stats->recycles = 23;
	for (int r = 0; r < LUAPOOL_RECYCLE_REASONS; r++)
		stats->recycles_by_reason[r] = 40u + (unsigned)r;
	stats->cache_hits = 31;
	stats->cache_misses = 32;
}

START_TEST(render_should_print_the_pool_stats)
{
	struct luapool_stats stats;
	char series[128];

	fill_stats(&stats);
	char *text = render_text(&stats, 9, 42);
	assert_series(text, "luapoold_queue_depth", 7);
	assert_series(text, "luapoold_queue_capacity", 1024);
	assert_series(text, "luapoold_workers{state=\"live\"}", 4);
	assert_series(text, "luapoold_workers{state=\"busy\"}", 3);
	assert_series(text, "luapoold_workers{state=\"idle\"}", 1);
	assert_series(text, "luapoold_workers{state=\"target\"}", 5);
	for (int i = LUAPOOL_OK; i <= LUAPOOL_E_SHUTDOWN; i++) {
		snprintf(series, sizeof(series), "luapoold_jobs_total{status=\"%s\"}",
		    luapool_status_code((enum luapool_status)i));
		assert_series(text, series, 100 + i);
	}
	assert_series(text, "luapoold_jobs_total{status=\"ok\"}", 100);
	assert_series(text, "luapoold_jobs_total{status=\"deadline_exceeded\"}",
	    100 + LUAPOOL_E_DEADLINE);
	assert_series(text, "luapoold_deadline_stops_total{kind=\"soft\"}", 11);
	assert_series(text, "luapoold_deadline_stops_total{kind=\"hard\"}", 12);
	assert_series(text, "luapoold_deadline_stops_total{kind=\"backstop\"}", 13);
	assert_series(text, "luapoold_worker_crashes_total", 21);
	assert_series(text, "luapoold_worker_respawns_total", 22);
	assert_series(text, "luapoold_worker_recycles_total", 23);
	assert_series(text, "luapoold_worker_replacements_total{reason=\"max_jobs\"}", 40);
	assert_series(text, "luapoold_worker_replacements_total{reason=\"bad_load\"}",
	    40 + LUAPOOL_RECYCLE_BAD_LOAD);
	assert_series(text, "luapoold_worker_replacements_total{reason=\"damaged\"}",
	    40 + LUAPOOL_RECYCLE_DAMAGED);
	assert_series(text, "luapoold_cache_hits_total", 31);
	assert_series(text, "luapoold_cache_misses_total", 32);
	assert_series(text, "luapoold_connections", 9);
	assert_series(text, "luapoold_scripts", 42);
	free(text);
}
END_TEST

START_TEST(render_without_stats_should_print_zero_pool_series)
{
	char *text = render_text(NULL, 0, 0);
	assert_series(text, "luapoold_queue_depth", 0);
	assert_series(text, "luapoold_workers{state=\"live\"}", 0);
	assert_series(text, "luapoold_jobs_total{status=\"ok\"}", 0);
	free(text);
}
END_TEST

START_TEST(render_should_fail_and_leave_the_buffer_as_it_was_over_its_limit)
{
	struct buffer out;

	buffer_init(&out, 300);
	buffer_append_string(&out, "kept");
	ck_assert_int_eq(metrics_render(&out, NULL, 0, 0), -1);
	ck_assert_uint_eq(out.len, 4);
	buffer_free(&out);
}
END_TEST

/* Exposition syntax ----------------------------------------------------- */

#define FAMILIES_MAX 64

struct family {
	char name[96];
	char type[16];
	int helped;
};

struct families {
	struct family list[FAMILIES_MAX];
	int count;
};

static struct family *
family_named(struct families *f, const char *name, size_t len)
{
	for (int i = 0; i < f->count; i++) {
		if (strlen(f->list[i].name) == len && strncmp(f->list[i].name, name, len) == 0)
			return &f->list[i];
	}
	return NULL;
}

static struct family *
family_added(struct families *f, const char *name, size_t len)
{
	struct family *family = family_named(f, name, len);
	if (family != NULL)
		return family;
	ck_assert_int_lt(f->count, FAMILIES_MAX);
	ck_assert_uint_lt(len, sizeof(family->name));
	family = &f->list[f->count++];
	memset(family, 0, sizeof(*family));
	memcpy(family->name, name, len);
	return family;
}

static int
is_name_start(char c, int allow_colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (allow_colon && c == ':');
}

static int
is_name_char(char c, int allow_colon)
{
	return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

/* Length of a metric (allow_colon) or label name at p; 0 if none. */
static size_t
name_length(const char *p, int allow_colon)
{
	size_t n = 0;
	if (!is_name_start(p[0], allow_colon))
		return 0;
	while (is_name_char(p[n], allow_colon))
		n++;
	return n;
}

/* Checks `{name="value",...}` at p; returns the length or 0. */
static size_t
labels_length(const char *p)
{
	const char *start = p;

	if (*p++ != '{')
		return 0;
	for (;;) {
		size_t n = name_length(p, 0);
		if (n == 0 || p[n] != '=' || p[n + 1] != '"')
			return 0;
		p += n + 2;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				return 0;
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return 0;
				p++;
			}
			p++;
		}
		p++;
		if (*p == '}')
			return (size_t)(p + 1 - start);
		if (*p++ != ',')
			return 0;
	}
}

static int
is_sample_value(const char *p, size_t len)
{
	char value[64], *end;

	if (len == 0 || len >= sizeof(value))
		return 0;
	memcpy(value, p, len);
	value[len] = '\0';
	if (strcmp(value, "+Inf") == 0 || strcmp(value, "-Inf") == 0 ||
	    strcmp(value, "NaN") == 0)
		return 1;
	strtod(value, &end);
	return *end == '\0' && (value[0] == '-' || (value[0] >= '0' && value[0] <= '9'));
}

/* The family a sample belongs to: a histogram's _bucket/_sum/_count
 * series belong to the histogram's name. */
static struct family *
family_of_sample(struct families *f, const char *name, size_t len)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(suffixes[i]);
		if (len > n && strncmp(name + len - n, suffixes[i], n) == 0) {
			struct family *family = family_named(f, name, len - n);
			if (family != NULL && strcmp(family->type, "histogram") == 0)
				return family;
		}
	}
	return family_named(f, name, len);
}

static void
check_comment(struct families *f, const char *line, size_t len)
{
	int is_help = strncmp(line, "# HELP ", 7) == 0;
	ck_assert_msg(is_help || strncmp(line, "# TYPE ", 7) == 0, "bad comment: %.*s",
	    (int)len, line);
	const char *name = line + 7;
	size_t n = name_length(name, 1);
	ck_assert_msg(n > 0 && name[n] == ' ', "bad name in: %.*s", (int)len, line);
	struct family *family = family_added(f, name, n);
	if (is_help) {
		ck_assert_msg(!family->helped, "second HELP: %.*s", (int)len, line);
		family->helped = 1;
		return;
	}
	ck_assert_msg(family->type[0] == '\0', "second TYPE: %.*s", (int)len, line);
	size_t type_len = len - 7 - n - 1;
	ck_assert_uint_lt(type_len, sizeof(family->type));
	memcpy(family->type, name + n + 1, type_len);
	family->type[type_len] = '\0';
	ck_assert_msg(strcmp(family->type, "counter") == 0 ||
	    strcmp(family->type, "gauge") == 0 || strcmp(family->type, "histogram") == 0,
	    "bad type: %.*s", (int)len, line);
}

static void
check_sample(struct families *f, const char *line, size_t len)
{
	size_t n = name_length(line, 1);
	ck_assert_msg(n > 0, "bad sample: %.*s", (int)len, line);
	ck_assert_msg(strncmp(line, "luapoold_", 9) == 0 || strncmp(line, "process_", 8) == 0,
	    "unprefixed: %.*s", (int)len, line);
	struct family *family = family_of_sample(f, line, n);
	ck_assert_msg(family != NULL && family->type[0] != '\0',
	    "sample before its TYPE: %.*s", (int)len, line);
	size_t at = n;
	if (line[at] == '{') {
		size_t labels = labels_length(line + at);
		ck_assert_msg(labels > 0, "bad labels: %.*s", (int)len, line);
		at += labels;
	}
	ck_assert_msg(line[at] == ' ', "no space before value: %.*s", (int)len, line);
	at++;
	ck_assert_msg(is_sample_value(line + at, len - at), "bad value: %.*s", (int)len,
	    line);
	if (strcmp(family->type, "histogram") == 0 && strncmp(line + n - 7, "_bucket", 7) == 0)
		ck_assert_msg(memmem(line, len, "le=\"", 4) != NULL, "no le: %.*s",
		    (int)len, line);
}

START_TEST(render_should_produce_valid_exposition_lines)
{
	struct families families = { .count = 0 };
	struct luapool_stats stats;

	metrics_observe(METRICS_ROUTE_OTHER, 404, 0.0002);
	metrics_observe(METRICS_ROUTE_OTHER, 405, 3.5);
	fill_stats(&stats);
	char *text = render_text(&stats, 1, 2);
	struct buffer process;
	buffer_init(&process, 0);
	buffer_append_string(&process, text);
	ck_assert_int_eq(metrics_process_render(&process, "LuaJIT \"2.1\"\n"), 0);
	free(text);
	text = buffer_steal(&process, NULL);
	size_t total = strlen(text);
	ck_assert_uint_gt(total, 0);
	ck_assert_int_eq(text[total - 1], '\n');

	for (const char *line = text; *line != '\0'; ) {
		const char *end = strchr(line, '\n');
		size_t len = (size_t)(end - line);
		ck_assert_msg(len > 0, "empty line");
		if (line[0] == '#')
			check_comment(&families, line, len);
		else
			check_sample(&families, line, len);
		line = end + 1;
	}
	for (int i = 0; i < families.count; i++) {
		ck_assert_msg(families.list[i].helped && families.list[i].type[0] != '\0',
		    "%s needs HELP and TYPE", families.list[i].name);
	}
	/* 17 luapoold_ families, build_info, and six process_ series. */
	ck_assert_int_eq(families.count, 24);
	free(text);
}
END_TEST

/* Process series --------------------------------------------------------- */

START_TEST(process_render_should_describe_this_process)
{
	struct buffer out;
	buffer_init(&out, 0);
	ck_assert_int_eq(metrics_process_render(&out, "LuaJIT 2.1.0-beta3"), 0);
	char *text = buffer_steal(&out, NULL);
	ck_assert_msg(strncmp(text, "# HELP luapoold_build_info ", 27) == 0, "%s", text);
	ck_assert_ptr_nonnull(strstr(text, "\nluapoold_build_info{version=\"" LUAPOOL_VERSION
	    "\",luajit=\"LuaJIT 2.1.0-beta3\"} 1\n"));
	ck_assert(series_value(text, "process_resident_memory_bytes") > 100 * 1024);
	ck_assert(series_value(text, "process_virtual_memory_bytes") >=
	    series_value(text, "process_resident_memory_bytes"));
	ck_assert(series_value(text, "process_cpu_seconds_total") >= 0);
	ck_assert(series_value(text, "process_max_fds") > 0);
	/* stdin, stdout, stderr at least, and one more opened here. */
	double fds = series_value(text, "process_open_fds");
	int fd = dup(2);
	free(text);
	buffer_init(&out, 0);
	ck_assert_int_eq(metrics_process_render(&out, ""), 0);
	text = buffer_steal(&out, NULL);
	ck_assert(fds >= 3);
	assert_series(text, "process_open_fds", fds + 1);
	close(fd);
	double start = series_value(text, "process_start_time_seconds");
	double now = (double)time(NULL);
	ck_assert_msg(start > now - 600 && start <= now + 1, "start %f, now %f", start, now);
	free(text);
}
END_TEST

START_TEST(process_render_should_escape_the_engine_label_and_fail_when_full)
{
	struct buffer out;
	buffer_init(&out, 0);
	ck_assert_int_eq(metrics_process_render(&out, "a\"b\\c\nd"), 0);
	char *text = buffer_steal(&out, NULL);
	ck_assert_ptr_nonnull(strstr(text, "luajit=\"a\\\"b\\\\cd\"} 1\n"));
	free(text);
	buffer_init(&out, 200);
	buffer_append_string(&out, "kept");
	ck_assert_int_eq(metrics_process_render(&out, "x"), -1);
	ck_assert_uint_eq(out.len, 4);
	buffer_free(&out);
}
END_TEST

/* notify --------------------------------------------------------------- */

/* Binds a datagram socket at `name` ("/path" or "@abstract"). */
static int
bind_datagram_socket(const char *name)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(name);

	ck_assert_uint_lt(len, sizeof(addr.sun_path));
	memcpy(addr.sun_path, name, len);
	socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (name[0] == '@')
		addr.sun_path[0] = '\0';
	else
		addr_len++;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, addr_len), 0);
	return fd;
}

static void
assert_receives(int fd, const char *expected)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char got[256];

	ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
	ssize_t n = recv(fd, got, sizeof(got) - 1, 0);
	ck_assert_int_eq(n, (ssize_t)strlen(expected));
	got[n] = '\0';
	ck_assert_str_eq(got, expected);
}

START_TEST(notify_send_should_do_nothing_without_notify_socket)
{
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	ck_assert_int_eq(notify_send("READY=1"), 0);
}
END_TEST

START_TEST(notify_send_should_deliver_the_state_to_a_socket_path)
{
	char dir[] = "/tmp/test_notify.XXXXXX", path[128];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = bind_datagram_socket(path);
	setenv("NOTIFY_SOCKET", path, 1);
	int sent = notify_send("READY=1\nSTATUS=serving");
	unlink(path);
	rmdir(dir);
	ck_assert_int_eq(sent, 0);
	assert_receives(fd, "READY=1\nSTATUS=serving");
	close(fd);
}
END_TEST

START_TEST(notify_send_should_deliver_the_state_to_an_abstract_socket)
{
	char name[64];

	snprintf(name, sizeof(name), "@luapoold-test-notify-%d", (int)getpid());
	int fd = bind_datagram_socket(name);
	setenv("NOTIFY_SOCKET", name, 1);
	ck_assert_int_eq(notify_send("STOPPING=1"), 0);
	assert_receives(fd, "STOPPING=1");
	close(fd);
}
END_TEST

START_TEST(notify_send_should_fail_for_a_bad_or_missing_socket)
{
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	ck_assert_int_eq(notify_send("READY=1"), -1);
	setenv("NOTIFY_SOCKET", "/nonexistent/luapoold/notify", 1);
	ck_assert_int_eq(notify_send("READY=1"), -1);
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *suite = suite_create("metrics");
	TCase *requests = tcase_create("requests");
	TCase *pool = tcase_create("pool");
	TCase *syntax = tcase_create("syntax");
	TCase *notify = tcase_create("notify");

	tcase_add_test(requests, route_name_should_name_every_route_and_default_to_other);
	tcase_add_test(requests, render_should_count_requests_by_route_and_status);
	tcase_add_test(requests, render_should_count_unknown_statuses_as_other);
	tcase_add_test(requests, render_should_print_help_and_type_of_every_family_without_requests);
	tcase_add_test(requests, histogram_buckets_should_be_cumulative_and_match_the_count);
	tcase_add_test(requests, histogram_should_treat_negative_and_nan_durations_as_zero);
	tcase_add_test(requests, observe_from_several_threads_should_lose_no_counts);
	tcase_add_test(requests, job_times_should_be_two_histograms_without_labels);

	tcase_add_test(pool, render_should_print_the_pool_stats);
	tcase_add_test(pool, render_without_stats_should_print_zero_pool_series);
	tcase_add_test(pool, render_should_fail_and_leave_the_buffer_as_it_was_over_its_limit);

	tcase_add_test(syntax, render_should_produce_valid_exposition_lines);
	tcase_add_test(syntax, process_render_should_describe_this_process);
	tcase_add_test(syntax, process_render_should_escape_the_engine_label_and_fail_when_full);

	tcase_add_test(notify, notify_send_should_do_nothing_without_notify_socket);
	tcase_add_test(notify, notify_send_should_deliver_the_state_to_a_socket_path);
	tcase_add_test(notify, notify_send_should_deliver_the_state_to_an_abstract_socket);
	tcase_add_test(notify, notify_send_should_fail_for_a_bad_or_missing_socket);

	suite_add_tcase(suite, requests);
	suite_add_tcase(suite, pool);
	suite_add_tcase(suite, syntax);
	suite_add_tcase(suite, notify);
	return suite;
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	SRunner *runner = srunner_create(metrics_suite());

	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
