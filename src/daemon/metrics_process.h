/*
 * metrics_process.h - the /metrics series about the luapoold process
 * itself rather than its requests: build information and the standard
 * process_* series every Prometheus client library exports.
 */
#ifndef METRICS_PROCESS_H
#define METRICS_PROCESS_H

#include "common/buffer.h"

/* Appends luapoold_build_info{version,luajit} 1 and process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds and process_start_time_seconds of the
 * calling process, read from /proc; a series that cannot be read is left
 * out.  engine: the workers' LuaJIT version ("" until one started).
 * 0, or -1 (buffer full) with out as it was. */
int metrics_process_render(struct buffer *out, const char *engine);

#endif
