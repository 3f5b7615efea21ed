/* GCRA over a bounded, open-addressed table: a caller's slot holds when its debt is paid off;
 * each failure adds one interval to it, and the caller waits while its debt passes burst - 1
 * intervals. */
#include <string.h>
#include "ratelimit.h"

void ratelimit_init(struct ratelimit *rl, const uint8_t key[SIPHASH_KEY_SIZE], unsigned burst,
		    int64_t interval_ms)
{
	memset(rl, 0, sizeof *rl);
	memcpy(rl->key, key, sizeof rl->key);
	rl->burst = burst ? burst : 1;
	rl->interval_ms = interval_ms > 0 ? interval_ms : 1;
}

static uint64_t ratelimit_hash(const struct ratelimit *rl, const void *who, size_t len)
{
	uint64_t h = siphash24(rl->key, who, len);
	return h ? h : 1; /* 0 marks a slot never used */
}

/* Returns the slot of hash h, or NULL; *first is the first of its probe window. */
static const struct ratelimit_slot *ratelimit_find(const struct ratelimit *rl, uint64_t h,
						   size_t *first)
{
	*first = (size_t)(h % RATELIMIT_SLOTS);
	for (size_t i = 0; i < RATELIMIT_PROBE; i++) {
		const struct ratelimit_slot *s = &rl->slot[(*first + i) % RATELIMIT_SLOTS];
		if (s->hash == h)
			return s;
	}
	return NULL;
}

int64_t ratelimit_wait(const struct ratelimit *rl, const void *who, size_t len, int64_t now)
{
	size_t first;
	const struct ratelimit_slot *s = ratelimit_find(rl, ratelimit_hash(rl, who, len), &first);
	int64_t over;

	if (!s)
		return 0;
	over = s->paid - now - (int64_t)(rl->burst - 1) * rl->interval_ms;
	return over > 0 ? over : 0;
}

void ratelimit_charge(struct ratelimit *rl, const void *who, size_t len, int64_t now)
{
	uint64_t h = ratelimit_hash(rl, who, len);
	size_t first;
	struct ratelimit_slot *s = (struct ratelimit_slot *)ratelimit_find(rl, h, &first);

	if (!s) {
		/* A free slot (its debt paid), or else the one whose debt ends first. */
		for (size_t i = 0; i < RATELIMIT_PROBE; i++) {
			struct ratelimit_slot *t = &rl->slot[(first + i) % RATELIMIT_SLOTS];
			if (!s || t->paid < s->paid)
				s = t;
			if (t->paid <= now)
				break;
		}
		s->hash = h;
		s->paid = now;
	}
	s->paid = (s->paid > now ? s->paid : now) + rl->interval_ms;
}
