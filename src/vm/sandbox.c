/*
 * sandbox.c - the process-level sandbox of workers and fronts (see
 * sandbox.h).
 *
 * The seccomp filters are allow-lists written as classic BPF by hand, so
 * neither process needs libseccomp.  A system call outside the list kills
 * the whole process (SIGSYS); the pool or the front supervisor sees a
 * crash and respawns.  File system calls get EPERM instead, so libc code
 * that looks for an optional file (localtime's check of /etc/localtime)
 * fails softly rather than killing a job.  docs/SECURITY.md repeats both
 * lists.
 *
 * A worker's list is what a worker was seen to use under `strace -f` over
 * test_pool and test_exec (jobs, compiles, soft and hard deadlines, heap
 * limits, large results), plus the calls libc may make on paths those did
 * not reach (noted below):
 *
 *   syscall            arguments checked   why
 *   read               fd 3 only           requests from the pool
 *   write, writev      fd 2 or 3 only      replies (fd 3), log lines (fd 2, a pipe to the pool)
 *   mmap, munmap,      -                   the Lua heap (malloc), LuaJIT's machine code
 *   mremap, brk,                           (mprotect flips it between writable and
 *   madvise, mprotect                      executable); madvise: free() of large blocks
 *   timer_settime      -                   arming the job's deadline (worker.c)
 *   rt_sigreturn       -                   returning from the deadline signal handler
 *   clock_gettime,     -                   frame_now_ns, os.clock (CPU time is a real
 *   gettimeofday, time                     system call), os.time; the last two only
 *                                          when the vDSO is not used
 *   getpid             -                   the log line prefix (log.c)
 *   futex              -                   libc's internal locks (stdio, malloc)
 *   exit, exit_group   -                   the end of the process (also the hard stop)
 *   open, openat, stat, fstat, newfstatat, statx, faccessat, readlinkat:
 *                      refused with EPERM (libc probing for optional files)
 *   sigaltstack        -                   AddressSanitizer builds only: ASan
 *                                          reads it on every Lua error (unwinding)
 *   readlink, ioctl:   AddressSanitizer builds only, refused with EPERM: a
 *                      sanitizer report asks for the program's name and
 *                      whether stderr is a terminal; killed there, the
 *                      report would be lost
 *
 * Everything else kills the process: no new files or sockets, no
 * ptrace, no clone/fork/execve, no kill/tgkill (the deadline timer
 * signals the worker itself, through the kernel), no prctl, setrlimit
 * or seccomp changes.
 *
 * A front (src/front/main.c) runs the same VM and also serves HTTP with
 * libmicrohttpd on connections the supervisor deals it over fd 4, and
 * forwards requests over socketpairs; its list is the worker's plus that,
 * as seen under `strace -f` with real load (new and learned chunks,
 * errors, soft and hard stops in the lane, pool jobs, large bodies and
 * results, keep-alive, pipelining, aborted and slow clients, SIGTERM
 * drain, /healthz and /metrics) and read from libmicrohttpd 0.9.75's
 * source for the paths that load did not reach (fcntl F_SETFL/F_SETFD,
 * TCP_CORK):
 *
 *   syscall            arguments checked   why
 *   read, write,       -                   connections to clients and the socketpairs of
 *   writev, close                          forwarded requests (any descriptor: they come
 *                                          and go); log lines on fd 2; the replay memfd
 *   recvfrom, sendto,  -                   libmicrohttpd's recv/send on client connections
 *   sendmsg                                (sendmsg: head and body in one call); the
 *                                          control socket (sendmsg: OPEN, ADOPT, REPLAY
 *                                          with SCM_RIGHTS; sendto: the other messages;
 *                                          recvfrom with MSG_PEEK: the wait for LEND)
 *   recvmsg            fd 4 only           the connections the supervisor deals out
 *                                          (SCM_RIGHTS)
 *   getpeername        -                   the client address of such a connection
 *   fstat              -                   its inode, the supervisor's name for it (the
 *                                          connection table); fstat only: the calls
 *                                          that take a path stay refused
 *   socketpair         AF_UNIX,            one per forwarded request; a datagram pair
 *                      SOCK_STREAM only    could sendto any AF_UNIX address
 *   epoll_wait,        -                   the event loop and libmicrohttpd's own set
 *   epoll_pwait,
 *   epoll_ctl
 *   fcntl              F_GETFD, F_SETFD,   libmicrohttpd checks a new connection is
 *                      F_GETFL, F_SETFL    non-blocking and close-on-exec; other commands
 *                                          get EPERM (F_SETOWN would aim SIGIO at
 *                                          another process)
 *   setsockopt         IPPROTO_TCP with    libmicrohttpd's push of a response; anything
 *                      TCP_NODELAY or      else gets EPERM (no TCP_ULP, no socket filters)
 *                      TCP_CORK
 *   shutdown           -                   closing a client that is too slow
 *                                          (front_limits.c) or the one idle the longest
 *                                          (MAKE_ROOM); libmicrohttpd on close
 *   memfd_create       -                   the hard stop: a request replayed by the
 *                                          supervisor travels in a memfd (front_forward.c)
 *   and the worker's own list: memory, timer_settime, rt_sigreturn (the lane's
 *   deadline and SIGTERM), the clocks, getpid, futex, exit, exit_group, the
 *   file calls refused with EPERM, and the ASan lines.
 *
 * Everything else kills a front too: no socket, connect, bind, listen or
 * accept (the supervisor accepts), no open, no execve/clone/fork, no
 * kill, ptrace, prctl, ioctl (EPERM under ASan).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/front_proto.h"
#include "vm/sandbox.h"

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp filter: unsupported architecture"
#endif

#define ALLOW(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define REFUSE(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp filter: the first argument's low word is read as little-endian"
#endif
/* The low 32 bits of argument n: an int (a descriptor, a command, a level),
 * as the kernel reads it. */
