/*
 * http_fronts_conns.c - front mode: every client connection of the server,
 * wherever it is served, so that max_connections, max_connections_per_ip
 * and the connections gauge mean what they mean without fronts.  The
 * supervisor accepts every connection, so it counts them there; a front
 * reports those it closed (FRONT_MSG_CLOSED) and hands some back (ADOPT,
 * REPLAY), which this process then serves and counts itself.
 *
 * A connection is known by its socket's inode number, which every process
 * holding the socket sees alike.  An entry is held by at most one front
 * (the one it was dealt to; only that front's reports release it) and by
 * the copies this process's libmicrohttpd serves; it goes when nobody
 * holds it.  A replayed request's connection is not counted once handed
 * over (at most 64 at once, each closed after its answer).  A front that lies can only keep its own entries
 * (their slots stay taken until it dies) or release them early (it then
 * holds more than counted, up to its descriptor limit).  Internal
 * connections (a front's socketpairs) are never counted.
 *
 * The event-loop thread only (front mode needs http_threads = 0): the
 * accepts, the fronts' messages, libmicrohttpd's notifications, /metrics.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/text.h"
#include "http/http_internal.h"

struct entry {
	uint64_t ino;		/* 0: free */
	int front;		/* the control socket of the front holding it, or -1 */
	unsigned here;		/* copies served by this process */
	unsigned char addr[17];	/* family, then the address */
};

struct per_address {
	unsigned char addr[17];
	unsigned count;		/* 0: free */
};

struct http_fronts_conns {
	struct entry *entries;
	struct per_address *addrs;
	size_t mask;		/* both tables: capacity - 1, a power of two */
	unsigned count;
};

/* Keys ----------------------------------------------------------------------- */

static size_t
mix(uint64_t x)
{
	return (size_t)text_mix64(x);
}

static size_t
address_hash(const unsigned char *addr)
{
	uint64_t h = 1469598103934665603ULL;
	for (int i = 0; i < 17; i++)
		h = (h ^ addr[i]) * 1099511628211ULL;
	return mix(h);
}

/* The address libmicrohttpd's per-IP limit would compare: the IP alone. */
static void
address_key(const struct sockaddr_storage *ss, unsigned char *key)
{
	memset(key, 0, 17);
	key[0] = (unsigned char)ss->ss_family;
	if (ss->ss_family == AF_INET)
		memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6)
		memcpy(key + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

static uint64_t
inode_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_ino != 0 ? (uint64_t)st.st_ino : 0;
}

/* The tables (linear probing, deletion by moving entries back) -------- */

static struct entry *
find_entry(struct http_fronts_conns *t, uint64_t ino)
{
	for (size_t i = mix(ino) & t->mask;; i = (i + 1) & t->mask) {
		if (t->entries[i].ino == ino)
			return &t->entries[i];
		if (t->entries[i].ino == 0)
			return NULL;
	}
}

static struct per_address *
find_address(struct http_fronts_conns *t, const unsigned char *addr, int create)
{
	for (size_t i = address_hash(addr) & t->mask;; i = (i + 1) & t->mask) {
		struct per_address *a = &t->addrs[i];
		if (a->count && memcmp(a->addr, addr, 17) == 0)
			return a;
		if (a->count == 0) {
			if (!create)
				return NULL;
			memcpy(a->addr, addr, 17);
			return a;
		}
	}
}

static void
remove_address(struct http_fronts_conns *t, const unsigned char *addr)
{
	struct per_address *a = find_address(t, addr, 0);
	if (a == NULL || --a->count > 0)
		return;
	size_t hole = (size_t)(a - t->addrs);
	for (size_t i = (hole + 1) & t->mask; t->addrs[i].count; i = (i + 1) & t->mask) {
		size_t home = address_hash(t->addrs[i].addr) & t->mask;
		/* Moves back unless its home lies in (hole, i]. */
		if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
			t->addrs[hole] = t->addrs[i];
			t->addrs[i].count = 0;
			hole = i;
		}
	}
}

static void
remove_entry(struct http_fronts_conns *t, struct entry *e)
{
	remove_address(t, e->addr);
	t->count--;
	size_t hole = (size_t)(e - t->entries);
	t->entries[hole].ino = 0;
	for (size_t i = (hole + 1) & t->mask; t->entries[i].ino; i = (i + 1) & t->mask) {
		size_t home = mix(t->entries[i].ino) & t->mask;
		if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
			t->entries[hole] = t->entries[i];
			t->entries[i].ino = 0;
			hole = i;
		}
	}
}

/* Room for max_connections counted, twice over (copies a lying front
 * adopts are counted too, up to libmicrohttpd's own limit). */
static struct entry *
add_entry(struct http_fronts_conns *t, uint64_t ino, const unsigned char *addr)
{
	if ((size_t)t->count * 2 >= t->mask)
		return NULL;
	size_t i = mix(ino) & t->mask;
	while (t->entries[i].ino != 0)
		i = (i + 1) & t->mask;
	struct entry *e = &t->entries[i];
	*e = (struct entry){ .ino = ino, .front = -1 };
	memcpy(e->addr, addr, 17);
	find_address(t, addr, 1)->count++;
	t->count++;
	return e;
}

