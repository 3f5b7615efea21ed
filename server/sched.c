/* The lease-size policy and the rates behind it: workers by name in a hash table, and in order
 * of their last measurement (least recent first) for forgetting the idle and the oldest. */
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "hash.h"
#include "htab.h"
#include "job.h"
#include "sched.h"

#define SCHED_MIN_ELAPSED 5 /* ms; shorter measurements are mostly round-trip noise */

struct sched_worker {
	struct htab_node node;               /* s->byname; first, so a node is its worker */
	struct sched_worker *older, *newer;  /* s's order of last measurement */
	double rate;
	int64_t seen;
	char name[];
};

struct sched {
	int64_t target_ms;
	struct htab byname;
	struct sched_worker *oldest, *newest;
};

struct sched *sched_new(int64_t target_ms)
{
	struct sched *s = t_calloc(1, sizeof *s);
	if (s) {
		s->target_ms = target_ms;
		htab_init(&s->byname);
	}
	return s;
}

static void sched_unlink(struct sched *s, struct sched_worker *w)
{
	*(w->older ? &w->older->newer : &s->oldest) = w->newer;
	*(w->newer ? &w->newer->older : &s->newest) = w->older;
}

static void sched_push(struct sched *s, struct sched_worker *w)
{
	w->newer = NULL;
	w->older = s->newest;
	*(s->newest ? &s->newest->newer : &s->oldest) = w;
	s->newest = w;
}

/* Forgets the worker measured longest ago. */
static void sched_drop_oldest(struct sched *s)
{
	struct sched_worker *w = s->oldest;
	htab_remove(&s->byname, &w->node);
	sched_unlink(s, w);
	free(w);
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	while (s->oldest)
		sched_drop_oldest(s);
	htab_release(&s->byname);
	free(s);
}

/* Returns name's entry, or NULL. */
static struct sched_worker *sched_find(const struct sched *s, const char *name)
{
	for (struct htab_node *n = htab_first(&s->byname, hash_str(name)); n; n = htab_next(n)) {
		struct sched_worker *w = (struct sched_worker *)n;
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

size_t sched_size(const struct sched *s)
{
	return s->byname.n;
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
	struct sched_worker *w;
	size_t len = strnlen(worker, WORKER_NAME_MAX - 1);
	double rate;

	if (elapsed_ms < SCHED_MIN_ELAPSED)
		elapsed_ms = SCHED_MIN_ELAPSED;
	rate = (double)samples * 1000.0 / (double)elapsed_ms;
	while (s->oldest && now - s->oldest->seen >= SCHED_IDLE_MS)
		sched_drop_oldest(s);
	if ((w = sched_find(s, worker))) {
		/* A short lease says little; weigh the new figure by half. */
		w->rate = 0.5 * w->rate + 0.5 * rate;
		sched_unlink(s, w);
	} else {
		if (s->byname.n >= SCHED_WORKERS_MAX)
			sched_drop_oldest(s);
		if (htab_reserve(&s->byname, s->byname.n + 1) ||
		    !(w = t_malloc(sizeof *w + len + 1)))
			return;
		memcpy(w->name, worker, len);
		w->name[len] = '\0';
		w->rate = rate;
		htab_insert(&s->byname, &w->node, hash_str(w->name));
	}
	w->seen = now;
	sched_push(s, w);
}
