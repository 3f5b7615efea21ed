/* Speculative execution (MapReduce's backup tasks): when a job has nothing left to lease and a
 * worker asks for work, it may get a copy of the job's live lease expected to finish last, so
 * that one slow worker does not hold the whole job. Batches are deterministic, so whichever copy
 * completes first is counted; the other is done too, with nothing added (live_spec.c applies
 * this to the live state).
 *
 * This is the policy: when a lease is expected to finish, whether a copy is worth granting, and
 * when to look again. Pure C: times are ms passed in, rates samples/s passed in (the caller
 * reads them from sched.h); no clock, no I/O. Not thread-safe. */
#ifndef TALLY_SPEC_H
#define TALLY_SPEC_H

#include <stdint.h>

#define SPEC_LIVE_DEFAULT 32 /* speculative copies live at a time, over every job (--max-speculative) */
/* A copy is granted only when its expected duration is at most this share of the time the
 * lease it copies is expected still to take: a copy that would only just win is a waste. */
#define SPEC_GAIN 0.75

/* A live lease as the policy sees it. */
struct spec_lease {
	int64_t granted_at;
	uint64_t samples;
	double rate; /* its worker's rate, samples/s (measured, or sched's default); > 0 */
};

/* The counts the coordinator keeps, and when a lease passed over now may become worth a copy. */
struct spec {
	uint64_t granted; /* copies granted since the start */
	uint64_t won;     /* copies that completed while the lease they copied was still live */
	int64_t look_at;  /* 0: none; see spec_look_at() */
};

/* Returns how long a worker of rate (samples/s, > 0) takes for samples, in ms (at least 1). */
int64_t spec_duration(uint64_t samples, double rate);
/* Returns when l is expected to finish, as seen at now: granted_at plus its expected duration
 * while that is ahead; once it is overdue, now plus the time it has taken so far (it is slower
 * than its worker's rate said, by an unknown factor: assume it takes as long again). */
int64_t spec_expect(const struct spec_lease *l, int64_t now);
/* Returns 1 when a copy of l granted at now to a worker of rate (samples/s, > 0) would likely
 * finish sooner: its duration is at most SPEC_GAIN of what l is expected still to take. */
int spec_worth(const struct spec_lease *l, double rate, int64_t now);
/* Returns the time after now at which a copy of l becomes worth it for a worker as fast as
 * l's own is supposed to be (l overdue by its whole expected duration), or 0 when that time is
 * not after now. The coordinator wakes parked lease requests then. */
int64_t spec_look_at(const struct spec_lease *l, int64_t now);
/* Keeps at *at the earlier of *at and t, a time from spec_look_at() (0: none). */
void spec_earlier(int64_t *at, int64_t t);

#endif
