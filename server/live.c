/* Live state in memory: unfinished jobs in a list by id, live leases in a hash table by id and in
 * a min-heap by expiry, each job's pending checks in a list, quarantined workers in a list, and
 * the objects changed since the last write on dirty lists. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "live.h"
#include "rng.h"

/* One worker's counts for a check's batches; the first is the checked lease's own. */
struct opinion {
	int64_t lease_id;
	uint64_t counts[KERNEL_MAX_KEYS];
	char worker[WORKER_NAME_MAX];
};

/* A pending check of lease lease_id's batches [first, first + count), on its job's list until
 * settled, and on the dirty list until written. */
struct lcheck {
	int64_t lease_id;
	uint64_t first, count;
	struct opinion op[LIVE_OPINIONS_MAX];
	size_t nop;
	int64_t leased;     /* the live check lease on it; 0: none */
	unsigned failures;  /* failed check leases (faults) */
	int disputed;       /* its opinions have disagreed (counted in the job's mismatches) */
	enum live_check_state state;
	int dirty;
	struct lcheck *next;  /* on its job's list of pending checks */
	struct lcheck *dnext; /* on the dirty list */
};

struct lquar {
	char worker[WORKER_NAME_MAX];
	char reason[LIVE_QUARANTINE_REASON_MAX];
	int64_t at, job_id;
	int dirty;
	int suspect; /* its done leases are still to be discarded */
	struct lquar *next;
};

/* One segment of a job with a target_stderr (job_stop_boundary): its done batches and their
 * counts. */
struct lseg {
	uint64_t done;
	uint64_t counts[KERNEL_MAX_KEYS];
};

struct ljob {
	struct job job;
	struct lseg *seg;   /* JOB_STOP_SEGMENTS of them with a target_stderr; NULL otherwise */
	size_t seg_next;    /* segments before it are complete and were evaluated */
	struct lcheck *checks; /* pending */
	size_t checks_open;    /* of those, not leased now */
	uint64_t next_batch;
	struct batch_range *free; /* sorted by first, never adjacent */
	size_t nfree, capfree;
	char last_failure[LIVE_REASON_MAX];
	char key[JOB_KEY_MAX]; /* "" when none */
	int dirty, ranges_changed;
	struct ljob *next;  /* by id, ascending */
	struct ljob *dnext; /* on the dirty list */
};

struct llease {
	struct lease lease;
	uint64_t counts[KERNEL_MAX_KEYS]; /* once done */
	int has_counts;
	int64_t finished_at;
	struct ljob *job;
	size_t heap; /* index in the expiry heap; SIZE_MAX when not live */
	int dirty;
	struct llease *hnext; /* hash chain */
	struct llease *dnext; /* on the dirty list */
};

struct live {
	struct ljob *jobs, *jobs_tail;
	size_t njobs;
	struct llease **bucket;
	size_t nbuckets, nleases;
	struct llease **heap;
	size_t nheap, capheap;
	struct ljob *dirty_jobs, **dirty_jobs_tail;       /* in the order they changed */
	struct llease *dirty_leases, **dirty_leases_tail; /* so new lease rows append */
	struct lcheck *dirty_checks;
	struct lquar *quar;
	size_t nsuspects;
	int64_t next_job_id;
	uint64_t seq_next, seq_limit;
	uint64_t rnd;
	unsigned max_failures;
};

struct live *live_new(uint64_t rand_seed, unsigned max_failures)
{
	struct live *lv = calloc(1, sizeof *lv);
	if (!lv)
		return NULL;
	lv->nbuckets = 256;
	lv->bucket = calloc(lv->nbuckets, sizeof *lv->bucket);
	if (!lv->bucket) {
		free(lv);
		return NULL;
	}
	lv->rnd = rand_seed;
	lv->max_failures = max_failures;
	lv->next_job_id = 1;
	lv->dirty_jobs_tail = &lv->dirty_jobs;
	lv->dirty_leases_tail = &lv->dirty_leases;
	return lv;
}

static void job_free(struct ljob *j)
{
	free(j->seg);
	struct lcheck *ch, *cn;
	for (ch = j->checks; ch; ch = cn) {
		cn = ch->next;
		free(ch);
	}
	free(j->free);
	free(j);
}

void live_clear(struct live *lv)
{
	struct ljob *j, *jn;
	struct lcheck *ch, *cn;
	struct lquar *q, *qn;

	for (ch = lv->dirty_checks; ch; ch = cn) { /* settled ones: pending ones are their job's */
		cn = ch->dnext;
		if (ch->state != CHECK_PENDING)
			free(ch);
	}
	lv->dirty_checks = NULL;
	for (q = lv->quar; q; q = qn) {
		qn = q->next;
		free(q);
	}
	lv->quar = NULL;
	lv->nsuspects = 0;
	for (size_t i = 0; i < lv->nbuckets; i++) {
		struct llease *l = lv->bucket[i], *n;
		for (; l; l = n) {
			n = l->hnext;
			free(l);
		}
		lv->bucket[i] = NULL;
	}
	for (j = lv->jobs; j; j = jn) {
		jn = j->next;
		job_free(j);
	}
	lv->jobs = lv->jobs_tail = NULL;
	lv->njobs = lv->nleases = lv->nheap = 0;
	lv->dirty_jobs = NULL;
	lv->dirty_leases = NULL;
	lv->dirty_jobs_tail = &lv->dirty_jobs;
	lv->dirty_leases_tail = &lv->dirty_leases;
}

void live_free(struct live *lv)
{
	if (!lv)
		return;
	live_clear(lv);
	free(lv->bucket);
	free(lv->heap);
	free(lv);
}

/* --- marking changes ------------------------------------------------------------------------ */

static void job_touch(struct live *lv, struct ljob *j)
{
	if (!j->dirty) {
		j->dirty = 1;
		j->dnext = NULL;
		*lv->dirty_jobs_tail = j;
		lv->dirty_jobs_tail = &j->dnext;
	}
}

static void lease_touch(struct live *lv, struct llease *l)
{
	if (!l->dirty) {
		l->dirty = 1;
		l->dnext = NULL;
		*lv->dirty_leases_tail = l;
		lv->dirty_leases_tail = &l->dnext;
	}
}

static void check_touch(struct live *lv, struct lcheck *ch)
{
	if (!ch->dirty) {
		ch->dirty = 1;
		ch->dnext = lv->dirty_checks;
		lv->dirty_checks = ch;
	}
}

/* --- jobs ----------------------------------------------------------------------------------- */

static struct ljob *job_find(const struct live *lv, int64_t id)
{
	for (struct ljob *j = lv->jobs; j; j = j->next)
		if (j->job.id == id)
			return j;
	return NULL;
}

static void job_append(struct live *lv, struct ljob *j)
{
	if (lv->jobs_tail)
		lv->jobs_tail->next = j;
	else
		lv->jobs = j;
	lv->jobs_tail = j;
	lv->njobs++;
}

