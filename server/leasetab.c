/* The lease table (leasetab.h): common/htab.h by id, common/heap.h by expiry, and a list of
 * changed leases. */
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "leasetab.h"

#define LEASETAB_BUCKETS_MIN 256 /* a power of two */

static int expires_first(const void *a, const void *b)
{
	return ((const struct llease *)a)->lease.expires_at <
	       ((const struct llease *)b)->lease.expires_at;
}

static void set_heap_pos(void *item, size_t pos)
{
	((struct llease *)item)->heap = pos;
}

enum tally_err leasetab_init(struct leasetab *t)
{
	htab_init(&t->byid);
	heap_init(&t->live, expires_first, set_heap_pos);
	t->dirty = NULL;
	t->dirty_tail = &t->dirty;
	t->pairs = 0;
	return htab_reserve(&t->byid, LEASETAB_BUCKETS_MIN);
}

static struct llease *lease_of(struct htab_node *e)
{
	return (struct llease *)(void *)((char *)e - offsetof(struct llease, hnode));
}

void leasetab_clear(struct leasetab *t)
{
	for (size_t i = 0; i < t->byid.nbuckets; i++) {
		struct htab_node *e = t->byid.bucket[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(lease_of(e));
		}
	}
	htab_clear(&t->byid);
	heap_clear(&t->live); /* the leases it pointed to are gone */
	t->pairs = 0;
	t->dirty = NULL;
	t->dirty_tail = &t->dirty;
}

void leasetab_release(struct leasetab *t)
{
	leasetab_clear(t);
	htab_release(&t->byid);
	heap_release(&t->live);
}

enum tally_err leasetab_insert(struct leasetab *t, struct llease *l)
{
	enum tally_err rc;

	if (t->byid.n >= t->byid.nbuckets && (rc = htab_reserve(&t->byid, t->byid.nbuckets * 2)))
		return rc;
	htab_insert(&t->byid, &l->hnode, htab_hash_int((uint64_t)l->lease.id));
	l->heap = HEAP_NONE;
	if (l->lease.state == LEASE_ACTIVE && (rc = heap_push(&t->live, l))) {
		htab_remove(&t->byid, &l->hnode);
		return rc;
	}
	return TALLY_OK;
}

struct llease *leasetab_add(struct leasetab *t, const struct lease *lease,
			    const struct job_spec *spec, struct ljob *job)
{
	struct llease *l = t_calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->lease = *lease;
	l->lease.spec = *spec;
	l->job = job;
	if (leasetab_insert(t, l)) {
		free(l);
		return NULL;
	}
	return l;
}

void leasetab_remove(struct leasetab *t, struct llease *l)
{
	leasetab_unlive(t, l);
	htab_remove(&t->byid, &l->hnode);
}

struct llease *leasetab_find(const struct leasetab *t, int64_t id)
{
	for (struct htab_node *e = htab_first(&t->byid, htab_hash_int((uint64_t)id)); e;
	     e = htab_next(e))
		if (lease_of(e)->lease.id == id)
			return lease_of(e);
	return NULL;
}

size_t leasetab_count(const struct leasetab *t)
{
	return t->byid.n;
}

void leasetab_pair(struct leasetab *t, struct llease *a, struct llease *b)
{
	a->twin = b;
	b->twin = a;
	t->pairs++;
}

void leasetab_unpair(struct leasetab *t, struct llease *l)
{
	if (!l->twin)
		return;
	l->twin->twin = NULL;
	l->twin = NULL;
	t->pairs--;
}

size_t leasetab_pairs(const struct leasetab *t)
{
	return t->pairs;
}

void leasetab_unlive(struct leasetab *t, struct llease *l)
{
	leasetab_unpair(t, l);
	if (l->heap != HEAP_NONE)
		heap_remove(&t->live, l->heap);
}

void leasetab_fix(struct leasetab *t, struct llease *l)
{
	heap_fix(&t->live, l->heap);
}

void leasetab_shift(struct leasetab *t, int64_t ms)
{
	for (size_t i = 0; i < heap_len(&t->live); i++)
		((struct llease *)heap_at(&t->live, i))->lease.expires_at += ms;
}

struct llease *leasetab_expired(const struct leasetab *t, int64_t now)
{
	struct llease *l = heap_peek(&t->live);
	return l && l->lease.expires_at <= now ? l : NULL;
}

int64_t leasetab_next_expiry(const struct leasetab *t)
{
	const struct llease *l = heap_peek(&t->live);
	return l ? l->lease.expires_at : 0;
}

size_t leasetab_live(const struct leasetab *t)
{
	return heap_len(&t->live);
}

struct llease *leasetab_live_at(const struct leasetab *t, size_t i)
{
	return heap_at(&t->live, i);
}

struct llease *leasetab_live_of(const struct leasetab *t, const char *worker)
{
	for (size_t i = 0; i < heap_len(&t->live); i++) {
		struct llease *l = heap_at(&t->live, i);
		if (!strcmp(l->lease.worker, worker))
			return l;
	}
	return NULL;
}

struct llease *leasetab_live_holding(const struct leasetab *t, const struct ljob *job, uint64_t b)
{
	for (size_t i = 0; i < heap_len(&t->live); i++) {
		struct llease *l = heap_at(&t->live, i);
		if (l->job == job && !l->lease.check_of && l->lease.first_batch <= b &&
		    b < l->lease.first_batch + l->lease.batch_count)
			return l;
	}
	return NULL;
}

struct cancel {
	struct leasetab *t;
	const struct ljob *job;
	int64_t now;
};

/* Keeps live the leases of other jobs than c->job, and cancels c->job's. */
static int cancel_of_job(void *ctx, void *item)
{
	struct cancel *c = ctx;
	struct llease *l = item;
	if (l->job != c->job)
		return 1;
	leasetab_unpair(c->t, l);
	l->lease.state = LEASE_CANCELLED;
	l->finished_at = c->now;
	leasetab_touch(c->t, l);
	return 0;
}

void leasetab_cancel_job(struct leasetab *t, const struct ljob *job, int64_t now)
{
	struct cancel c = { t, job, now };
	heap_retain(&t->live, cancel_of_job, &c);
}

/* --- changes -------------------------------------------------------------------------------- */

void leasetab_touch(struct leasetab *t, struct llease *l)
{
	if (!l->dirty) {
		l->dirty = 1;
		l->dnext = NULL;
		*t->dirty_tail = l;
		t->dirty_tail = &l->dnext;
	}
}

int leasetab_dirty(const struct leasetab *t)
{
	return t->dirty != NULL;
}

enum tally_err leasetab_each_dirty(const struct leasetab *t,
				   enum tally_err (*fn)(void *ctx, const struct llease *l), void *ctx)
{
	enum tally_err rc;
	for (const struct llease *l = t->dirty; l; l = l->dnext)
		if ((rc = fn(ctx, l)))
			return rc;
	return TALLY_OK;
}

void leasetab_written(struct leasetab *t)
{
	struct llease *l, *ln;
	for (l = t->dirty; l; l = ln) {
		ln = l->dnext;
		l->dirty = 0;
		l->dnext = NULL;
		if (l->lease.state != LEASE_ACTIVE) {
			leasetab_remove(t, l);
			free(l);
		}
	}
	t->dirty = NULL;
	t->dirty_tail = &t->dirty;
}
