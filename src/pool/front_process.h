/*
 * front_process.h - one front process (luapool-front) as fronts.c's
 * thread sees it, from its start to its reaping: its command line (the
 * pool's worker arguments, then the front's own), started with its
 * FRONT_MSG_CONFIG packet already sent, its stderr read as log lines
 * (worker_log.c: escaped, cut, rate-limited), reaped by its own pid only.
 * The caller watches pidfd and log_fd in an epoll set of its own; these
 * functions take them out of it when they close them.
 */
#ifndef POOL_FRONT_PROCESS_H
#define POOL_FRONT_PROCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/front_proto.h"
#include "pool/worker_log.h"

struct luapool;

/* What a front is started with; every string is the command's own. */
struct front_command {
	char *token;			/* "" when none */
	char **argv;			/* path, the worker's arguments, the front's, NULL */
	unsigned argc;
	unsigned nbase;			/* path and the worker's arguments */
	unsigned level_index;		/* argv entry of --log-level's value;
					 * UINT_MAX: none */
	char level_text[16];		/* that value, written at each start */
};

struct front_process {
	pid_t pid;
	int pidfd;
	int log_fd;			/* read end of its stderr; -1: closed */
	struct worker_log log;
	int64_t spawned_ns;
};

/* The longest token the CONFIG packet carries. */
#define FRONT_PROCESS_TOKEN_MAX	(FRONT_PACKET_MAX - sizeof(struct front_msg))

/*
 * The command of a front at `path`: the pool's worker arguments, then
 * extra_args (NULL-terminated, may be NULL), and token (NULL: none; at
 * most FRONT_PROCESS_TOKEN_MAX bytes), all copied.  NULL if out of memory.
 * The caller frees it with front_command_free.
 */
struct front_command *front_command_new(const struct luapool *pool, const char *path,
    const char *token, const char *const *extra_args);
/* The program and worker arguments of `from` with another token and
 * extra_args; `from` stays as it is. */
struct front_command *front_command_renew(const struct front_command *from, const char *token,
    const char *const *extra_args);
void front_command_free(struct front_command *c);

/*
 * Starts c (the --log-level it carries is the current level; see
 * process_spawn_front) and sends the FRONT_MSG_CONFIG packet with c's
 * token.  0 with p filled and the control socket in *control_fd
 * (the caller's to close or hand on); -1 with nothing left running.
 */
int front_process_start(struct front_process *p, struct front_command *c, int *control_fd);

/* log_fd is readable: logs its complete lines; closes it at its end. */
void front_process_read_log(struct front_process *p, int epfd);

/*
 * pidfd fired: waits for that pid (WNOHANG).  0: not yet.  1: reaped, the
 * rest of its stderr logged, pidfd and log_fd closed; `how` describes the
 * exit and *clean says whether it was a plain one (status 0 or SIGTERM).
 */
int front_process_reap(struct front_process *p, int epfd, char *how, size_t howlen,
    int *clean);

/* SIGKILL, wait, close: for a start that has to be undone at once. */
void front_process_abandon(struct front_process *p);

#endif