static void job_unlink(struct live *lv, struct ljob *j)
{
	struct ljob **p = &lv->jobs, *prev = NULL;
	while (*p && *p != j) {
		prev = *p;
		p = &(*p)->next;
	}
	if (!*p)
		return;
	*p = j->next;
	if (lv->jobs_tail == j)
		lv->jobs_tail = prev;
	lv->njobs--;
}

static int same_history(const struct batch_range *r, unsigned failures, unsigned strikes)
{
	return r->failures == failures && r->strikes == strikes;
}

/* Returns batches [first, first + count) of j to pending, merging with neighbours that have the
 * same failure history. */
static enum tally_err range_give_back(struct ljob *j, uint64_t first, uint64_t count,
				      unsigned failures, unsigned strikes)
{
	size_t lo = 0, hi = j->nfree;
	struct batch_range *r;

	while (lo < hi) { /* the first range starting after `first` */
		size_t mid = (lo + hi) / 2;
		if (j->free[mid].first < first)
			lo = mid + 1;
		else
			hi = mid;
	}
	j->ranges_changed = 1;
	if (lo > 0 && j->free[lo - 1].first + j->free[lo - 1].count == first &&
	    same_history(&j->free[lo - 1], failures, strikes)) {
		r = &j->free[lo - 1];
		r->count += count;
		if (lo < j->nfree && r->first + r->count == j->free[lo].first &&
		    same_history(&j->free[lo], failures, strikes)) {
			r->count += j->free[lo].count;
			memmove(&j->free[lo], &j->free[lo + 1],
				(j->nfree - lo - 1) * sizeof *j->free);
			j->nfree--;
		}
		return TALLY_OK;
	}
	if (lo < j->nfree && first + count == j->free[lo].first &&
	    same_history(&j->free[lo], failures, strikes)) {
		j->free[lo].first = first;
		j->free[lo].count += count;
		return TALLY_OK;
	}
	if (j->nfree == j->capfree) {
		size_t cap = j->capfree ? j->capfree * 2 : 8;
		struct batch_range *nr = realloc(j->free, cap * sizeof *nr);
		if (!nr)
			return TALLY_ENOMEM;
		j->free = nr;
		j->capfree = cap;
	}
	memmove(&j->free[lo + 1], &j->free[lo], (j->nfree - lo) * sizeof *j->free);
	j->free[lo].first = first;
	j->free[lo].count = count;
	j->free[lo].failures = failures;
	j->free[lo].strikes = strikes;
	j->nfree++;
	return TALLY_OK;
}

/* Returns a new, empty job for spec (with its prefix segments when it stops early), or NULL. */
static struct ljob *job_new(const struct job_spec *spec)
{
	struct ljob *j = calloc(1, sizeof *j);
	if (j && spec->target_stderr > 0 && !(j->seg = calloc(JOB_STOP_SEGMENTS, sizeof *j->seg))) {
		free(j);
		j = NULL;
	}
	return j;
}

/* Adds (sign 1) or takes back (-1) a done lease's counts in its segment. */
static void seg_count(struct ljob *j, uint64_t first, uint64_t count, const uint64_t *counts,
		      int sign)
{
	size_t i = job_stop_segment(first);
	struct lseg *g;

	if (!j->seg)
		return;
	g = &j->seg[i];
	for (size_t k = 0; k < KERNEL_MAX_KEYS; k++)
		g->counts[k] = sign > 0 ? g->counts[k] + counts[k] : g->counts[k] - counts[k];
	g->done = sign > 0 ? g->done + count : g->done - count;
	if (sign < 0 && i < j->seg_next)
		j->seg_next = i; /* to be evaluated again once complete */
}

enum tally_err live_load_job(struct live *lv, const struct job *job, uint64_t next_batch,
			     const char *last_failure)
{
	struct ljob *j = job_new(&job->spec);
	if (!j)
		return TALLY_ENOMEM;
	j->job = *job;
	j->job.checks_pending = 0; /* counted again as the pending checks load */
	if (!j->job.first_lease_id && next_batch)
		j->job.first_lease_id = 1; /* leased before the store kept it: any lease may be its */
	j->next_batch = next_batch;
	if (last_failure)
		strncpy(j->last_failure, last_failure, sizeof j->last_failure - 1);
	job_append(lv, j);
	if (job->id >= lv->next_job_id)
		lv->next_job_id = job->id + 1;
	return TALLY_OK;
}

void live_load_result(struct live *lv, const struct lease *done, const uint64_t *counts)
{
	struct ljob *j = job_find(lv, done->job_id);
	if (j && !done->check_of)
		seg_count(j, done->first_batch, done->batch_count, counts, 1);
}

int64_t live_next_stopping_job(const struct live *lv, int64_t after)
{
	for (const struct ljob *j = lv->jobs; j; j = j->next)
		if (j->job.id > after && j->seg && !job_is_final(j->job.state))
			return j->job.id;
	return 0;
}

enum tally_err live_load_range(struct live *lv, int64_t job_id, const struct batch_range *r)
{
	struct ljob *j = job_find(lv, job_id);
	enum tally_err rc;
	if (!j || !r->count)
		return TALLY_OK; /* a finished job's leftovers: nothing to lease */
	rc = range_give_back(j, r->first, r->count, r->failures, r->strikes);
	j->ranges_changed = 0;
	return rc;
}

void live_set_next_job_id(struct live *lv, int64_t id)
{
	if (id > lv->next_job_id)
		lv->next_job_id = id;
}

enum tally_err live_submit(struct live *lv, const struct job_spec *spec, const char *key,
			   int64_t now, struct job *out)
{
	struct ljob *j = job_new(spec);
	if (!j)
		return TALLY_ENOMEM;
	if (key)
		strncpy(j->key, key, sizeof j->key - 1);
	j->job.id = lv->next_job_id++;
	j->job.spec = *spec;
	j->job.spec.kernel_version = spec->kernel->version; /* the version it is computed with */
	kernel_keys(spec->kernel, &j->job.keys);
	j->job.state = JOB_QUEUED;
	j->job.batches_total = kernel_batches(spec->samples, spec->batch_size);
	j->job.created_at = now;
	job_append(lv, j);
	job_touch(lv, j);
	*out = j->job;
	return TALLY_OK;
}

const struct job *live_job(const struct live *lv, int64_t id)
{
	struct ljob *j = job_find(lv, id);
	return j ? &j->job : NULL;
}

const char *live_last_failure(const struct live *lv, int64_t id)
{
	struct ljob *j = job_find(lv, id);
	return j && j->last_failure[0] ? j->last_failure : NULL;
}

const struct job *live_job_by_key(const struct live *lv, const char *key)
{
	for (struct ljob *j = lv->jobs; j; j = j->next)
		if (j->key[0] && !strcmp(j->key, key))
			return &j->job;
	return NULL;
}

/* --- checks --------------------------------------------------------------------------------- */

static struct lcheck *check_find(const struct ljob *j, int64_t lease_id)
{
	struct lcheck *ch = j->checks;
	while (ch && ch->lease_id != lease_id)
		ch = ch->next;
	return ch;
}

