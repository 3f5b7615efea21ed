/* Fair share (fair.h): the levels, the flows by (priority, owner) in a hash table, the heaps of
 * ready flows and members, and the pick that walks them best first. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "fair.h"
#include "hash.h"

#define FAIR_SCRATCH_MIN 64

struct fair_flow {
	struct htab_node node; /* first: the table's node is its flow */
	struct fair *fair;     /* whose steps its comparisons count */
	int priority;
	char owner[WIRE_USER_NAME_MAX];
	uint64_t pass, vt, seq; /* vt: the highest member pass charged; seq: its age */
	size_t members;         /* added, ready or not (ready's reserved room) */
	size_t heap;            /* on its level's heap; HEAP_NONE when no member is ready */
	struct heap ready;      /* its ready members, by (pass, id) */
};

static int flow_less(const void *a, const void *b)
{
	const struct fair_flow *x = a, *y = b;
	x->fair->steps++;
	return x->pass != y->pass ? x->pass < y->pass : x->seq < y->seq;
}

static void flow_setpos(void *item, size_t pos)
{
	((struct fair_flow *)item)->heap = pos;
}

static int member_less(const void *a, const void *b)
{
	const struct fair_member *x = a, *y = b;
	x->flow->fair->steps++;
	return x->pass != y->pass ? x->pass < y->pass : x->id < y->id;
}

static void member_setpos(void *item, size_t pos)
{
	((struct fair_member *)item)->heap = pos;
}

void fair_init(struct fair *f)
{
	memset(f, 0, sizeof *f);
	htab_init(&f->flows);
	for (size_t i = 0; i < FAIR_LEVELS; i++)
		heap_init(&f->level[i].ready, flow_less, flow_setpos);
}

void fair_release(struct fair *f)
{
	for (size_t i = 0; i < f->flows.nbuckets; i++) {
		struct htab_node *e, *next;
		for (e = f->flows.bucket[i]; e; e = next) {
			struct fair_flow *fl = (struct fair_flow *)e;
			next = e->next;
			heap_release(&fl->ready);
			free(fl);
		}
	}
	for (size_t i = 0; i < FAIR_LEVELS; i++)
		heap_release(&f->level[i].ready);
	htab_release(&f->flows);
	free(f->scratch);
	fair_init(f);
}

static int clamp_priority(int priority)
{
	if (priority < WIRE_PRIORITY_MIN)
		return WIRE_PRIORITY_MIN;
	return priority > WIRE_PRIORITY_MAX ? WIRE_PRIORITY_MAX : priority;
}

static struct fair_level *level_of(struct fair *f, const struct fair_flow *fl)
{
	return &f->level[fl->priority - WIRE_PRIORITY_MIN];
}

static uint64_t flow_hash(int priority, const char *owner)
{
	return hash_str(owner) ^ htab_hash_int((uint64_t)(priority - WIRE_PRIORITY_MIN));
}

static struct fair_flow *flow_find(const struct fair *f, int priority, const char *owner)
{
	for (struct htab_node *e = htab_first(&f->flows, flow_hash(priority, owner)); e;
	     e = htab_next(e)) {
		struct fair_flow *fl = (struct fair_flow *)e;
		if (fl->priority == priority && !strcmp(fl->owner, owner))
			return fl;
	}
	return NULL;
}

/* Makes the walks' room at least n in each half. TALLY_ENOMEM, f unchanged. */
static enum tally_err scratch_grow(struct fair *f, size_t n)
{
	size_t cap = f->scratch_cap ? f->scratch_cap : FAIR_SCRATCH_MIN, *s;

	if (n <= f->scratch_cap)
		return TALLY_OK;
	while (cap < n)
		cap *= 2;
	if (!(s = t_malloc(2 * cap * sizeof *s)))
		return TALLY_ENOMEM;
	free(f->scratch);
	f->scratch = s;
	f->scratch_cap = cap;
	return TALLY_OK;
}

/* Returns a new flow for (priority, owner), with room on its level's heap, not yet linked; NULL
 * when out of memory. */
static struct fair_flow *flow_new(struct fair *f, int priority, const char *owner)
{
	struct fair_flow *fl;
	struct fair_level *lvl = &f->level[priority - WIRE_PRIORITY_MIN];

	if (htab_reserve(&f->flows, f->flows.n + 1) || heap_reserve(&lvl->ready, lvl->flows + 1) ||
	    !(fl = t_calloc(1, sizeof *fl)))
		return NULL;
	fl->fair = f;
	fl->priority = priority;
	snprintf(fl->owner, sizeof fl->owner, "%s", owner);
	fl->heap = HEAP_NONE;
	heap_init(&fl->ready, member_less, member_setpos);
	return fl;
}