#define ARG(n) offsetof(struct seccomp_data, args[n])
#define FIRST_ARG ARG(0)
/* System call `nr` only on descriptor fd1 or fd2; on any other it kills.
 * Ends with the system call number back in the accumulator. */
#define ALLOW_ON_FDS(nr, fd1, fd2) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 5), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, FIRST_ARG), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (fd1), 2, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (fd2), 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
/* socketpair(AF_UNIX, SOCK_STREAM | flags, ...) only; any other kills. */
#define ALLOW_UNIX_STREAM_PAIRS(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 7), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(0)), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 3), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(1)), \
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_STREAM, 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
/* fcntl with one of the four flag commands; any other gets EPERM. */
#define ALLOW_FLAG_COMMANDS(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 7), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(1)), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_GETFD, 4, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_SETFD, 3, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_GETFL, 2, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_SETFL, 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
/* setsockopt(fd, IPPROTO_TCP, TCP_NODELAY or TCP_CORK, ...); any other
 * option gets EPERM. */
#define ALLOW_TCP_PUSH_OPTIONS(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 7), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(1)), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 3), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(2)), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TCP_NODELAY, 2, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TCP_CORK, 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/* The start of every filter: this architecture's calls only, and the
 * system call number in the accumulator. */
#define CHECK_ARCH_LOAD_NR \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))

#ifdef SYS_time
#define ALLOW_TIME ALLOW(SYS_time),
#else
#define ALLOW_TIME
#endif
#if SANDBOX_UNDER_ASAN && defined(SYS_readlink)
/* sigaltstack: read on every Lua error.  A report (its program name, its
 * terminal check) must not be cut short by a kill: EPERM for those. */
