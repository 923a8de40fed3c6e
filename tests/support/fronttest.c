/*
 * fronttest.c - see fronttest.h.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/apitest.h"
#include "support/fronttest.h"
#include "support/server.h"
#include "support/support.h"

#define LANE_TIMING	"queue;dur=0.000,"
#define FRONTS_SEEN_MAX	8	/* a test's daemon has a few at most */

int
fronttest_connect_at(int line, unsigned port)
{
	int fd = httpc_connect(port, HTTPC_TIMEOUT_MS);
	ck_assert_msg(fd != -1, "line %d: cannot connect to port %u", line, port);
	return fd;
}

void
fronttest_send_at(int line, int fd, const char *method, const char *path, const char *headers,
    const char *body)
{
	ck_assert_msg(httpc_send_request(fd, method, path, headers, body,
	    body ? strlen(body) : 0) == 0, "line %d: cannot send %s %s", line, method, path);
}

void
fronttest_exchange_at(int line, int fd, const char *method, const char *path,
    const char *headers, const char *body, struct httpc_response *r)
{
	fronttest_send_at(line, fd, method, path, headers, body);
	if (httpc_read_response(fd, r) == -1)
		ck_abort_msg("line %d: %s %s got no HTTP answer; log:\n%s", line, method, path,
		    server_log(&apitest_server));
}

int
fronttest_from_lane(const struct httpc_response *r)
{
	const char *timing = httpc_header(r, "Server-Timing");
	return timing && strncmp(timing, LANE_TIMING, strlen(LANE_TIMING)) == 0;
}

int
fronttest_train_at(int line, int fd, const char *headers, const char *body, const char *result)
{
	char all[512];
	snprintf(all, sizeof(all), JSON_HEADERS "%s", headers ? headers : "");
	for (int i = 0; i < FRONTTEST_TRAIN_MAX; i++) {
		struct httpc_response r;
		fronttest_exchange_at(line, fd, "POST", "/v1/exec", all, body, &r);
		apitest_expect_json_at(line, &r, 200, result);
		int lane = fronttest_from_lane(&r);
		httpc_response_free(&r);
		if (lane)
			return i;
	}
	ck_abort_msg("line %d: no lane answer in %d requests of %s", line,
	    FRONTTEST_TRAIN_MAX, body);
	return -1;
}

double
fronttest_metric_at(int line, const char *series)
{
	struct httpc_response r;
	apitest_ask_at(line, "GET", "/metrics", NULL, NULL, &r);
	ck_assert_msg(r.status == 200, "line %d: /metrics answered %d", line, r.status);
	double value = 0;
	size_t n = strlen(series);
	for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			value = strtod(p + n + 1, NULL);
			break;
		}
	}
	httpc_response_free(&r);
	return value;
}

pid_t
fronttest_wait_for_fronts_at(int line, int count, pid_t not_this)
{
	int64_t deadline = support_now_ms() + WAIT_MS;
	pid_t pids[FRONTS_SEEN_MAX];
	for (;;) {
		int n = support_children(apitest_server.pid, FRONTTEST_COMM, pids, FRONTS_SEEN_MAX);
		int fresh = n == count;
		for (int i = 0; fresh && i < n; i++)
			fresh = pids[i] != not_this;
		if (fresh)
			return pids[0];
		ck_assert_msg(support_now_ms() < deadline, "line %d: %d fronts (wanted %d, "
		    "not pid %d)", line, n, count, (int)not_this);
		usleep(POLL_STEP_US);
	}
}

/* utime + stime of pid, in milliseconds (-1: gone). */
static long long
cpu_ms_of(pid_t pid)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* Fields after the command name, which may hold spaces: state is 3rd,
	 * utime the 14th and stime the 15th. */
	const char *p = strrchr(text, ')');
	unsigned long long utime, stime;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &utime, &stime) != 2)
		return -1;
	return (long long)((utime + stime) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

void
fronttest_wait_for_cpu_at(int line, pid_t pid, unsigned ms)
{
	long long start = cpu_ms_of(pid), now = start;
	int64_t deadline = support_now_ms() + WAIT_MS;
	ck_assert_msg(start >= 0, "line %d: no process %d", line, (int)pid);
	while (now >= 0 && now - start < ms) {
		ck_assert_msg(support_now_ms() < deadline, "line %d: process %d used %lld ms of "
		    "CPU, not %u", line, (int)pid, now - start, ms);
		usleep(1000);
		now = cpu_ms_of(pid);
	}
}