enum tally_err fair_add(struct fair *f, struct fair_member *m, int64_t id, int priority,
			const char *owner)
{
	struct fair_flow *fl;
	int made = 0;

	priority = clamp_priority(priority);
	if (!(fl = flow_find(f, priority, owner))) {
		if (!(fl = flow_new(f, priority, owner)))
			return TALLY_ENOMEM;
		made = 1;
	}
	if (heap_reserve(&fl->ready, fl->members + 1) ||
	    scratch_grow(f, (f->members > f->flows.n ? f->members : f->flows.n) + 1)) {
		if (made) {
			heap_release(&fl->ready);
			free(fl);
		}
		return TALLY_ENOMEM;
	}
	if (made) {
		htab_insert(&f->flows, &fl->node, flow_hash(priority, owner));
		fl->seq = f->seq++;
		level_of(f, fl)->flows++;
	}
	fl->members++;
	f->members++;
	m->pass = 0;
	m->id = id;
	m->heap = HEAP_NONE;
	m->flow = fl;
	return TALLY_OK;
}

void fair_remove(struct fair *f, struct fair_member *m)
{
	struct fair_flow *fl = m->flow;

	if (!fl)
		return;
	fair_set_ready(f, m, 0);
	m->flow = NULL;
	f->members--;
	if (--fl->members)
		return;
	htab_remove(&f->flows, &fl->node);
	level_of(f, fl)->flows--;
	heap_release(&fl->ready);
	free(fl);
}

int fair_is_ready(const struct fair_member *m)
{
	return m->heap != HEAP_NONE;
}

/* Pushes item on h, whose room was reserved when it was added (fair_add()). */
static void push_reserved(struct heap *h, void *item)
{
	enum tally_err rc = heap_push(h, item);
	assert(rc == TALLY_OK);
	(void)rc;
}

void fair_set_ready(struct fair *f, struct fair_member *m, int ready)
{
	struct fair_flow *fl = m->flow;
	struct fair_level *lvl = level_of(f, fl);

	if (!ready == !fair_is_ready(m))
		return;
	if (!ready) {
		heap_remove(&fl->ready, m->heap);
		if (!heap_len(&fl->ready))
			heap_remove(&lvl->ready, fl->heap);
		return;
	}
	/* Back (or new): from the virtual time, with no credit for the time away. */
	if (m->pass < fl->vt)
		m->pass = fl->vt;
	push_reserved(&fl->ready, m);
	if (fl->heap == HEAP_NONE) {
		if (fl->pass < lvl->vt)
			fl->pass = lvl->vt;
		push_reserved(&lvl->ready, fl);
	}
}

struct fair_member *fair_pick(struct fair *f, int (*eligible)(void *ctx, struct fair_member *m),
			      void *ctx)
{
	for (size_t i = FAIR_LEVELS; i-- > 0;) {
		struct heap_walk flows;
		struct fair_flow *fl;

		if (!heap_len(&f->level[i].ready))
			continue;
		heap_walk_init(&flows, &f->level[i].ready, f->scratch);
		while ((fl = heap_walk_next(&flows))) {
			struct heap_walk members;
			struct fair_member *m;

			heap_walk_init(&members, &fl->ready, f->scratch + f->scratch_cap);
			while ((m = heap_walk_next(&members))) {
				f->steps++;
				if (eligible(ctx, m))
					return m;
			}
		}
	}
	return NULL;
}

/* One lease's charge to a pass, under virtual time vt: passed over, it keeps at most FAIR_LAG
 * leases of credit. */
static void charge(uint64_t *pass, uint64_t *vt)
{
	uint64_t p = *pass, floor = *vt > FAIR_LAG ? *vt - FAIR_LAG : 0;
	if (p < floor)
		p = floor;
	if (p > *vt)
		*vt = p;
	*pass = p + 1;
}

void fair_charge(struct fair *f, struct fair_member *m)
{
	struct fair_flow *fl = m->flow;
	struct fair_level *lvl = level_of(f, fl);

	charge(&fl->pass, &lvl->vt);
	if (fl->heap != HEAP_NONE)
		heap_fix(&lvl->ready, fl->heap);
	charge(&m->pass, &fl->vt);
	if (m->heap != HEAP_NONE)
		heap_fix(&fl->ready, m->heap);
}

void fair_each_ready(const struct fair *f,
		     void (*fn)(void *ctx, const struct fair_flow_info *info), void *ctx)
{
	for (size_t i = 0; i < f->flows.nbuckets; i++)
		for (const struct htab_node *e = f->flows.bucket[i]; e; e = e->next) {
			const struct fair_flow *fl = (const struct fair_flow *)e;
			const struct fair_level *lv = &f->level[fl->priority - WIRE_PRIORITY_MIN];
			struct fair_flow_info info = { fl->owner, fl->priority,
						       (int64_t)(fl->pass - lv->vt),
						       fl->ready.len };
			if (fl->heap != HEAP_NONE)
				fn(ctx, &info);
		}
}
