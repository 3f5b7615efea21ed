/* The coordinator's quotas (unfinished jobs per owner and in all, read in O(1) from the counts
 * the job table keeps: server/owners.h) and what GET /metrics shows by owner: the owners with
 * the most unfinished jobs, and the fair share's next in line. */
#include <stdio.h>
#include <string.h>
#include "coord_int.h"
#include "live.h"

void coord_quota(struct coord *c, const char *owner, struct coord_quota *out)
{
	out->owner_unfinished = live_unfinished(c->live, owner);
	out->owner_limit = c->cfg.max_unfinished_jobs;
	out->unfinished = live_unfinished(c->live, NULL);
	out->limit = c->cfg.max_jobs_in_memory;
}

enum tally_err coord_admit(struct coord *c, const char *owner)
{
	struct coord_quota q;

	coord_quota(c, owner, &q);
	if (q.owner_limit && q.owner_unfinished >= q.owner_limit)
		return TALLY_EQUOTA;
	if (q.limit && q.unfinished >= q.limit)
		return TALLY_EFULL;
	return TALLY_OK;
}

/* 1 when owner jobs a ranks before b: more unfinished jobs, then the lower name. */
static int jobs_before(const struct coord_owner_jobs *a, const struct coord_owner_jobs *b)
{
	uint64_t na = a->queued + a->running, nb = b->queued + b->running;
	return na != nb ? na > nb : strcmp(a->owner, b->owner) < 0;
}

struct by_owner {
	struct coord_metrics *m;
	struct coord_owner_jobs rest; /* what falls off the end */
	int more;                     /* some did */
};

/* Keeps the COORD_OWNERS_SHOWN first owners in order (an insertion: O(COORD_OWNERS_SHOWN) for
 * an owner that gets in, O(1) for one that does not); sums the others into rest. */
static void take_owner(void *ctx, const struct owner_tally *e)
{
	struct by_owner *bo = ctx;
	struct coord_metrics *m = bo->m;
	struct coord_owner_jobs o = { .queued = e->queued, .running = e->running };
	const struct coord_owner_jobs *out = &o;
	size_t i;

	if (!o.queued && !o.running)
		return; /* finished jobs only, until written */
	snprintf(o.owner, sizeof o.owner, "%s", e->owner);
	if (m->nby_owner == COORD_OWNERS_SHOWN) {
		bo->more = 1;
		if (jobs_before(&o, &m->by_owner[COORD_OWNERS_SHOWN - 1]))
			out = &m->by_owner[--m->nby_owner]; /* the last one falls off */
		bo->rest.queued += out->queued;
		bo->rest.running += out->running;
		if (out == &o)
			return;
	}
	for (i = m->nby_owner; i > 0 && jobs_before(&o, &m->by_owner[i - 1]); i--)
		m->by_owner[i] = m->by_owner[i - 1];
	m->by_owner[i] = o;
	m->nby_owner++;
}

/* 1 when flow a ranks before b in the order leases go: higher priority, lower lead, name. */
static int fair_before(const struct coord_owner_fair *a, const struct coord_owner_fair *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return a->lead != b->lead ? a->lead < b->lead : strcmp(a->owner, b->owner) < 0;
}

static void take_flow(void *ctx, const struct fair_flow_info *info)
{
	struct coord_metrics *m = ctx;
	struct coord_owner_fair o = { .priority = info->priority, .lead = info->lead,
				      .ready = info->ready };
	size_t i;

	snprintf(o.owner, sizeof o.owner, "%s", info->owner);
	if (m->nfair == COORD_OWNERS_SHOWN) {
		if (!fair_before(&o, &m->fair[COORD_OWNERS_SHOWN - 1]))
			return;
		m->nfair--;
	}
	for (i = m->nfair; i > 0 && fair_before(&o, &m->fair[i - 1]); i--)
		m->fair[i] = m->fair[i - 1];
	m->fair[i] = o;
	m->nfair++;
}

void coord_owner_metrics(struct coord *c, struct coord_metrics *m)
{
	struct by_owner bo = { m, { .owner = "other" }, 0 };
	size_t i;

	m->nby_owner = m->nfair = 0;
	live_each_owner(c->live, take_owner, &bo);
	live_each_flow(c->live, take_flow, m);
	if (!bo.more)
		return;
	for (i = 0; i < m->nby_owner && strcmp(m->by_owner[i].owner, "other"); i++)
		;
	if (i == m->nby_owner)
		m->by_owner[m->nby_owner++] = (struct coord_owner_jobs){ "other", 0, 0 };
	m->by_owner[i].queued += bo.rest.queued;
	m->by_owner[i].running += bo.rest.running;
}
