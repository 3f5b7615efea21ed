/* A rate limit on a caller's failures (the lease routes' 404s): each caller may fail `burst`
 * times at once, then once per interval; past that it must wait, and is told how long. It is
 * GCRA (the generic cell rate algorithm): one time per caller, when its debt is paid off.
 * Bounded: RATELIMIT_SLOTS callers at most, each found among RATELIMIT_PROBE slots by a keyed
 * hash of its name (so nobody can aim at another's slots); a caller whose debt is paid takes no
 * slot, and when every slot a new debtor could take is in debt, the debt that ends first is
 * forgotten. Pure: time comes in as arguments. Not thread-safe. */
#ifndef TALLY_RATELIMIT_H
#define TALLY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include "siphash.h"

#define RATELIMIT_SLOTS 4096
#define RATELIMIT_PROBE 8

struct ratelimit_slot {
	uint64_t hash; /* the caller's; 0: never used */
	int64_t paid;  /* when its debt is paid off: free from then on */
};

struct ratelimit {
	uint8_t key[SIPHASH_KEY_SIZE];
	unsigned burst;
	int64_t interval_ms;
	struct ratelimit_slot slot[RATELIMIT_SLOTS];
};

/* Starts rl empty: burst (>= 1) failures at once, then one per interval_ms; callers' names are
 * hashed under key (random: the caller picks it). Can't fail. */
void ratelimit_init(struct ratelimit *rl, const uint8_t key[SIPHASH_KEY_SIZE], unsigned burst,
		    int64_t interval_ms);
/* Returns 0 when caller who[0..len) may go on at now (ms, any monotonic clock), or how many ms
 * it must wait first. Can't fail. */
int64_t ratelimit_wait(const struct ratelimit *rl, const void *who, size_t len, int64_t now);
/* Counts a failure of caller who[0..len) at now. Can't fail. */
void ratelimit_charge(struct ratelimit *rl, const void *who, size_t len, int64_t now);

#endif
