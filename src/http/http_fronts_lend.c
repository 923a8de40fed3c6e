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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/front_proto.h"
#include "http/http_internal.h"

#define LENDERS_MAX	(2 * FRONT_SET_MAX)	/* a set, and the one a reload retires */
#define SPARE_KIB_MAX	1024	/* front_limits.c keeps at most 1 MiB spare */

struct http_fronts_lend {
	struct {
		int front;	/* control socket; -1: free */
		size_t lent;
	} to[LENDERS_MAX];
};

int
http_fronts_lend_init(struct http *http)
{
	struct http_fronts_lend *l = malloc(sizeof(*l));
	if (l == NULL)
		return -1;
	for (unsigned i = 0; i < LENDERS_MAX; i++)
		l->to[i].front = -1;
	http->fronts_lend = l;
	return 0;
}

void
http_fronts_lend_free(struct http *http)
{
	free(http->fronts_lend);
	http->fronts_lend = NULL;
}

static size_t *
account_of(struct http_fronts_lend *l, int front, int create)
{
	for (unsigned i = 0; i < LENDERS_MAX; i++)
		if (l->to[i].front == front)
			return &l->to[i].lent;
	for (unsigned i = 0; create && i < LENDERS_MAX; i++) {
		if (l->to[i].front == -1) {
			l->to[i].front = front;
			l->to[i].lent = 0;
			return &l->to[i].lent;
		}
	}
	return NULL;
}

/* All of want, else all of need, else nothing.  A front needs at most one
 * body's room at a time and keeps a spare of at most SPARE_KIB_MAX: more
 * is not lent, whatever it asks. */
static size_t
take_from_budget(struct http *http, const struct front_borrow *b)
{
	size_t max = atomic_load(&http->max_inflight_bytes);
	size_t body_kib = atomic_load(&http->max_body_bytes) / 1024 + 2;
	if (b->need_kib > body_kib)
		return 0;
	const uint32_t asks[] = {
		b->want_kib > b->need_kib + SPARE_KIB_MAX ? b->need_kib + SPARE_KIB_MAX : b->want_kib,
		b->need_kib };
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
	if (len != sizeof(b))
		return -1;
	size_t *account = account_of(http->fronts_lend, front, 1);
	if (account == NULL)
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
	atomic_fetch_add(&http->lent_bytes, granted);
	return 0;
}

int
http_fronts_lend_take_back(struct http *http, int front, uint32_t kib)
{
	size_t *account = account_of(http->fronts_lend, front, 0);
	size_t n = (size_t)kib * 1024;
	if (account == NULL || n > *account)
		return -1;
	*account -= n;
	atomic_fetch_sub(&http->inflight_bytes, n);
	atomic_fetch_sub(&http->lent_bytes, n);
	return 0;
}

void
http_fronts_lend_front_gone(struct http *http, int front)
{
	struct http_fronts_lend *l = http->fronts_lend;
	for (unsigned i = 0; i < LENDERS_MAX; i++) {
		if (l->to[i].front == front) {
			atomic_fetch_sub(&http->inflight_bytes, l->to[i].lent);
			atomic_fetch_sub(&http->lent_bytes, l->to[i].lent);
			l->to[i].front = -1;	/* its socket's number may be reused */
			l->to[i].lent = 0;
		}
	}
}
