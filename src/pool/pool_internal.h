/*
 * pool_internal.h - the pool's shared state, between pool.c (the public
 * API), queue.c and the dispatcher thread (dispatcher.c, channel.c,
 * supervise.c, poller.c) that owns the worker processes.  Everything
 * under `lock` unless said otherwise.
 */
#ifndef POOL_INTERNAL_H
#define POOL_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buffer.h"
#include "common/frame.h"
#include "luapool.h"
#include "pool/worker_log.h"

struct job {
	struct job *next;
	uint64_t id;
	uint32_t frame_type;	/* FRAME_EXEC or FRAME_COMPILE */
	uint32_t chunk_len;
	uint32_t flags;
	unsigned timeout_ms;	/* 0: the request's own (unknown here) */
	int64_t enqueued_ns;
	char *payload;		/* chunk then request JSON */
	size_t payload_len;
	luapool_callback *done;
	void *arg;
};

enum worker_state {
	WORKER_DOWN,		/* no process; respawn at respawn_at_ns */
	WORKER_STARTING,	/* spawned, waiting for FRAME_READY */
	WORKER_IDLE,
	WORKER_BUSY,
	WORKER_EXITING		/* told to stop or lost; waiting to reap */
};

/* Owned by the dispatcher thread only. */
struct worker {
	unsigned index;
	enum worker_state state;
	pid_t pid;
	int fd, pidfd;
	int log_fd;			/* read end of its stderr; -1: closed */
	struct worker_log log;
	struct job *job;
	struct frame_header out;	/* header of the frame being sent: the job or
					 * a FRAME_MODULE_REPLY */
	const char *out_payload;	/* its payload: the job's, or module_chunk */
	size_t out_len;
	size_t sent;			/* bytes of header+payload written */
	char *module_chunk;		/* the module being sent (malloc'd by the
					 * lookup); freed when written or the job ends */
	unsigned modules_asked;		/* FRAME_MODULE requests during this job */
	int watching_writes;		/* EPOLLOUT armed: only while a job is being sent */
	struct buffer in;
	int64_t backstop_ns;		/* kill if still running then; 0: none */
	int killed_for_deadline;
	int64_t demote_at_ns;		/* a job still running then loses priority */
	int demoted;
	int ready;			/* sent FRAME_READY: counted in `live` */
	int expected_exit;		/* we stopped it, or it announced its exit */
	unsigned jobs_run;
	unsigned quick_failures;
	int64_t respawn_at_ns;
	int64_t spawned_ns;
	int64_t died_ns;		/* unexpected death, until the successor is ready */
};

struct luapool {
	struct luapool_options opts;
	char worker_path[PATH_MAX];
	char *worker_argv[32];
	char argv_text[16][32];
	unsigned log_level_slot;	/* argv_text entry of --log-level, set at each spawn */
	int switch_user;		/* started as root: workers become worker_uid/gid */
	uid_t worker_uid;
	gid_t worker_gid;

	pthread_mutex_t lock;
	struct job *head, *tail;
	unsigned queued;
	unsigned outstanding;		/* accepted, not yet answered */
	int accepting;
	atomic_int stopping;		/* dispatcher exits once idle */
	int64_t next_sweep_ns;		/* dispatcher: next look for expired queued jobs */
	int shut_down;			/* everything released but this struct */
	uint64_t next_id;
	struct luapool_stats stats;	/* counters; gauges are filled on read */

	atomic_uint live, busy;
	atomic_int dispatcher_sleeping;

	pthread_t thread;
	pthread_t owner;		/* external_dispatch: the thread that dispatches */
	int epfd, wakefd;
	struct worker *workers;
	unsigned nworkers;
	char engine_version[64];	/* from the first FRAME_READY */
	int startup_failed;		/* set when no worker could start */
	int kill_needed;		/* shutdown had to SIGKILL a worker */
};

#define POOL_MS		1000000LL

#endif
