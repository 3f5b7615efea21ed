/* The lease-size policy and the table of per-worker rates behind it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "job.h"
#include "sched.h"

#define SCHED_PROBE 8         /* slots looked at for one name */
#define SCHED_MIN_ELAPSED 5   /* ms; shorter measurements are mostly round-trip noise */

struct sched_worker {
	char name[WORKER_NAME_MAX]; /* "" when the slot is free */
	double rate;
	int64_t seen;
};

struct sched {
	int64_t target_ms;
	struct sched_worker w[SCHED_WORKERS];
};

struct sched *sched_new(int64_t target_ms)
{
	struct sched *s = calloc(1, sizeof *s);
	if (s)
		s->target_ms = target_ms;
	return s;
}

void sched_free(struct sched *s)
{
	free(s);
}

/* Returns the slot holding name, or NULL. */
static const struct sched_worker *sched_find(const struct sched *s, const char *name)
{
	uint64_t h = hash_str(name);
	for (int i = 0; i < SCHED_PROBE; i++) {
		const struct sched_worker *w = &s->w[(h + (uint64_t)i) % SCHED_WORKERS];
		if (!strcmp(w->name, name))
			return w;
	}
	return NULL;
}

double sched_rate(const struct sched *s, const char *worker)
{
	const struct sched_worker *w = sched_find(s, worker);
	return w ? w->rate : SCHED_DEFAULT_RATE;
}

double sched_known_rate(const struct sched *s, const char *worker)
{
	const struct sched_worker *w = sched_find(s, worker);
	return w ? w->rate : 0;
}

uint64_t sched_lease_batches(struct sched *s, const char *worker, uint64_t batch_size,
			     uint64_t remaining, uint64_t max_batches)
{
	double want = sched_rate(s, worker) * (double)s->target_ms / 1000.0 / (double)batch_size;
	uint64_t n = want >= (double)remaining ? remaining : (uint64_t)want;

	if (n < 1)
		n = 1;
	if (max_batches && n > max_batches)
		n = max_batches;
	return n;
}

void sched_observe(struct sched *s, const char *worker, uint64_t samples, int64_t elapsed_ms,
		   int64_t now)
{
	uint64_t h = hash_str(worker);
	struct sched_worker *slot = NULL;
	double rate;

	if (elapsed_ms < SCHED_MIN_ELAPSED)
		elapsed_ms = SCHED_MIN_ELAPSED;
	rate = (double)samples * 1000.0 / (double)elapsed_ms;
	for (int i = 0; i < SCHED_PROBE; i++) {
		struct sched_worker *w = &s->w[(h + (uint64_t)i) % SCHED_WORKERS];
		if (!strcmp(w->name, worker)) {
			/* A short lease says little; weigh the new figure by half. */
			w->rate = 0.5 * w->rate + 0.5 * rate;
			w->seen = now;
			return;
		}
		if (!slot || !w->name[0] || (slot->name[0] && w->seen < slot->seen))
			slot = w;
	}
	snprintf(slot->name, sizeof slot->name, "%s", worker);
	slot->rate = rate;
	slot->seen = now;
}
