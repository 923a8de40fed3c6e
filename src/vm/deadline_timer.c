/*
 * deadline_timer.c - see deadline_timer.h.
 */
#include <signal.h>
#include <string.h>

#include "vm/deadline_timer.h"

int
deadline_timer_create(void (*handler)(int), timer_t *timer)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGALRM, &sa, NULL) == -1)
		return -1;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGALRM;
	return timer_create(CLOCK_MONOTONIC, &sev, timer);
}

void
deadline_timer_arm(timer_t timer, int64_t when_ns)
{
	struct itimerspec its = { 0 };
	if (when_ns > 0) {
		its.it_value.tv_sec = when_ns / 1000000000;
		its.it_value.tv_nsec = when_ns % 1000000000;
	}
	timer_settime(timer, TIMER_ABSTIME, &its, NULL);
}
