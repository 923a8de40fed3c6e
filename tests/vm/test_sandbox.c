/*
 * test_sandbox.c - the seccomp filters of src/vm/sandbox.c, each entered in
 * a child process of its own that then makes one kind of call: what a
 * front may still do (the calls of its connections, a socketpair, the
 * memfd of a hard stop), what gets EPERM (files, fcntl commands other than
 * the flag ones, socket options other than TCP's push), and what kills it
 * (new sockets, connect, bind, listen, accept, a datagram or non-Unix
 * socketpair, recvmsg beside its control socket, execve, fork, kill,
 * ptrace, prctl, and ioctl but under ASan); and that a worker's filter is
 * the narrower one.  A child reports the first step that went otherwise as
 * its exit status.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/front_proto.h"
#include "vm/sandbox.h"

#define ENTER_FAILED 100
#define CONTROL_FD FRONT_CONTROL_FD

/* Descriptors a child opens before the filter, as a front holds its
 * connections: a TCP socket, and a Unix stream pair whose second end is on
 * the control socket's number. */
static int tcp_fd = -1, pair[2] = { -1, -1 };

static int
moved_up(int fd)
{
	int high = fcntl(fd, F_DUPFD, 10);
	close(fd);
	return high;
}

static void
open_descriptors(void)
{
	tcp_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (tcp_fd == -1 || socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == -1)
		_exit(ENTER_FAILED + 1);
	tcp_fd = moved_up(tcp_fd);
	pair[0] = moved_up(pair[0]);
	pair[1] = moved_up(pair[1]);
	if (tcp_fd == -1 || pair[0] == -1 || dup2(pair[1], CONTROL_FD) == -1)
		_exit(ENTER_FAILED + 2);
	close(pair[1]);
	pair[1] = CONTROL_FD;
}