static void check_unlink(struct ljob *j, struct lcheck *ch)
{
	struct lcheck **p = &j->checks;
	while (*p && *p != ch)
		p = &(*p)->next;
	if (*p)
		*p = ch->next;
	ch->next = NULL;
}

static int opinion_has(const struct lcheck *ch, const char *worker)
{
	for (size_t i = 0; i < ch->nop; i++)
		if (!strcmp(ch->op[i].worker, worker))
			return 1;
	return 0;
}

/* Returns a check of j that worker can give the next opinion on, within its cap on a lease's
 * batches (0: none), or NULL. */
static struct lcheck *check_for(const struct ljob *j, const char *worker, uint64_t max_batches)
{
	for (struct lcheck *ch = j->checks; ch; ch = ch->next)
		if (!ch->leased && ch->nop < LIVE_OPINIONS_MAX && !opinion_has(ch, worker) &&
		    (!max_batches || ch->count <= max_batches))
			return ch;
	return NULL;
}

static int same_counts(const struct opinion *a, const struct opinion *b)
{
	return !memcmp(a->counts, b->counts, sizeof a->counts); /* unused names count 0 */
}

static void opinion_set(struct opinion *o, const struct lease *l, const uint64_t *counts)
{
	memset(o, 0, sizeof *o);
	o->lease_id = l->id;
	memcpy(o->counts, counts, sizeof o->counts);
	snprintf(o->worker, sizeof o->worker, "%s", l->worker);
}

/* Adds a pending check of done lease l to its job j. Returns it, or NULL when out of memory. */
static struct lcheck *check_add(struct ljob *j, const struct lease *l, const uint64_t *counts)
{
	struct lcheck *ch = calloc(1, sizeof *ch);
	if (!ch)
		return NULL;
	ch->lease_id = l->id;
	ch->first = l->first_batch;
	ch->count = l->batch_count;
	opinion_set(&ch->op[0], l, counts);
	ch->nop = 1;
	ch->state = CHECK_PENDING;
	ch->next = j->checks;
	j->checks = ch;
	j->checks_open++;
	j->job.checks_pending++;
	return ch;
}

/* --- leases: the hash table and the expiry heap --------------------------------------------- */

static size_t hash_slot(const struct live *lv, int64_t id)
{
	return (size_t)(((uint64_t)id * RNG_GAMMA) >> 32) & (lv->nbuckets - 1);
}

static struct llease *lease_find(const struct live *lv, int64_t id)
{
	struct llease *l = lv->bucket[hash_slot(lv, id)];
	while (l && l->lease.id != id)
		l = l->hnext;
	return l;
}

static enum tally_err hash_insert(struct live *lv, struct llease *l)
{
	size_t i;
	if (lv->nleases >= lv->nbuckets) {
		size_t n = lv->nbuckets * 2, old = lv->nbuckets;
		struct llease **nb = calloc(n, sizeof *nb), **ob = lv->bucket;
		if (!nb)
			return TALLY_ENOMEM;
		lv->bucket = nb;
		lv->nbuckets = n;
		for (size_t k = 0; k < old; k++) {
			struct llease *e = ob[k], *next;
			for (; e; e = next) {
				next = e->hnext;
				i = hash_slot(lv, e->lease.id);
				e->hnext = nb[i];
				nb[i] = e;
			}
		}
		free(ob);
	}
	i = hash_slot(lv, l->lease.id);
	l->hnext = lv->bucket[i];
	lv->bucket[i] = l;
	lv->nleases++;
	return TALLY_OK;
}

static void hash_remove(struct live *lv, struct llease *l)
{
	struct llease **p = &lv->bucket[hash_slot(lv, l->lease.id)];
	while (*p && *p != l)
		p = &(*p)->hnext;
	if (*p) {
		*p = l->hnext;
		lv->nleases--;
	}
}

static int heap_less(const struct live *lv, size_t a, size_t b)
{
	return lv->heap[a]->lease.expires_at < lv->heap[b]->lease.expires_at;
}

static void heap_swap(struct live *lv, size_t a, size_t b)
{
	struct llease *t = lv->heap[a];
	lv->heap[a] = lv->heap[b];
	lv->heap[b] = t;
	lv->heap[a]->heap = a;
	lv->heap[b]->heap = b;
}

static void heap_down(struct live *lv, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < lv->nheap && heap_less(lv, l, m))
			m = l;
		if (r < lv->nheap && heap_less(lv, r, m))
			m = r;
		if (m == i)
			break;
		heap_swap(lv, i, m);
		i = m;
	}
}

