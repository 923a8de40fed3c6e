/*
 * support.h - helpers shared by the test suites: time, files, processes.
 */
#ifndef SUPPORT_H
#define SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int64_t support_now_ms(void);
/* Reads a whole file (malloc'd, NUL-terminated); NULL if unreadable. */
char *support_read_file(const char *path, size_t *len);
/* Pids of the live children of `parent` named `comm`; returns the count. */
int support_children(pid_t parent, const char *comm, pid_t *out, int max);
/* Value of a "Key:" line of /proc/PID/status, or -1. */
long support_proc_status(pid_t pid, const char *key);
int support_process_alive(pid_t pid);
/* A free TCP port on 127.0.0.1. */
int support_free_port(void);

#endif