static void
release_if_unheld(struct http_fronts_conns *t, struct entry *e)
{
	if (e->front == -1 && e->here == 0)
		remove_entry(t, e);
}

/* The interface -------------------------------------------------------------- */

int
http_fronts_conns_init(struct http *http)
{
	struct http_fronts_conns *t = calloc(1, sizeof(*t));
	size_t cap = 64;
	while (cap < 4 * ((size_t)http->opts.max_connections + 64))
		cap *= 2;
	if (t == NULL)
		return -1;
	t->entries = calloc(cap, sizeof(*t->entries));
	t->addrs = calloc(cap, sizeof(*t->addrs));
	t->mask = cap - 1;
	http->fronts_conns = t;
	if (t->entries == NULL || t->addrs == NULL) {
		http_fronts_conns_free(http);
		return -1;
	}
	return 0;
}

void
http_fronts_conns_free(struct http *http)
{
	struct http_fronts_conns *t = http->fronts_conns;
	if (t == NULL)
		return;
	free(t->entries);
	free(t->addrs);
	free(t);
	http->fronts_conns = NULL;
}

enum http_admission
http_fronts_conns_admit(struct http *http, int fd, const struct sockaddr_storage *ss,
    uint64_t *ino)
{
	struct http_fronts_conns *t = http->fronts_conns;
	unsigned char addr[17];
	address_key(ss, addr);
	*ino = inode_of(fd);
	enum http_admission verdict = HTTP_ADMITTED;
	unsigned per_ip = http->opts.max_connections_per_ip;
	struct per_address *a = find_address(t, addr, 0);
	if (t->count >= http->opts.max_connections)
		verdict = HTTP_TABLE_FULL;
	else if (per_ip && a && a->count >= per_ip)
		verdict = HTTP_PER_IP_LIMIT;
	else if (*ino == 0)
		verdict = HTTP_TABLE_FULL;	/* cannot be told apart: never let it in */
	if (verdict == HTTP_ADMITTED) {
		/* Left by a front that never said it closed it: the inode is new. */
		struct entry *stale = find_entry(t, *ino);
		if (stale != NULL)
			remove_entry(t, stale);
		if (add_entry(t, *ino, addr) == NULL)
			verdict = HTTP_TABLE_FULL;
	}
	return verdict;
}

void
http_fronts_conns_dealt(struct http *http, uint64_t ino, int front)
{
	struct http_fronts_conns *t = http->fronts_conns;
	struct entry *e = find_entry(t, ino);
	if (e != NULL) {
		e->front = front;
		release_if_unheld(t, e);
	}
}

/* The entry of the connection on fd, or NULL. */
static struct entry *
entry_of(struct http_fronts_conns *t, int fd, uint64_t *ino)
{
	*ino = inode_of(fd);
	return t != NULL && *ino != 0 ? find_entry(t, *ino) : NULL;
}

/* A connection handed back by its front is no longer that front's. */
void
http_fronts_conns_serve_here(struct http *http, int fd)
{
	struct http_fronts_conns *t = http->fronts_conns;
	uint64_t ino;
	struct entry *e = entry_of(t, fd, &ino);
	if (e == NULL && t != NULL && ino != 0) {
		struct sockaddr_storage ss = { 0 };
		socklen_t len = sizeof(ss);
		unsigned char addr[17];
		getpeername(fd, (struct sockaddr *)&ss, &len);
		address_key(&ss, addr);
		e = add_entry(t, ino, addr);
	}
	if (e != NULL) {
		e->front = -1;
		e->here++;
	}
}

void
http_fronts_conns_done_here(struct http *http, int fd)
{
	uint64_t ino;
	struct entry *e = entry_of(http->fronts_conns, fd, &ino);
	if (e != NULL && e->here > 0) {
		e->here--;
		release_if_unheld(http->fronts_conns, e);
	}
}

void
http_fronts_conns_closed_by(struct http *http, int front, const uint64_t *inos, size_t n)
{
	struct http_fronts_conns *t = http->fronts_conns;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = inos[i] ? find_entry(t, inos[i]) : NULL;
		if (e != NULL && e->front == front) {
			e->front = -1;
			release_if_unheld(t, e);
		}
	}
}

/* Its connections died with it (or came back first, as ADOPT and REPLAY). */
void
http_fronts_conns_front_gone(struct http *http, int front)
{
	struct http_fronts_conns *t = http->fronts_conns;
	for (size_t i = 0; i <= t->mask;) {
		struct entry *e = &t->entries[i];
		if (e->ino != 0 && e->front == front) {
			e->front = -1;
			if (e->here == 0) {
				remove_entry(t, e);
				continue;	/* another may have moved into i */
			}
		}
		i++;
	}
}

unsigned
http_fronts_conns_count(const struct http *http)
{
	return http->fronts_conns->count;
}
