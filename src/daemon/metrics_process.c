/*
 * metrics_process.c - luapoold_build_info and the standard process_*
 * series (the names and units of the Prometheus client libraries), read
 * from /proc/self at each scrape.  Only the supervisor is described: the
 * workers are other processes.  This file only reads /proc and formats;
 * it must never fail a scrape because /proc is unreadable (the series is
 * then left out).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/metrics_process.h"
#include "luapool.h"

struct process_stat {
	unsigned long long utime, stime, starttime, vsize;
	long long rss;
};

/* The fields of /proc/self/stat we need; the command name, in parentheses,
 * may hold spaces and parentheses itself, so fields count from the last ')'. */
static int
read_process_stat(struct process_stat *st)
{
	char line[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	if (f == NULL)
		return -1;
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	char *after = strrchr(line, ')');
	if (after == NULL)
		return -1;
	/* Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime(14) stime(15) cutime cstime priority nice
	 * num_threads itrealvalue starttime(22) vsize(23) rss(24). */
	int got = sscanf(after + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
	    "%*d %*d %*d %*d %*d %*d %llu %llu %lld", &st->utime, &st->stime, &st->starttime,
	    &st->vsize, &st->rss);
	return got == 5 ? 0 : -1;
}

/* The "btime" line of /proc/stat: boot time in Unix seconds. */
static long long
boot_time(void)
{
	char line[256];
	long long btime = -1;
	FILE *f = fopen("/proc/stat", "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	return btime;
}

static long
open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	long count = 0;
	if (dir == NULL)
		return -1;
	for (struct dirent *e; (e = readdir(dir)) != NULL;)
		count += e->d_name[0] != '.';
	closedir(dir);
	return count - 1;	/* the directory's own descriptor */
}

static int
append_series(struct buffer *out, const char *name, const char *type, const char *help,
    const char *value)
{
	return buffer_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type,
	    name, value);
}

/* A label value: backslash, quote and newline escaped; other control bytes
 * dropped (the engine string comes from a worker). */
static void
label_value(char *out, size_t cap, const char *text)
{
	size_t n = 0;
	for (; *text && n + 3 < cap; text++) {
		unsigned char c = (unsigned char)*text;
		if (c == '\\' || c == '"') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c >= 0x20 && c != 0x7f) {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

static int
append_build_info(struct buffer *out, const char *engine)
{
	char luajit[160];
	label_value(luajit, sizeof(luajit), engine ? engine : "");
	return buffer_printf(out, "# HELP luapoold_build_info luapoold's version and the "
	    "workers' LuaJIT; always 1.\n# TYPE luapoold_build_info gauge\n"
	    "luapoold_build_info{version=\"%s\",luajit=\"%s\"} 1\n", LUAPOOL_VERSION, luajit);
}

int
metrics_process_render(struct buffer *out, const char *engine)
{
	size_t start = out->len;
	char value[64];
	struct process_stat st;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	long long btime = boot_time();
	long fds = open_fds();
	struct rlimit nofile;

	if (append_build_info(out, engine) == -1)
		goto fail;
	if (ticks > 0 && read_process_stat(&st) == 0) {
		snprintf(value, sizeof(value), "%.2f", (double)(st.utime + st.stime) / (double)ticks);
		if (append_series(out, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.", value) == -1)
			goto fail;
		snprintf(value, sizeof(value), "%lld", st.rss * (page > 0 ? page : 4096));
		if (append_series(out, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.", value) == -1)
			goto fail;
		snprintf(value, sizeof(value), "%llu", st.vsize);
		if (append_series(out, "process_virtual_memory_bytes", "gauge",
		    "Virtual memory size in bytes.", value) == -1)
			goto fail;
		snprintf(value, sizeof(value), "%.2f", (double)btime +
		    (double)st.starttime / (double)ticks);
		if (btime >= 0 && append_series(out, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.", value) == -1)
			goto fail;
	}
	snprintf(value, sizeof(value), "%ld", fds);
	if (fds >= 0 && append_series(out, "process_open_fds", "gauge",
	    "Number of open file descriptors.", value) == -1)
		goto fail;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)nofile.rlim_cur);
		if (append_series(out, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.", value) == -1)
			goto fail;
	}
	return 0;
fail:
	out->len = start;
	return -1;
}