/* Restores the heap order around index i after its key changed either way. */
static void heap_fix(struct live *lv, size_t i)
{
	while (i > 0 && heap_less(lv, i, (i - 1) / 2)) {
		heap_swap(lv, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	heap_down(lv, i);
}

static enum tally_err heap_push(struct live *lv, struct llease *l)
{
	if (lv->nheap == lv->capheap) {
		size_t cap = lv->capheap ? lv->capheap * 2 : 64;
		struct llease **nh = realloc(lv->heap, cap * sizeof *nh);
		if (!nh)
			return TALLY_ENOMEM;
		lv->heap = nh;
		lv->capheap = cap;
	}
	lv->heap[lv->nheap] = l;
	l->heap = lv->nheap++;
	heap_fix(lv, l->heap);
	return TALLY_OK;
}

static void heap_remove(struct live *lv, struct llease *l)
{
	size_t i = l->heap;
	if (i == SIZE_MAX)
		return;
	l->heap = SIZE_MAX;
	if (i != --lv->nheap) {
		lv->heap[i] = lv->heap[lv->nheap];
		lv->heap[i]->heap = i;
		heap_fix(lv, i);
	}
}

/* Adds a lease to memory: hashed, and on the heap while live. */
static enum tally_err lease_add(struct live *lv, struct llease *l)
{
	enum tally_err rc = hash_insert(lv, l);
	if (rc)
		return rc;
	l->heap = SIZE_MAX;
	if (l->lease.state == LEASE_ACTIVE && (rc = heap_push(lv, l)))
		hash_remove(lv, l);
	return rc;
}

enum tally_err live_load_lease(struct live *lv, const struct lease *lease)
{
	struct ljob *j = job_find(lv, lease->job_id);
	struct llease *l;
	enum tally_err rc;

	if (!j || lease->state != LEASE_ACTIVE)
		return TALLY_OK; /* the store keeps finished ones */
	if (!(l = calloc(1, sizeof *l)))
		return TALLY_ENOMEM;
	l->lease = *lease;
	l->lease.spec = j->job.spec;
	l->job = j;
	if ((rc = lease_add(lv, l))) {
		free(l);
		return rc;
	}
	if (lease->check_of) {
		struct lcheck *ch = check_find(j, lease->check_of);
		if (ch && !ch->leased) {
			ch->leased = lease->id;
			j->checks_open--;
		}
	}
	return TALLY_OK;
}

uint64_t live_seq_next(const struct live *lv)
{
	return lv->seq_next;
}

uint64_t live_seq_limit(const struct live *lv)
{
	return lv->seq_limit;
}

void live_set_seq(struct live *lv, uint64_t next, uint64_t limit)
{
	lv->seq_next = next;
	lv->seq_limit = limit < LIVE_SEQ_MAX ? limit : LIVE_SEQ_MAX;
}

const struct lease *live_lease(const struct live *lv, int64_t id)
{
	struct llease *l = lease_find(lv, id);
	return l ? &l->lease : NULL;
}

void live_extend_all(struct live *lv, int64_t ms)
{
	for (size_t i = 0; i < lv->nheap; i++) { /* the same shift for all: the order holds */
		lv->heap[i]->lease.expires_at += ms;
		lease_touch(lv, lv->heap[i]);
	}
}

void live_each_lease(const struct live *lv, void (*each)(void *ctx, const struct lease *l),
		     void *ctx)
{
	for (size_t i = 0; i < lv->nheap; i++)
		each(ctx, &lv->heap[i]->lease);
}

int64_t live_next_expiry(const struct live *lv)
{
	return lv->nheap ? lv->heap[0]->lease.expires_at : 0;
}

/* Ends job j in a final state: its live leases are cancelled (the heap is rebuilt without
 * them), its pending batches and checks dropped. */
static void job_end(struct live *lv, struct ljob *j, enum job_state state, int64_t now)
{
	size_t kept = 0;
	while (j->checks) {
		struct lcheck *ch = j->checks;
		j->checks = ch->next;
		ch->next = NULL;
		ch->state = CHECK_DROPPED;
		check_touch(lv, ch);
	}
	j->checks_open = 0;
	j->job.checks_pending = 0;
	for (size_t i = 0; i < lv->nheap; i++) {
		struct llease *l = lv->heap[i];
		if (l->job != j) {
			lv->heap[kept] = l;
			l->heap = kept++;
			continue;
		}
		l->heap = SIZE_MAX;
		l->lease.state = LEASE_CANCELLED;
		l->finished_at = now;
		lease_touch(lv, l);
	}
	lv->nheap = kept;
	for (size_t i = kept / 2; i-- > 0;) /* heapify: sift each parent down, last first */
		heap_down(lv, i);
	j->job.state = state;
	j->job.finished_at = now;
	j->job.batches_leased = 0;
	j->nfree = 0;
	j->ranges_changed = 1;
	job_touch(lv, j);
}

/* Fails job j with an error naming why (printf-style), ending it; sets *job_failed (may be
 * NULL). */
static void job_fail(struct live *lv, struct ljob *j, int64_t now, int *job_failed,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void job_fail(struct live *lv, struct ljob *j, int64_t now, int *job_failed,
		     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->job.error, sizeof j->job.error, fmt, ap);
	va_end(ap);
	job_end(lv, j, JOB_FAILED, now);
	if (job_failed)
		*job_failed = 1;
}

/* Marks lease l finished in state s at now: off the heap (if it was on it), written behind. */
static void lease_finish(struct live *lv, struct llease *l, enum lease_state s, int64_t now)
{
	heap_remove(lv, l);
	l->lease.state = s;
	l->finished_at = now;
	lease_touch(lv, l);
}

/* Ends check lease l in state s. Unless it is done (its opinion is then the caller's to add),
 * its check is open again. A fail that says the batches are at fault counts against the check,
 * and at the limit the job fails; an expiry does not: the batches were computed once already,
 * so it was its worker that died. */
static void check_lease_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
			    int fault, const char *reason, int *job_failed)
{
	struct ljob *j = l->job;
	struct lcheck *ch = check_find(j, l->lease.check_of);

	lease_finish(lv, l, s, now);
	if (!ch || ch->leased != l->lease.id)
		return; /* its check was settled or dropped meanwhile */
	ch->leased = 0;
	if (s == LEASE_DONE)
		return;
	j->checks_open++;
	if (fault && s == LEASE_FAILED && lv->max_failures && ++ch->failures >= lv->max_failures &&
	    !job_is_final(j->job.state))
		job_fail(lv, j, now, job_failed,
			 "checking batches %llu-%llu failed %u times; last failure: %.900s",
			 (unsigned long long)ch->first,
			 (unsigned long long)(ch->first + ch->count - 1), ch->failures, reason);
}

/* Ends live lease l in state s: off the heap, its batches given back unless done. A fault (an
 * expiry, or a fail saying so) counts against the batches; at the limit their job fails, naming
 * them and reason, and *job_failed is set. */
static enum tally_err lease_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
				int fault, const char *reason, int *job_failed)
{
	struct ljob *j = l->job;
	const struct lease *le = &l->lease;
	int alone = le->batch_count == 1;
	unsigned failures = le->failures + (fault ? 1 : 0);
	unsigned strikes = le->strikes + (fault && alone ? 1 : 0);
	int poison = fault && alone && lv->max_failures && strikes >= lv->max_failures;
	enum tally_err rc = TALLY_OK;

	if (le->check_of) {
		check_lease_end(lv, l, s, now, fault, reason, job_failed);
		return TALLY_OK;
	}
	if (s != LEASE_DONE && !poison)
		rc = range_give_back(j, le->first_batch, le->batch_count, failures, strikes);
	if (rc)
		return rc;
	j->job.batches_leased -= le->batch_count;
	lease_finish(lv, l, s, now);
	job_touch(lv, j);
	if (poison)
		job_fail(lv, j, now, job_failed, "batch %llu failed %u times; last failure: %.900s",
			 (unsigned long long)le->first_batch, strikes, reason);
	return TALLY_OK;
}

int live_reap(struct live *lv, int64_t now, int *failed_jobs)
{
	int n = 0, failed;
	if (failed_jobs)
		*failed_jobs = 0;
	while (lv->nheap && lv->heap[0]->lease.expires_at <= now) {
		failed = 0;
		if (lease_end(lv, lv->heap[0], LEASE_EXPIRED, now, 1,
			      "lease expired (its worker was lost, or too slow to heartbeat)", &failed))
			break; /* out of memory: try again at the next reap */
		n++;
		if (failed_jobs)
			*failed_jobs += failed;
	}
	return n;
}

/* --- verification -------------------------------------------------------------------------- */

static struct lquar *quar_find(const struct live *lv, const char *worker)
{
	struct lquar *q = lv->quar;
	while (q && strcmp(q->worker, worker))
		q = q->next;
	return q;
}

const char *live_quarantined(const struct live *lv, const char *worker)
{
	const struct lquar *q = quar_find(lv, worker);
	return q ? q->reason : NULL;
}

static struct lquar *quar_add(struct live *lv, const char *worker, const char *reason, int64_t at,
			      int64_t job_id)
{
	struct lquar *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	snprintf(q->worker, sizeof q->worker, "%s", worker);
	snprintf(q->reason, sizeof q->reason, "%s", reason);
	q->at = at;
	q->job_id = job_id;
	q->next = lv->quar;
	lv->quar = q;
	return q;
}

