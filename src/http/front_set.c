/*
 * front_set.c - which chunks a front may run in its lane.
 *
 * A chunk is short once SHORT_RUNS runs in a row (in the pool or here)
 * took under half of fast_lane_ms; LONG_STRIKES slower runs in a row make
 * it wait for SHORT_RUNS more (one alone is more often a busy machine,
 * which preempted the job, than a longer job), and a stop at the lane's
 * limit bans it (until its slot goes to another chunk).  The client never says a job is short: only measured runs
 * do.  Direct-mapped by digest, so a busy server forgets a chunk rather
 * than growing; a forgotten chunk only goes back to the pool.
 */
#include <string.h>

#include "http/front_internal.h"

#define SET_SLOTS	4096u
#define SHORT_RUNS	3u
#define LONG_STRIKES	2u

struct slot {
	unsigned char digest[16];
	unsigned char runs;		/* short runs in a row, up to SHORT_RUNS */
	unsigned char strikes;		/* slower runs in a row */
	unsigned char banned;
	unsigned char used;
};

static struct slot slots[SET_SLOTS];
static double short_ms;

void
front_set_init(unsigned fast_lane_ms)
{
	memset(slots, 0, sizeof(slots));
	short_ms = fast_lane_ms / 2.0;
}

static struct slot *
slot_of(const unsigned char digest[16], int claim)
{
	unsigned i = ((unsigned)digest[0] | (unsigned)digest[1] << 8) % SET_SLOTS;
	struct slot *s = &slots[i];
	if (s->used && memcmp(s->digest, digest, 16) == 0)
		return s;
	if (!claim)
		return NULL;
	memset(s, 0, sizeof(*s));
	memcpy(s->digest, digest, 16);
	s->used = 1;
	return s;
}

int
front_set_is_short(const unsigned char digest[16])
{
	const struct slot *s = slot_of(digest, 0);
	return s != NULL && !s->banned && s->runs >= SHORT_RUNS;
}

void
front_set_observe(const unsigned char digest[16], double run_ms)
{
	struct slot *s = slot_of(digest, 1);
	if (run_ms < short_ms) {
		if (s->runs < SHORT_RUNS)
			s->runs++;
		s->strikes = 0;
	} else if (++s->strikes >= LONG_STRIKES || s->runs < SHORT_RUNS) {
		s->runs = 0;
		s->strikes = 0;
	}
}

void
front_set_demote(const unsigned char digest[16])
{
	struct slot *s = slot_of(digest, 1);
	s->runs = 0;
	s->banned = 1;
}
