/*
 * main.c - luapool-front: a worker that serves HTTP itself.  Started by
 * the supervisor (src/pool/fronts.c) with its control socket on fd 4, on
 * which the supervisor deals it connections (common/front_proto.h), and a
 * worker's command line plus the front's own options.  Builds the VM, reads the
 * auth token, starts its HTTP server, locks itself into the sandbox, then
 * serves.  Not meant to be run by hand.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/front_proto.h"
#include "common/log.h"
#include "http/front.h"
#include "vm/lane.h"
#include "vm/sandbox.h"
#include "vm/worker_args.h"

/* What a front serves besides a worker's options: connection buffers
 * (counted at 64 KiB each, four times libmicrohttpd's 16 KiB pool, for
 * what a connection holds beside it), a request body and its copy on the
 * way to the supervisor, and an answer coming back. */
#define FRONT_CONNECTION_BYTES ((size_t)64u << 10)

struct front_args {
	struct front_options front;
	struct lane_options lane;
};

static int
front_option(void *arg, const char *key, unsigned long v)
{
	struct front_args *a = arg;
	if (strcmp(key, "--fast-lane-ms") == 0)
		a->front.fast_lane_ms = (unsigned)v;
	else if (strcmp(key, "--max-body-bytes") == 0)
		a->front.max_body_bytes = v;
	else if (strcmp(key, "--max-connections") == 0)
		a->front.max_connections = (unsigned)v;
	else if (strcmp(key, "--request-read-timeout-s") == 0)
		a->front.request_read_timeout_s = (unsigned)v;
	else if (strcmp(key, "--max-inflight-bytes") == 0)
		a->front.max_inflight_bytes = v;
	else if (strcmp(key, "--bytecode-mode") == 0)
		a->front.bytecode_mode = (int)v;
	else if (strcmp(key, "--access-log") == 0)
		a->front.access_log = v != 0;
	else
		return -1;
	return 0;
}

/* FRONT_MSG_CONFIG, the first thing the supervisor says. */
static char *
read_token(void)
{
	char packet[FRONT_PACKET_MAX];
	ssize_t n;
	do
		n = recv(FRONT_CONTROL_FD, packet, sizeof(packet), 0);
	while (n == -1 && errno == EINTR);
	struct front_msg m;
	if (n < (ssize_t)sizeof(m))
		fatal("no configuration from the supervisor");
	memcpy(&m, packet, sizeof(m));
	if (m.type != FRONT_MSG_CONFIG)
		fatal("unexpected first message %u", m.type);
	size_t len = (size_t)n - sizeof(m);
	if (len == 0)
		return NULL;
	char *token = malloc(len + 1);
	if (token == NULL)
		fatal("out of memory");
	memcpy(token, packet + sizeof(m), len);
	token[len] = '\0';
	return token;
}

#if !SANDBOX_UNDER_ASAN
static size_t
address_space(const struct worker_options *w, const struct front_options *f)
{
	return worker_args_address_space(w) + 4 * f->max_body_bytes +
	    4 * f->max_answer_bytes + (size_t)f->max_connections * FRONT_CONNECTION_BYTES;
}
#endif

/* front_serve's lock_down: its server and epoll set exist, no request
 * has been read yet. */
static void
enter_sandbox(void)
{
	unsigned uid = (unsigned)getuid();	/* getuid is not allowed past this point */
	if (sandbox_enter_front() == -1)
		fatal("seccomp: %s", strerror(errno));
	log_debug("sandboxed as uid %u", uid);
}

int
main(int argc, char **argv)
{
	struct worker_options w;
	struct worker_identity id;
	struct front_args a = {
		.front = {
			.fast_lane_ms = 10, .max_body_bytes = 1u << 20, .max_connections = 1024,
			.request_read_timeout_s = 10,
			.max_inflight_bytes = (size_t)256u << 20,
		},
	};
	pid_t parent;
	char err[256] = "";

	log_set_name("luapool-front");
	log_set_raw(1);
	worker_args_parse(argc, argv, &w, &parent, &id, front_option, &a);
	a.front.max_result_bytes = w.vm.max_result_bytes;
	/* What the supervisor may answer: a result or a stored chunk, with
	 * logs, a traceback, usage, and their JSON escapes. */
	a.front.max_answer_bytes = 2 * a.front.max_body_bytes + 2 * w.vm.max_result_bytes +
	    2 * w.vm.max_log_bytes + ((size_t)1 << 20);
	if (id.switch_user && sandbox_drop_privileges(id.uid, id.gid) == -1)
		fatal("cannot switch to uid %u gid %u: %s", (unsigned)id.uid,
		    (unsigned)id.gid, strerror(errno));
	if (parent && sandbox_tie_to_parent(parent) == -1)
		return 1;
	sandbox_close_other_fds(FRONT_CONTROL_FD);
	close(3);	/* nothing of ours: a descriptor leaked to our parent */
	worker_args_quiet_stdio();
#if !SANDBOX_UNDER_ASAN
	if (sandbox_limit_address_space(address_space(&w, &a.front)) == -1)
		fatal("RLIMIT_AS: %s", strerror(errno));
#endif
	tzset();
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);

	a.front.auth_token = read_token();
	a.lane = (struct lane_options){
		.fast_lane_ms = a.front.fast_lane_ms, .grace_ms = w.grace_ms,
		.default_timeout_ms = w.default_timeout_ms, .max_timeout_ms = w.max_timeout_ms,
		.allow_bytecode = w.allow_bytecode,
	};
	struct vm *vm = vm_new(&w.vm, err, sizeof(err));
	if (vm == NULL)
		fatal("cannot build the VM: %s", err);
	if (lane_prepare(vm, &a.lane, front_last_words) == -1)
		fatal("deadline timer: %s", strerror(errno));
	int status = front_serve(vm, &a.front, enter_sandbox);
#if SANDBOX_UNDER_ASAN
	/* LeakSanitizer needs system calls the sandbox forbids. */
	_exit(status);
#else
	return status;
#endif
}