/* Quarantines worker, caught by a check of job j: no more leases, its live ones taken back (no
 * fault of their batches), and its done ones queued for the coordinator to discard.
 * TALLY_ENOMEM leaves the state half changed: the caller must have it read back from the
 * store. */
static enum tally_err quarantine(struct live *lv, struct ljob *j, const char *worker,
				 const char *reason, int64_t now)
{
	struct lquar *q;
	size_t used = strlen(j->job.quarantined), n = strlen(worker);
	int found;

	if (quar_find(lv, worker))
		return TALLY_OK;
	if (!(q = quar_add(lv, worker, reason, now, j->job.id)))
		return TALLY_ENOMEM;
	q->dirty = 1;
	q->suspect = 1;
	lv->nsuspects++;
	if (used + n + 2 <= sizeof j->job.quarantined) /* names kept while they fit */
		snprintf(j->job.quarantined + used, sizeof j->job.quarantined - used, "%s%s",
			 used ? "\n" : "", worker);
	job_touch(lv, j);
	do { /* lease_end reorders the heap: start over after each */
		found = 0;
		for (size_t i = 0; i < lv->nheap; i++) {
			if (strcmp(lv->heap[i]->lease.worker, worker))
				continue;
			if (lease_end(lv, lv->heap[i], LEASE_FAILED, now, 0, "worker quarantined",
				      NULL))
				return TALLY_ENOMEM;
			found = 1;
			break;
		}
	} while (found);
	return TALLY_OK;
}

/* Ends job j early: its counts become those of batches [0, batches), whose result reached the
 * target; leases still out are cancelled and later batches' counts dropped. */
static void job_stop(struct live *lv, struct ljob *j, const uint64_t *counts, uint64_t batches,
		     int64_t now)
{
	memcpy(j->job.counts, counts, sizeof j->job.counts);
	j->job.batches_done = batches;
	j->job.samples_done = kernel_range_samples(j->job.spec.samples, j->job.spec.batch_size, 0,
						   batches);
	job_end(lv, j, JOB_SUCCEEDED, now);
}

/* Evaluates the prefixes of job j (with a target_stderr) that have become complete, in order,
 * and stops it at the first whose result's stderr reaches the target. The job's last batch ends
 * no prefix: a job that gets there simply finishes. Returns 1 when it stopped. */
static int job_stop_eval(struct live *lv, struct ljob *j, int64_t now)
{
	uint64_t total = j->job.batches_total;

	if (!j->seg || j->job.state != JOB_RUNNING)
		return 0;
	while (j->seg_next + 1 < JOB_STOP_SEGMENTS) {
		uint64_t lo = job_stop_boundary(j->seg_next), hi = job_stop_boundary(j->seg_next + 1);
		uint64_t sum[KERNEL_MAX_KEYS] = { 0 };
		json_t *r, *e;
		int stop;

		if (hi >= total || j->seg[j->seg_next].done < hi - lo)
			return 0;
		j->seg_next++;
		for (size_t i = 0; i < j->seg_next; i++)
			for (size_t k = 0; k < KERNEL_MAX_KEYS; k++)
				sum[k] += j->seg[i].counts[k];
		/* A prefix too small to estimate from, or whose estimate is degenerate (a stderr
		 * of 0: every sample in, or none), never stops a job. */
		if (kernel_range_samples(j->job.spec.samples, j->job.spec.batch_size, 0, hi) <
		    LIVE_STOP_MIN_SAMPLES)
			continue;
		r = kernel_result(j->job.spec.kernel, &j->job.keys, sum);
		e = json_object_get(r, "stderr");
		stop = json_is_number(e) && json_number_value(e) > 0 &&
		       json_number_value(e) <= j->job.spec.target_stderr;
		json_decref(r);
		if (stop) {
			job_stop(lv, j, sum, hi, now);
			return 1;
		}
	}
	return 0;
}

/* Succeeds job j when all its batches are done and checked, unless quarantined workers' counts
 * may still be in it. Returns 1 when it did. */
static int job_settle(struct live *lv, struct ljob *j, int64_t now)
{
	if (lv->nsuspects || j->job.state != JOB_RUNNING ||
	    j->job.batches_done != j->job.batches_total || j->job.checks_pending)
		return 0;
	j->job.state = JOB_SUCCEEDED;
	j->job.finished_at = now;
	job_touch(lv, j);
	return 1;
}

/* Adds check lease l's counts to its check ch as one more opinion. When two opinions agree the
 * check is settled and every worker that disagreed is quarantined; while none agree, the check
 * waits for another worker, up to LIVE_OPINIONS_MAX opinions, past which the job fails.
 * TALLY_ENOMEM as quarantine(). */
static enum tally_err check_opinion(struct live *lv, struct ljob *j, struct lcheck *ch,
				    const struct lease *l, const uint64_t *counts, int64_t now)
{
	enum tally_err rc = TALLY_OK;
	size_t best = 0, agree = 0;
	char reason[LIVE_QUARANTINE_REASON_MAX], names[3 * WORKER_NAME_MAX + 16] = "";

	opinion_set(&ch->op[ch->nop++], l, counts);
	for (size_t i = 0; i < ch->nop; i++) {
		size_t a = 0;
		for (size_t k = 0; k < ch->nop; k++)
			a += same_counts(&ch->op[i], &ch->op[k]);
		if (a > agree) {
			agree = a;
			best = i;
		}
	}
	if (agree < ch->nop && !ch->disputed) {
		ch->disputed = 1;
		j->job.mismatches++;
		job_touch(lv, j);
	}
	if (agree < 2) {
		if (ch->nop < LIVE_OPINIONS_MAX) {
			j->checks_open++; /* one more worker must say */
			return TALLY_OK;
		}
		job_fail(lv, j, now, NULL,
			 "checking batches %llu-%llu: %zu workers gave %zu different counts",
			 (unsigned long long)ch->first,
			 (unsigned long long)(ch->first + ch->count - 1), ch->nop, ch->nop);
		return TALLY_OK;
	}
	for (size_t i = 0, n = 0; i < ch->nop; i++) {
		size_t used = strlen(names);
		if (!same_counts(&ch->op[i], &ch->op[best]) || n == 3)
			continue;
		snprintf(names + used, sizeof names - used, "%s'%s'", n++ ? ", " : "",
			 ch->op[i].worker);
	}
	snprintf(reason, sizeof reason,
		 "job %lld, batches %llu-%llu: its counts differed from those of %s",
		 (long long)j->job.id, (unsigned long long)ch->first,
		 (unsigned long long)(ch->first + ch->count - 1), names);
	ch->state = same_counts(&ch->op[0], &ch->op[best]) ? CHECK_PASSED : CHECK_REFUTED;
	if (ch->state == CHECK_PASSED)
		j->job.checks_passed++;
	j->job.checks_pending--;
	check_unlink(j, ch);
	check_touch(lv, ch);
	job_touch(lv, j);
	for (size_t i = 0; i < ch->nop && !rc; i++)
		if (!same_counts(&ch->op[i], &ch->op[best]))
			rc = quarantine(lv, j, ch->op[i].worker, reason, now);
	return rc;
}

