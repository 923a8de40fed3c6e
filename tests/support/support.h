/*
 * support.h - helpers shared by the test suites: time, files, processes.
 * Everything is bounded: waits take a timeout and give up after it.
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
/* The nice value of a process, or -100. */
long support_nice(pid_t pid);
/* A free TCP port on 127.0.0.1. */
int support_free_port(void);

/* Writes (replaces) a file; 0 or -1. */
int support_write_file(const char *path, const void *data, size_t len);
/* Removes the plain files of a directory, then the directory (not
 * recursive: enough for a test's scratch directory). */
void support_remove_dir(const char *dir);
/* Raises this process's soft RLIMIT_NOFILE to `want` (at most the hard
 * limit); returns the soft limit now in force. */
long support_raise_file_limit(long want);
/* Reaps child `pid`, waiting at most timeout_ms; 0 with *status filled,
 * -1 if it is still running (or not our child). */
int support_wait_exit(pid_t pid, int timeout_ms, int *status);
/*
 * Runs argv[0] (a path) with stdin from /dev/null and stdout/stderr
 * captured; kills it if it runs longer than timeout_ms.  Returns 0 with
 * *status (as waitpid gives it) and *out, *err (malloc'd, NUL-terminated,
 * caller frees) filled, or -1 if it could not be run or timed out.
 */
int support_run(char *const argv[], int timeout_ms, int *status, char **out, char **err);

#endif