#define ALLOW_ASAN ALLOW(SYS_sigaltstack), REFUSE(SYS_readlink), REFUSE(SYS_ioctl),
#elif SANDBOX_UNDER_ASAN
#define ALLOW_ASAN ALLOW(SYS_sigaltstack), REFUSE(SYS_ioctl),
#else
#define ALLOW_ASAN
#endif
#ifdef SYS_open
#define REFUSE_OLD_FILE_CALLS REFUSE(SYS_open), REFUSE(SYS_stat),
#else
#define REFUSE_OLD_FILE_CALLS
#endif
/* What any process running the VM needs besides its I/O. */
#define ALLOW_VM \
	ALLOW(SYS_mmap), ALLOW(SYS_munmap), ALLOW(SYS_mremap), ALLOW(SYS_mprotect), \
	ALLOW(SYS_brk), ALLOW(SYS_madvise), \
	ALLOW(SYS_rt_sigreturn), ALLOW(SYS_gettimeofday), ALLOW(SYS_getpid), \
	ALLOW(SYS_futex), ALLOW(SYS_exit), ALLOW(SYS_exit_group), \
	ALLOW_ASAN ALLOW_TIME \
	REFUSE_OLD_FILE_CALLS \
	REFUSE(SYS_openat), REFUSE(SYS_newfstatat), REFUSE(SYS_fstat), \
	REFUSE(SYS_statx), REFUSE(SYS_faccessat), REFUSE(SYS_readlinkat)

static int
install(struct sock_filter *filter, size_t len)
{
	struct sock_fprog prog = { .len = (unsigned short)len, .filter = filter };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int
sandbox_tie_to_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		return -1;
	return getppid() == parent ? 0 : -1;
}

void
sandbox_close_other_fds(int keep)
{
	if (syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0) == 0)
		return;
	for (int fd = keep + 1; fd < 1024; fd++)
		close(fd);
}

int
sandbox_drop_privileges(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1)
		return -1;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * the uid switch takes away.  PR_CAPBSET_READ fails past the last
	 * capability this kernel knows. */
	for (unsigned long cap = 0; ; cap++) {
		int present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (present == -1)
			break;
		if (present == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL)
		return -1;
	if (setresuid(uid, uid, uid) == -1)
		return -1;
	/* The uid switch already cleared the permitted and effective sets;
	 * say so explicitly (and the inheritable set too). */
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &header, data) == -1)
		return -1;
	/* Checked, not assumed: there must be no way back. */
	if (setuid(0) != -1 || getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid || prctl(PR_CAPBSET_READ, 0UL, 0, 0, 0) != 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
sandbox_limit_address_space(size_t bytes)
{
	struct rlimit rl = { .rlim_cur = bytes, .rlim_max = bytes };
	return setrlimit(RLIMIT_AS, &rl);
}

int
sandbox_enter(void)
{
	struct sock_filter filter[] = {
		CHECK_ARCH_LOAD_NR,
		/* the most frequent first: each is one comparison further down */
		ALLOW(SYS_clock_gettime),
		ALLOW_ON_FDS(SYS_read, FRAME_WORKER_FD, FRAME_WORKER_FD),
		ALLOW_ON_FDS(SYS_writev, FRAME_WORKER_FD, STDERR_FILENO),
		ALLOW(SYS_timer_settime),
		ALLOW_ON_FDS(SYS_write, FRAME_WORKER_FD, STDERR_FILENO),
		ALLOW_VM,
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	return install(filter, sizeof(filter) / sizeof(filter[0]));
}

int
sandbox_enter_front(void)
{
	struct sock_filter filter[] = {
		CHECK_ARCH_LOAD_NR,
		/* in the order of a busy front's counts */
		ALLOW(SYS_recvfrom), ALLOW(SYS_sendmsg), ALLOW(SYS_timer_settime),
#ifdef SYS_epoll_wait
		ALLOW(SYS_epoll_wait),
#endif
		ALLOW(SYS_epoll_pwait), ALLOW(SYS_epoll_ctl), ALLOW(SYS_read), ALLOW(SYS_close),
		ALLOW(SYS_writev),
		ALLOW_UNIX_STREAM_PAIRS(SYS_socketpair),
		ALLOW_ON_FDS(SYS_recvmsg, FRONT_CONTROL_FD, FRONT_CONTROL_FD),
		ALLOW(SYS_getpeername), ALLOW(SYS_fstat),
		ALLOW(SYS_clock_gettime),
		ALLOW_FLAG_COMMANDS(SYS_fcntl),
		ALLOW_TCP_PUSH_OPTIONS(SYS_setsockopt),
		ALLOW(SYS_sendto), ALLOW(SYS_write), ALLOW(SYS_shutdown), ALLOW(SYS_memfd_create),
		ALLOW_VM,
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	return install(filter, sizeof(filter) / sizeof(filter[0]));
}