void live_each_quarantined(const struct live *lv,
			   void (*each)(void *ctx, const struct live_quarantine_row *row), void *ctx)
{
	for (const struct lquar *q = lv->quar; q; q = q->next) {
		struct live_quarantine_row row = { q->worker, q->reason, q->at, q->job_id };
		each(ctx, &row);
	}
}

int live_take_suspect(struct live *lv, char *name)
{
	for (struct lquar *q = lv->quar; q; q = q->next) {
		if (!q->suspect)
			continue;
		q->suspect = 0;
		lv->nsuspects--;
		snprintf(name, WORKER_NAME_MAX, "%s", q->worker);
		return 1;
	}
	return 0;
}

/* Drops pending check ch of j (its checked lease was discarded): its live check lease, if any,
 * is cancelled. */
static void check_drop(struct live *lv, struct ljob *j, struct lcheck *ch, int64_t now)
{
	struct llease *cl = ch->leased ? lease_find(lv, ch->leased) : NULL;

	check_unlink(j, ch);
	if (cl && cl->lease.state == LEASE_ACTIVE)
		lease_end(lv, cl, LEASE_CANCELLED, now, 0, "", NULL); /* its check is gone: no-op */
	else
		j->checks_open--;
	ch->state = CHECK_REFUTED;
	j->job.checks_pending--;
	check_touch(lv, ch);
}

enum tally_err live_discard(struct live *lv, const struct lease *stored, const uint64_t *counts,
			    int64_t now)
{
	struct ljob *j = job_find(lv, stored->job_id);
	struct llease *l;
	struct lcheck *ch;
	struct job *job;
	int fresh = 0, kept = 0;
	enum tally_err rc = TALLY_OK;

	if (!j || job_is_final(j->job.state) || stored->state != LEASE_DONE)
		return TALLY_OK;
	job = &j->job;
	if (!(l = lease_find(lv, stored->id))) {
		if (!(l = calloc(1, sizeof *l)))
			return TALLY_ENOMEM;
		l->lease = *stored;
		l->lease.spec = job->spec;
		l->job = j;
		l->heap = SIZE_MAX;
		if (hash_insert(lv, l)) {
			free(l);
			return TALLY_ENOMEM;
		}
		fresh = 1;
	} else if (l->lease.state != LEASE_DONE) {
		return TALLY_OK;
	}
	if (!stored->check_of) {
		for (size_t i = 0; i < job->keys.n; i++)
			if (counts[i] > job->counts[i])
				goto out; /* not this job's counts: leave them */
		if (stored->batch_count > job->batches_done)
			goto out;
		if ((rc = range_give_back(j, stored->first_batch, stored->batch_count, 0, 0)))
			goto out;
		for (size_t i = 0; i < job->keys.n; i++)
			job->counts[i] -= counts[i];
		seg_count(j, stored->first_batch, stored->batch_count, counts, -1);
		job->batches_done -= stored->batch_count;
		job->samples_done -= lease_samples(&l->lease); /* stored has no spec: l has */
		if ((ch = check_find(j, stored->id)))
			check_drop(lv, j, ch, now);
	} else if ((ch = check_find(j, stored->check_of))) {
		for (size_t i = 1; i < ch->nop; i++) { /* withdraw its opinion */
			if (ch->op[i].lease_id != stored->id)
				continue;
			memmove(&ch->op[i], &ch->op[i + 1], (ch->nop - i - 1) * sizeof ch->op[0]);
			ch->nop--;
			break;
		}
	}
	lease_finish(lv, l, LEASE_DISCARDED, now);
	job_touch(lv, j);
	kept = 1;
out:
	if (fresh && !kept) {
		hash_remove(lv, l);
		free(l);
	}
	return rc;
}

int64_t live_oldest_lease(const struct live *lv)
{
	int64_t min = 0;
	for (const struct ljob *j = lv->jobs; j; j = j->next)
		if (!job_is_final(j->job.state) && j->job.first_lease_id &&
		    (!min || j->job.first_lease_id < min))
			min = j->job.first_lease_id;
	return min;
}

int live_settle(struct live *lv, int64_t now)
{
	int n = 0;
	for (struct ljob *j = lv->jobs; j; j = j->next)
		n += job_stop_eval(lv, j, now) || job_settle(lv, j, now);
	return n;
}

enum tally_err live_load_check(struct live *lv, const struct lease *checked,
			       const uint64_t *counts)
{
	struct ljob *j = job_find(lv, checked->job_id);
	if (!j)
		return TALLY_OK;
	return check_add(j, checked, counts) ? TALLY_OK : TALLY_ENOMEM;
}

enum tally_err live_load_opinion(struct live *lv, const struct lease *check,
				 const uint64_t *counts)
{
	struct ljob *j = job_find(lv, check->job_id);
	struct lcheck *ch = j ? check_find(j, check->check_of) : NULL;

	if (!ch || ch->nop == LIVE_OPINIONS_MAX)
		return TALLY_OK;
	opinion_set(&ch->op[ch->nop++], check, counts);
	if (!same_counts(&ch->op[0], &ch->op[ch->nop - 1]))
		ch->disputed = 1; /* counted in the job's mismatches already */
	return TALLY_OK;
}

enum tally_err live_load_quarantine(struct live *lv, const char *worker, const char *reason,
				    int64_t at)
{
	return quar_add(lv, worker, reason, at, 0) ? TALLY_OK : TALLY_ENOMEM;
}

/* Returns 1 when a worker offering kernels (each "name" or "name@version") can compute j's
 * batches, and sets *version to the version it offers (0: not said). */
static int kernel_wanted(const struct ljob *j, const char *const *kernels, size_t n,
			 unsigned *version)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (!kernel_offer_is(kernels[i], j->job.spec.kernel->name, &v))
			continue;
		if (v && j->job.spec.kernel_version && v != j->job.spec.kernel_version)
			continue; /* counts of another version are other numbers */
		*version = v;
		return 1;
	}
	return 0;
}

/* Returns 1 when id is one of skip[0..n). */
static int skipped(const int64_t *skip, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (skip[i] == id)
			return 1;
	return 0;
}

enum tally_err live_acquire(struct live *lv, const char *worker, const char *const *kernels,
			    size_t nkernels, uint64_t max_batches, const int64_t *skip,
			    size_t nskip, int64_t now, int64_t ttl_ms, live_size_fn size, void *ctx,
			    struct lease *out)
{
	struct ljob *j;
	struct llease *l;
	struct lcheck *ch = NULL;
	uint64_t remaining = 0, first, take;
	unsigned version = 0;
	enum tally_err rc;

