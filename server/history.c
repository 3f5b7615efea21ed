/* Per-job progress points, thinned by halves as they accumulate. */
#include <stdlib.h>
#include <string.h>
#include "history.h"

struct hjob {
	int64_t job_id; /* 0: the slot is free */
	size_t n;
	uint64_t stride; /* adds per kept point */
	uint64_t since;  /* adds since the last point was kept */
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

/* Returns a fresh slot for job_id: a free one, else the oldest job's (lowest id). */
static struct hjob *history_take(struct history *h, int64_t job_id)
{
	size_t oldest = 0;
	for (size_t i = 0; i < HISTORY_JOBS; i++) {
		if (!h->slot[i]) {
			oldest = i;
			break;
		}
		if (h->slot[i]->job_id < h->slot[oldest]->job_id)
			oldest = i;
	}
	if (!h->slot[oldest] && !(h->slot[oldest] = malloc(sizeof(struct hjob))))
		return NULL;
	memset(h->slot[oldest], 0, sizeof(struct hjob));
	h->slot[oldest]->job_id = job_id;
	h->slot[oldest]->stride = 1;
	return h->slot[oldest];
}

void history_add(struct history *h, int64_t job_id, int64_t t, uint64_t samples,
		 const uint64_t *counts)
{
	struct hjob *j = history_find(h, job_id);
	struct history_point p = { t, samples, { 0 } };

	if (!j && !(j = history_take(h, job_id)))
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
