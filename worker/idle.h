/* --idle-exit: a worker that has held no lease for that long exits, so that a batch scheduler's
 * job array (deploy/slurm) drains when the queue does. Pure: the time is passed in (ms, any
 * monotonic clock). */
#ifndef TALLY_IDLE_H
#define TALLY_IDLE_H

#include <stdint.h>

struct idle {
	int64_t limit_ms; /* 0: never exit */
	int64_t since_ms; /* the start, or the end of the last lease */
};

/* limit_s seconds without a lease (0: never), counted from now_ms. */
void idle_init(struct idle *i, int64_t limit_s, int64_t now_ms);

/* A lease ended (completed, refused, lost or given back) at now_ms: the idle time starts again. */
void idle_lease_ended(struct idle *i, int64_t now_ms);

/* Returns 1 when the worker has been idle for its limit at now_ms. */
int idle_expired(const struct idle *i, int64_t now_ms);

/* The long-poll seconds of the next lease request: wait_s, but no later than the limit (rounded
 * up to a whole second, and at least 1: a 0-second poll would spin). */
int idle_wait_s(const struct idle *i, int64_t now_ms, int wait_s);

#endif