	if (quar_find(lv, worker))
		return TALLY_EFORBIDDEN;
	for (j = lv->jobs; j; j = j->next) {
		if (job_is_final(j->job.state) || !kernel_wanted(j, kernels, nkernels, &version) ||
		    skipped(skip, nskip, j->job.id))
			continue;
		if (j->checks_open && (ch = check_for(j, worker, max_batches)))
			break;
		remaining = j->job.batches_total - j->job.batches_done - j->job.batches_leased;
		if (remaining)
			break;
	}
	if (!j)
		return TALLY_ENOTFOUND;
	if (lv->seq_next >= lv->seq_limit)
		return TALLY_ETOOBIG;
	if (!(l = calloc(1, sizeof *l)))
		return TALLY_ENOMEM;
	if (ch) {
		/* The checked lease's batches, all of them: the counts compared must cover the same. */
		first = ch->first;
		take = ch->count;
		l->lease.check_of = ch->lease_id;
	} else {
		take = size(ctx, &j->job, remaining);
		if (take < 1)
			take = 1;
		if (take > remaining)
			take = remaining;
		if (j->nfree) {
			first = j->free[0].first;
			if (take > j->free[0].count)
				take = j->free[0].count;
			if (j->free[0].failures) {
				/* Halved by each failure, down to one batch, which a failure then names. */
				unsigned f = j->free[0].failures;
				uint64_t cap = f < 64 ? j->free[0].count >> f : 0;
				if (take > cap)
					take = cap ? cap : 1;
			}
			l->lease.failures = j->free[0].failures;
			l->lease.strikes = j->free[0].strikes;
		} else {
			/* Nothing given back: all pending batches are fresh, and take <= remaining. */
			first = j->next_batch;
		}
	}
	if (!ch && j->seg) {
		/* No lease straddles the boundary of an early-stopping prefix. */
		uint64_t end = job_stop_boundary(job_stop_segment(first) + 1);
		if (take > end - first)
			take = end - first;
	}
	l->lease.id = (int64_t)((lv->seq_next << LIVE_ID_RANDOM_BITS) |
				(rng_splitmix64(&lv->rnd) & ((1u << LIVE_ID_RANDOM_BITS) - 1)));
	if (!j->job.spec.kernel_version && version) {
		/* A kernel known here by name only: the job is computed with the version of the
		 * first worker that takes some of it, and only workers with that one after. */
		j->job.spec.kernel_version = version;
		job_touch(lv, j);
	}
	l->lease.job_id = j->job.id;
	l->lease.spec = j->job.spec;
	l->lease.first_batch = first;
	l->lease.batch_count = take;
	l->lease.state = LEASE_ACTIVE;
	l->lease.granted_at = now;
	l->lease.expires_at = now + ttl_ms;
	strncpy(l->lease.worker, worker, sizeof l->lease.worker - 1);
	l->job = j;
	if ((rc = lease_add(lv, l))) {
		free(l);
		return rc;
	}
	lv->seq_next++;
	if (ch) {
		ch->leased = l->lease.id;
		j->checks_open--;
	} else if (j->nfree) {
		if (take == j->free[0].count) {
			memmove(&j->free[0], &j->free[1], (j->nfree - 1) * sizeof *j->free);
			j->nfree--;
		} else {
			j->free[0].first += take;
			j->free[0].count -= take;
		}
		j->ranges_changed = 1;
	} else {
		j->next_batch += take;
	}
	if (!ch)
		j->job.batches_leased += take;
	if (!j->job.first_lease_id)
		j->job.first_lease_id = l->lease.id;
	if (j->job.state == JOB_QUEUED)
		j->job.state = JOB_RUNNING;
	if (!j->job.started_at)
		j->job.started_at = now;
	job_touch(lv, j);
	lease_touch(lv, l);
	*out = l->lease;
	return TALLY_OK;
}

enum tally_err live_heartbeat(struct live *lv, int64_t id, int64_t now, int64_t ttl_ms,
			      struct lease *out)
{
	struct llease *l = lease_find(lv, id);
	if (!l)
		return TALLY_ENOTFOUND;
	*out = l->lease;
	if (l->lease.state != LEASE_ACTIVE)
		return TALLY_ELOST;
	l->lease.expires_at = now + ttl_ms;
	heap_fix(lv, l->heap);
	lease_touch(lv, l);
	*out = l->lease;
	return TALLY_OK;
}

/* Adds b to *a unless the sum would pass INT64_MAX (the store's integer). Returns 0, or -1. */
static int add_checked(uint64_t *a, uint64_t b)
{
	if (b > (uint64_t)INT64_MAX - *a)
		return -1;
	*a += b;
	return 0;
}

enum tally_err live_complete(struct live *lv, int64_t id, const uint64_t *counts,
			     const struct count_keys *keys, int64_t now, int *finished)
{
	struct llease *l = lease_find(lv, id);
	uint64_t sum[KERNEL_MAX_KEYS];
	struct job *job;

	*finished = 0;
	if (!l)
		return TALLY_ENOTFOUND;
	if (l->lease.state != LEASE_ACTIVE || quar_find(lv, l->lease.worker))
		return TALLY_ELOST; /* (a quarantine takes its worker's leases back) */
	job = &l->job->job;
	if (keys && keys->n > job->keys.n) {
		/* An open kernel's batches named new counts: the job's names grow. */
		job->keys = *keys;
		job_touch(lv, l->job);
	}
	if (l->lease.check_of) {
		struct lcheck *ch = check_find(l->job, l->lease.check_of);
		int waiting = ch && ch->leased == l->lease.id; /* not settled or dropped meanwhile */
		memcpy(l->counts, counts, sizeof l->counts);
		l->has_counts = 1;
		(void)lease_end(lv, l, LEASE_DONE, now, 0, "", NULL); /* a check lease: can't fail */
		if (waiting && check_opinion(lv, l->job, ch, &l->lease, counts, now))
			return TALLY_ENOMEM;
		*finished = job_is_final(job->state) || job_settle(lv, l->job, now);
		return TALLY_OK;
	}
	memcpy(sum, job->counts, sizeof sum);
	for (size_t i = 0; i < job->keys.n; i++)
		if (add_checked(&sum[i], counts[i]))
			return TALLY_ECOUNTS; /* refused: the lease stays live, with no counts */
	memcpy(l->counts, counts, sizeof l->counts);
	l->has_counts = 1;
	if (lease_end(lv, l, LEASE_DONE, now, 0, "", NULL))
		return TALLY_ENOMEM; /* not reached: a done lease gives nothing back */
	memcpy(job->counts, sum, sizeof sum);
	seg_count(l->job, l->lease.first_batch, l->lease.batch_count, counts, 1);
	job->batches_done += l->lease.batch_count;
	job->samples_done += lease_samples(&l->lease);
	if (job->spec.verify > 0 &&
	    (double)(rng_splitmix64(&lv->rnd) >> 11) * 0x1.0p-53 < job->spec.verify) {
		/* Out of memory, the lease goes unchecked: checks are a sample. */
		struct lcheck *ch = check_add(l->job, &l->lease, counts);
		if (ch)
			check_touch(lv, ch);
	}
	*finished = job_stop_eval(lv, l->job, now) || job_settle(lv, l->job, now);
	return TALLY_OK;
}

