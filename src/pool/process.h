/*
 * process.h - finding and starting the supervisor's child programs,
 * luapool-worker and luapool-front (supervisor side).  Uses posix_spawn
 * (fork+exec without copying the threaded parent), so it is safe to call
 * from any thread of a multi-threaded process.  Children run in a process
 * group of their own, with every signal unblocked and at its default.
 */
#ifndef PROCESS_H
#define PROCESS_H

#include <stddef.h>
#include <sys/types.h>

/* Finds the worker executable: `configured`, else $LUAPOOL_WORKER, else
 * the install path, else luapool-worker next to the running executable.
 * Writes it to out; -1 if none is executable. */
int process_find_worker(const char *configured, char *out, size_t outlen);

/* Finds the front executable: `configured`, else $LUAPOOL_FRONT, else the
 * install path (beside the worker's), else luapool-front next to the
 * running executable, else next to worker_path (the worker found, may be
 * NULL).  Writes it to out; -1 if none is executable. */
int process_find_front(const char *configured, const char *worker_path, char *out,
    size_t outlen);

/* Starts `path` with argv, its socket on FRAME_WORKER_FD and its stderr a
 * pipe.  Returns the pid, our end of the socket in *fd and the read end of
 * the pipe in *log_fd (both non-blocking, close-on-exec; caller closes). */
pid_t process_spawn_worker(const char *path, char *const argv[], int *fd, int *log_fd);

/* Starts a front: `path` with argv, its end of a SOCK_SEQPACKET socketpair
 * on FRONT_CONTROL_FD and its stderr a pipe (common/front_proto.h); every
 * other descriptor of ours is close-on-exec.  Returns the pid, our end of
 * the socketpair in *control_fd and the read end of the pipe in *log_fd
 * (both non-blocking, close-on-exec; caller closes). */
pid_t process_spawn_front(const char *path, char *const argv[], int *control_fd, int *log_fd);

/* Describes a wait status: "exited with status 3", "killed by signal 11 (SIGSEGV)". */
void process_describe_status(int status, char *out, size_t outlen);

#endif
