/*
 * http_fronts_lend.c - front mode: the request bytes the fronts hold, lent
 * out of the server's one max_inflight_bytes (http->inflight_bytes, which
 * this process charges its own requests to as well), so that the budget
 * means what it means without fronts.  A front borrows when what it was
 * lent runs out (BORROW, answered LEND) and gives back what it no longer
 * needs (RETURN); what a front held comes back when it dies.  A front can
 * only give back what it was lent.  The event-loop thread only.
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "common/front_proto.h"
#include "http/http_internal.h"

#define LENDERS_MAX	128	/* fronts with bytes lent at once (64 + a reload's) */

static struct {
	int front;		/* control socket; -1: free */
	size_t lent;
} lent_to[LENDERS_MAX];
static int table_ready;

static size_t *
account_of(int front, int create)
{
	if (!table_ready) {
		for (int i = 0; i < LENDERS_MAX; i++)
			lent_to[i].front = -1;
		table_ready = 1;
	}
	for (int i = 0; i < LENDERS_MAX; i++)
		if (lent_to[i].front == front)
			return &lent_to[i].lent;
	for (int i = 0; create && i < LENDERS_MAX; i++) {
		if (lent_to[i].front == -1) {
			lent_to[i].front = front;
			lent_to[i].lent = 0;
			return &lent_to[i].lent;
		}
	}
	return NULL;
}

/* All of want, else all of need, else nothing. */
static size_t
take_from_budget(struct http *http, const struct front_borrow *b)
{
	size_t max = atomic_load(&http->max_inflight_bytes);
	const uint32_t asks[] = { b->want_kib, b->need_kib };
	for (int i = 0; i < 2; i++) {
		size_t n = (size_t)asks[i] * 1024;
		if (n == 0 || n > max)
			continue;
		if (atomic_fetch_add(&http->inflight_bytes, n) + n <= max)
			return n;
		atomic_fetch_sub(&http->inflight_bytes, n);
	}
	return 0;
}

int
http_fronts_lend(struct http *http, int front, const unsigned char *payload, size_t len)
{
	struct front_borrow b;
	size_t *account = account_of(front, 1);
	if (len != sizeof(b) || account == NULL)
		return -1;
	memcpy(&b, payload, sizeof(b));
	size_t granted = take_from_budget(http, &b);
	struct front_msg m = { .type = FRONT_MSG_LEND, .count = (uint32_t)(granted / 1024) };
	if (send(front, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		/* Never lent: a front that cannot take the answer refuses
		 * the request when its wait ends. */
		atomic_fetch_sub(&http->inflight_bytes, granted);
		return 0;
	}
	*account += granted;
	return 0;
}

int
http_fronts_lend_take_back(struct http *http, int front, uint32_t kib)
{
	size_t *account = account_of(front, 0);
	size_t n = (size_t)kib * 1024;
	if (account == NULL || n > *account)
		return -1;
	*account -= n;
	atomic_fetch_sub(&http->inflight_bytes, n);
	return 0;
}

void
http_fronts_lend_front_gone(struct http *http, int front)
{
	for (int i = 0; table_ready && i < LENDERS_MAX; i++) {
		if (lent_to[i].front == front) {
			atomic_fetch_sub(&http->inflight_bytes, lent_to[i].lent);
			lent_to[i].front = -1;
			lent_to[i].lent = 0;
		}
	}
}