enum tally_err live_fail(struct live *lv, int64_t id, const char *reason, int fault, int64_t now,
			 int *job_failed)
{
	struct llease *l = lease_find(lv, id);
	enum tally_err rc;

	if (job_failed)
		*job_failed = 0;
	if (!l)
		return TALLY_ENOTFOUND;
	if (l->lease.state != LEASE_ACTIVE)
		return TALLY_ELOST;
	if ((rc = lease_end(lv, l, LEASE_FAILED, now, fault, reason[0] ? reason : "(no reason given)",
			    job_failed)))
		return rc;
	strncpy(l->job->last_failure, reason, sizeof l->job->last_failure - 1);
	return TALLY_OK;
}

enum tally_err live_extend(struct live *lv, int64_t id, uint64_t samples,
			   const struct lease *done_last, const uint64_t *done_counts, int64_t now,
			   struct job *out)
{
	struct ljob *j = job_find(lv, id);
	struct job *job;
	uint64_t last;
	enum tally_err rc;

	if (!j)
		return TALLY_ENOTFOUND;
	job = &j->job;
	*out = *job;
	if (job->state == JOB_FAILED || job->state == JOB_CANCELLED)
		return TALLY_ECONFLICT;
	if (samples <= job->spec.samples)
		return TALLY_EINVAL;
	last = job->batches_total - 1;
	if (job->state == JOB_SUCCEEDED && j->seg && job->batches_done < job->batches_total) {
		/* It stopped early: a job of the new size stops at the same prefix. */
		job->spec.samples = samples;
		job->batches_total = kernel_batches(samples, job->spec.batch_size);
		job_touch(lv, j);
		*out = *job;
		return TALLY_OK;
	}
	if (job->state == JOB_SUCCEEDED) {
		job->state = JOB_RUNNING;
		job->finished_at = 0;
	}
	if (job->spec.samples % job->spec.batch_size) {
		/* The last batch was short: it is computed again in full. A lease on it is taken
		 * back (its worker's counts would be the short batch's); done, its counts come out. */
		for (size_t i = 0; i < lv->nheap; i++) {
			struct llease *l = lv->heap[i];
			if (l->job == j && !l->lease.check_of && l->lease.first_batch <= last &&
			    last < l->lease.first_batch + l->lease.batch_count) {
				if ((rc = lease_end(lv, l, LEASE_CANCELLED, now, 0, "", NULL)))
					return rc;
				break;
			}
		}
		if (done_last && (rc = live_discard(lv, done_last, done_counts, now)))
			return rc;
	}
	job->spec.samples = samples;
	job->batches_total = kernel_batches(samples, job->spec.batch_size);
	job_touch(lv, j);
	job_stop_eval(lv, j, now);
	*out = *job;
	return TALLY_OK;
}

enum tally_err live_cancel(struct live *lv, int64_t id, int64_t now, struct job *out)
{
	struct ljob *j = job_find(lv, id);

	if (!j)
		return TALLY_ENOTFOUND;
	*out = j->job;
	if (j->job.state == JOB_SUCCEEDED || j->job.state == JOB_FAILED)
		return TALLY_ECONFLICT;
	if (j->job.state == JOB_CANCELLED)
		return TALLY_OK;
	job_end(lv, j, JOB_CANCELLED, now);
	*out = j->job;
	return TALLY_OK;
}

/* --- writing behind ------------------------------------------------------------------------- */

static int quar_dirty(const struct live *lv)
{
	for (const struct lquar *q = lv->quar; q; q = q->next)
		if (q->dirty)
			return 1;
	return 0;
}

int live_dirty(const struct live *lv)
{
	return lv->dirty_jobs || lv->dirty_leases || lv->dirty_checks || quar_dirty(lv);
}

enum tally_err live_each_dirty(struct live *lv, const struct live_writer *w)
{
	enum tally_err rc;
	for (struct ljob *j = lv->dirty_jobs; j; j = j->dnext) {
		struct live_job_row row = { &j->job, j->key, j->next_batch, j->last_failure,
					    j->free, j->nfree, j->ranges_changed };
		if ((rc = w->job(w->ctx, &row)))
			return rc;
	}
	for (struct llease *l = lv->dirty_leases; l; l = l->dnext) {
		struct live_lease_row row = { &l->lease, l->finished_at,
					      l->has_counts ? l->counts : NULL };
		if ((rc = w->lease(w->ctx, &row)))
			return rc;
	}
	for (struct lcheck *ch = lv->dirty_checks; ch; ch = ch->dnext) {
		struct live_check_row row = { ch->lease_id, ch->state };
		if ((rc = w->check(w->ctx, &row)))
			return rc;
	}
	for (struct lquar *q = lv->quar; q; q = q->next) {
		struct live_quarantine_row row = { q->worker, q->reason, q->at, q->job_id };
		if (q->dirty && (rc = w->quarantine(w->ctx, &row)))
			return rc;
	}
	return TALLY_OK;
}

void live_written(struct live *lv)
{
	struct llease *l, *ln;
	struct ljob *j, *jn;
	struct lcheck *ch, *cn;

	for (struct lquar *q = lv->quar; q; q = q->next)
		q->dirty = 0;
	for (ch = lv->dirty_checks; ch; ch = cn) { /* before the jobs, which free pending ones */
		cn = ch->dnext;
		ch->dirty = 0;
		ch->dnext = NULL;
		if (ch->state != CHECK_PENDING)
			free(ch);
	}
	lv->dirty_checks = NULL;
	for (l = lv->dirty_leases; l; l = ln) {
		ln = l->dnext;
		l->dirty = 0;
		l->dnext = NULL;
		if (l->lease.state != LEASE_ACTIVE) {
			hash_remove(lv, l);
			free(l);
		}
	}
	lv->dirty_leases = NULL;
	lv->dirty_leases_tail = &lv->dirty_leases;
	for (j = lv->dirty_jobs; j; j = jn) {
		jn = j->dnext;
		j->dirty = 0;
		j->ranges_changed = 0;
		j->dnext = NULL;
		if (job_is_final(j->job.state)) {
			job_unlink(lv, j);
			job_free(j);
		}
	}
	lv->dirty_jobs = NULL;
	lv->dirty_jobs_tail = &lv->dirty_jobs;
}

void live_totals(const struct live *lv, struct live_totals *out)
{
	memset(out, 0, sizeof *out);
	out->leases_active = lv->nheap;
	for (const struct ljob *j = lv->jobs; j; j = j->next) {
		if (job_is_final(j->job.state))
			continue;
		out->pending_batches +=
			j->job.batches_total - j->job.batches_done - j->job.batches_leased;
		out->remaining_samples += j->job.spec.samples - j->job.samples_done;
		out->checks_pending += j->job.checks_pending;
	}
	for (const struct lquar *q = lv->quar; q; q = q->next)
		out->quarantined++;
}

size_t live_jobs_count(const struct live *lv)
{
	return lv->njobs;
}

size_t live_leases_count(const struct live *lv)
{
	return lv->nleases;
}
