/*
 * front_crash.c - a crash (a fault, or the signal sent as one) costs a
 * front, not the requests on its other connections: the same last words as
 * a hard stop, from an alternate stack (the fault may be a stack
 * overflow).  The request that crashed it is replayed too, and crashes a
 * pool worker in turn, whose death the pool answers as worker_crashed.
 */
#include <signal.h>
#include <stddef.h>
#include <unistd.h>

#include "http/front_internal.h"

static void (*crash_last_words)(void);

static void
on_crash(int sig)
{
	static const char line[] = "luapool-front: crashed: its connections were handed over\n";
	crash_last_words();
	ssize_t unused = write(STDERR_FILENO, line, sizeof(line) - 1);
	(void)unused;
	_exit(128 + sig);
}

int
front_crash_catch(void (*last_words)(void))
{
	static char alt_stack[64 * 1024];
	stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof(alt_stack) };
	crash_last_words = last_words;
	if (sigaltstack(&ss, NULL) == -1)
		return -1;
	struct sigaction sa = { .sa_handler = on_crash, .sa_flags = SA_ONSTACK | SA_RESETHAND };
	sigfillset(&sa.sa_mask);
	const int faults[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		if (sigaction(faults[i], &sa, NULL) == -1)
			return -1;
	return 0;
}