/* Runs probe in a child after open_descriptors and enter; the wait status. */
static int
status_of(int (*enter)(void), int (*probe)(void))
{
	pid_t pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		open_descriptors();
		if (enter() == -1)
			_exit(ENTER_FAILED);
		_exit(probe());
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* Probes that must come back (0: every step as expected) ------------------ */

static int
serve_as_a_front_does(void)
{
	int sv[2], fds[1];
	char byte = 'x', buf[8];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		return 1;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	if (writev(sv[0], &iov, 1) != 1 || recv(sv[1], buf, sizeof(buf), 0) != 1 ||
	    write(sv[1], "y", 1) != 1 || read(sv[0], buf, sizeof(buf)) != 1)
		return 2;
	if (send(sv[0], "z", 1, MSG_NOSIGNAL) != 1)
		return 3;
	int memfd = memfd_create("luapoold-replay", MFD_CLOEXEC);
	if (memfd == -1 || write(memfd, "GET / HTTP/1.1\r\n\r\n", 18) != 18)
		return 4;
	/* A hard stop's message: descriptors beside one byte. */
	fds[0] = memfd;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), fds, sizeof(int));
	if (sendmsg(pair[0], &msg, MSG_NOSIGNAL) != 1)
		return 5;
	int flags = fcntl(sv[0], F_GETFL);
	if (flags == -1 || fcntl(sv[0], F_SETFL, flags | O_NONBLOCK) == -1 ||
	    fcntl(sv[0], F_GETFD) == -1 || fcntl(sv[0], F_SETFD, FD_CLOEXEC) == -1)
		return 6;
	int on = 1;
	if (setsockopt(tcp_fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1 ||
	    setsockopt(tcp_fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == -1)
		return 7;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(sv[0], (struct sockaddr *)&ss, &sl) == -1)
		return 8;
	/* Its inode, the supervisor's name for it (fstat itself: libc's
	 * fstat is newfstatat, which takes a path and stays refused). */
	struct stat st;
	if (syscall(SYS_fstat, sv[0], &st) == -1)
		return 11;
	if (shutdown(sv[0], SHUT_WR) == -1 || close(sv[0]) == -1 || close(memfd) == -1)
		return 9;
	/* What the supervisor deals a front: a descriptor on the control socket. */
	memset(&u, 0, sizeof(u));
	msg.msg_controllen = sizeof(u.buf);
	if (recvmsg(CONTROL_FD, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1 ||
	    CMSG_FIRSTHDR(&msg) == NULL || CMSG_FIRSTHDR(&msg)->cmsg_type != SCM_RIGHTS)
		return 10;
	return 0;
}

static int
be_refused_files_and_other_options(void)
{
	struct stat st;
	if (open("/etc/hostname", O_RDONLY) != -1 || errno != EPERM)
		return 1;
	if (stat("/etc/hostname", &st) != -1 || errno != EPERM)
		return 2;
	/* F_SETOWN would aim SIGIO at another process. */
	if (fcntl(pair[0], F_SETOWN, 1) != -1 || errno != EPERM)
		return 3;
	if (fcntl(pair[0], F_DUPFD, 10) != -1 || errno != EPERM)
		return 4;
	int size = 4096;
	if (setsockopt(tcp_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != -1 ||
	    errno != EPERM)
		return 5;
	if (setsockopt(tcp_fd, IPPROTO_TCP, TCP_ULP, "tls", 4) != -1 || errno != EPERM)
		return 6;
#if SANDBOX_UNDER_ASAN
	/* A sanitizer report's terminal check: refused, not killed. */
	int n;
	if (ioctl(pair[0], FIONREAD, &n) != -1 || errno != EPERM)
		return 7;
#endif
	return 0;
}

/* Probes that must kill (if one comes back, its status says which) -------- */

static int
make_a_socket(void)
{
	return socket(AF_INET, SOCK_STREAM, 0) == -1 ? 1 : 2;
}

static int
make_a_datagram_pair(void)
{
	int sv[2];
	return socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == -1 ? 1 : 2;
}

static int
make_an_inet_pair(void)
{
	int sv[2];
	return socketpair(AF_INET, SOCK_STREAM, 0, sv) == -1 ? 1 : 2;
}

static int
connect_a_socket(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(1),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return connect(tcp_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ? 1 : 2;
}

static int
bind_a_socket(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return bind(tcp_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ? 1 : 2;
}

static int
listen_on_a_socket(void)
{
	return listen(tcp_fd, 1) == -1 ? 1 : 2;
}

static int
accept_on_a_socket(void)
{
	return accept4(tcp_fd, NULL, NULL, SOCK_NONBLOCK) == -1 ? 1 : 2;
}

static int
receive_descriptors_beside_the_control_socket(void)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	return recvmsg(pair[0], &msg, MSG_DONTWAIT) == -1 ? 1 : 2;
}

static int
run_a_program(void)
{
	char *const argv[] = { (char *)(uintptr_t)"/bin/true", NULL };
	execve("/bin/true", argv, NULL);
	return 1;
}

static int
start_a_process(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	return pid == -1 ? 1 : 2;
}

static int
signal_a_process(void)
{
	return kill(getppid(), 0) == -1 ? 1 : 2;
}

static int
trace_itself(void)
{
	return ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1 ? 1 : 2;
}

static int
change_its_process_settings(void)
{
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == -1 ? 1 : 2;
}

#if !SANDBOX_UNDER_ASAN
static int
control_a_device(void)
{
	int n;
	return ioctl(pair[0], FIONREAD, &n) == -1 ? 1 : 2;
}
#endif

static const struct {
	const char *name;
	int (*probe)(void);
} killing_calls[] = {
	{ "socket", make_a_socket },
	{ "socketpair(AF_UNIX, SOCK_DGRAM)", make_a_datagram_pair },
	{ "socketpair(AF_INET)", make_an_inet_pair },
	{ "connect", connect_a_socket },
	{ "bind", bind_a_socket },
	{ "listen", listen_on_a_socket },
	{ "accept4", accept_on_a_socket },
	{ "recvmsg beside the control socket", receive_descriptors_beside_the_control_socket },
	{ "execve", run_a_program },
	{ "fork", start_a_process },
	{ "kill", signal_a_process },
	{ "ptrace", trace_itself },
	{ "prctl", change_its_process_settings },
#if !SANDBOX_UNDER_ASAN
	{ "ioctl", control_a_device },	/* EPERM under ASan */
#endif
};

/* Tests --------------------------------------------------------------------- */

START_TEST(a_front_should_keep_the_calls_it_serves_with)
{
	int status = status_of(sandbox_enter_front, serve_as_a_front_does);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "status %#x (exit %d: the step that failed)", status, WEXITSTATUS(status));
}
END_TEST

START_TEST(a_front_should_get_eperm_for_files_and_other_fcntl_and_socket_options)
{
	int status = status_of(sandbox_enter_front, be_refused_files_and_other_options);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "status %#x (exit %d: the step that failed)", status, WEXITSTATUS(status));
}
END_TEST

START_TEST(every_call_outside_a_fronts_list_should_kill_it)
{
	for (size_t i = 0; i < sizeof(killing_calls) / sizeof(killing_calls[0]); i++) {
		int status = status_of(sandbox_enter_front, killing_calls[i].probe);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
		    "%s: status %#x, not killed by SIGSYS", killing_calls[i].name, status);
	}
}
END_TEST

START_TEST(a_worker_should_be_killed_for_what_only_a_front_may_do)
{
	int status = status_of(sandbox_enter, serve_as_a_front_does);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS, "status %#x", status);
}
END_TEST

static Suite *
sandbox_suite(void)
{
	Suite *s = suite_create("sandbox");
	TCase *t = tcase_create("seccomp");
	tcase_add_test(t, a_front_should_keep_the_calls_it_serves_with);
	tcase_add_test(t, a_front_should_get_eperm_for_files_and_other_fcntl_and_socket_options);
	tcase_add_test(t, every_call_outside_a_fronts_list_should_kill_it);
	tcase_add_test(t, a_worker_should_be_killed_for_what_only_a_front_may_do);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(sandbox_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
