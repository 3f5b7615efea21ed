/* Per-job progress points, thinned by halves as they accumulate. */
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "history.h"

struct hjob {
	int64_t job_id; /* 0: the slot is free */
	size_t n;
	uint64_t stride; /* adds per kept point */
	uint64_t since;  /* adds since the last point was kept */
	uint64_t owner;  /* the hash of its owner's name (hash_str) */
	struct history_point p[HISTORY_POINTS];
};

struct history {
	struct hjob *slot[HISTORY_JOBS];
};

struct history *history_new(void)
{
	return calloc(1, sizeof(struct history));
}

void history_free(struct history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < HISTORY_JOBS; i++)
		free(h->slot[i]);
	free(h);
}

static struct hjob *history_find(const struct history *h, int64_t job_id)
{
	for (size_t i = 0; i < HISTORY_JOBS; i++)
		if (h->slot[i] && h->slot[i]->job_id == job_id)
			return h->slot[i];
	return NULL;
}

/* Returns the number of slots held by the owner whose name hashes to owner. */
static size_t history_held(const struct history *h, uint64_t owner)
{
	size_t n = 0;
	for (size_t i = 0; i < HISTORY_JOBS; i++)
		n += h->slot[i] && h->slot[i]->owner == owner;
	return n;
}

/* Returns the slot to give job_id: a free one; else that of the oldest job (lowest id) of the
 * owner holding the most slots, job_id counted as its owner's; HISTORY_JOBS when that oldest job
 * is job_id itself (it gets none). By id, not by last update: the 64 most recent jobs are the
 * dashboard's, and jobs updated in turn (as the scheduler shares leases) would evict each other
 * whichever of them was least recently updated. By owner: one client's flood of jobs gives up
 * its own slots, not another's. */
static size_t history_victim(const struct history *h, int64_t job_id, uint64_t owner)
{
	size_t victim = HISTORY_JOBS, most;
	int64_t oldest = job_id;

	for (size_t i = 0; i < HISTORY_JOBS; i++)
		if (!h->slot[i])
			return i;
	most = history_held(h, owner) + 1;
	for (size_t i = 0; i < HISTORY_JOBS; i++) {
		const struct hjob *j = h->slot[i];
		size_t held = history_held(h, j->owner) + (j->owner == owner);
		if (held > most || (held == most && j->job_id < oldest)) {
			most = held;
			oldest = j->job_id;
			victim = i;
		}
	}
	return victim;
}

/* Returns a fresh slot for job_id, or NULL when it gets none (older than the jobs kept) or out of
 * memory. */
static struct hjob *history_take(struct history *h, int64_t job_id, const char *owner)
{
	uint64_t key = hash_str(owner);
	size_t i = history_victim(h, job_id, key);
	if (i == HISTORY_JOBS)
		return NULL;
	if (!h->slot[i] && !(h->slot[i] = malloc(sizeof(struct hjob))))
		return NULL;
	memset(h->slot[i], 0, sizeof(struct hjob));
	h->slot[i]->job_id = job_id;
	h->slot[i]->owner = key;
	h->slot[i]->stride = 1;
	return h->slot[i];
}

void history_add(struct history *h, int64_t job_id, const char *owner, int64_t t,
		 uint64_t samples, const uint64_t *counts)
{
	struct hjob *j = history_find(h, job_id);
	struct history_point p = { t, samples, { 0 } };

	if (!j && !(j = history_take(h, job_id, owner)))
		return;
	memcpy(p.counts, counts, sizeof p.counts);
	if (j->n && j->since < j->stride) { /* the latest state replaces the trailing point */
		j->p[j->n - 1] = p;
		j->since++;
		return;
	}
	if (j->n == HISTORY_POINTS) { /* keep every other point, the last one included */
		for (size_t i = 0; i < HISTORY_POINTS / 2; i++)
			j->p[i] = j->p[2 * i + 1];
		j->n = HISTORY_POINTS / 2;
		j->stride *= 2;
	}
	j->p[j->n++] = p;
	j->since = 1;
}

void history_remove(struct history *h, int64_t job_id)
{
	for (size_t i = 0; i < HISTORY_JOBS; i++)
		if (h->slot[i] && h->slot[i]->job_id == job_id) {
			free(h->slot[i]);
			h->slot[i] = NULL;
		}
}

const struct history_point *history_get(const struct history *h, int64_t job_id, size_t *n)
{
	const struct hjob *j = history_find(h, job_id);
	*n = j ? j->n : 0;
	return j && j->n ? j->p : NULL;
}
