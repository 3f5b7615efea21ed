/* Live state in memory: unfinished jobs in a list by id, live leases in a hash table by id and in
 * a min-heap by expiry, and the objects changed since the last write on two dirty lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "live.h"
#include "rng.h"

struct ljob {
	struct job job;
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

void live_clear(struct live *lv)
{
	struct ljob *j, *jn;
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
		free(j->free);
		free(j);
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

enum tally_err live_load_job(struct live *lv, const struct job *job, uint64_t next_batch,
			     const char *last_failure)
{
	struct ljob *j = calloc(1, sizeof *j);
	if (!j)
		return TALLY_ENOMEM;
	j->job = *job;
	j->next_batch = next_batch;
	if (last_failure)
		strncpy(j->last_failure, last_failure, sizeof j->last_failure - 1);
	job_append(lv, j);
	if (job->id >= lv->next_job_id)
		lv->next_job_id = job->id + 1;
	return TALLY_OK;
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
	struct ljob *j = calloc(1, sizeof *j);
	if (!j)
		return TALLY_ENOMEM;
	if (key)
		strncpy(j->key, key, sizeof j->key - 1);
	j->job.id = lv->next_job_id++;
	j->job.spec = *spec;
	j->job.spec.kernel_version = spec->kernel->version; /* the version it is computed with */
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

const struct job *live_job_by_key(const struct live *lv, const char *key)
{
	for (struct ljob *j = lv->jobs; j; j = j->next)
		if (j->key[0] && !strcmp(j->key, key))
			return &j->job;
	return NULL;
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
	if ((rc = lease_add(lv, l)))
		free(l);
	return rc;
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
 * them) and its pending batches dropped. */
static void job_end(struct live *lv, struct ljob *j, enum job_state state, int64_t now)
{
	size_t kept = 0;
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

	if (s != LEASE_DONE && !poison)
		rc = range_give_back(j, le->first_batch, le->batch_count, failures, strikes);
	if (rc)
		return rc;
	j->job.batches_leased -= le->batch_count;
	heap_remove(lv, l);
	l->lease.state = s;
	l->finished_at = now;
	lease_touch(lv, l);
	job_touch(lv, j);
	if (poison) {
		snprintf(j->job.error, sizeof j->job.error,
			 "batch %llu failed %u times; last failure: %.900s",
			 (unsigned long long)le->first_batch, strikes, reason);
		job_end(lv, j, JOB_FAILED, now);
		if (job_failed)
			*job_failed = 1;
	}
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

static int kernel_wanted(const struct ljob *j, const char *const *kernels, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kernels[i], j->job.spec.kernel->name))
			return 1;
	return 0;
}

enum tally_err live_acquire(struct live *lv, const char *worker, const char *const *kernels,
			    size_t nkernels, int64_t now, int64_t ttl_ms, live_size_fn size,
			    void *ctx, struct lease *out)
{
	struct ljob *j;
	struct llease *l;
	uint64_t remaining = 0, first, take;
	enum tally_err rc;

	for (j = lv->jobs; j; j = j->next) {
		if (job_is_final(j->job.state) || !kernel_wanted(j, kernels, nkernels))
			continue;
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
			uint64_t cap = j->free[0].failures < 64 ? j->free[0].count >> j->free[0].failures
								 : 0;
			if (take > cap)
				take = cap ? cap : 1;
		}
		l->lease.failures = j->free[0].failures;
		l->lease.strikes = j->free[0].strikes;
	} else {
		/* Nothing given back: all pending batches are fresh, and take <= remaining. */
		first = j->next_batch;
	}
	l->lease.id = (int64_t)((lv->seq_next << LIVE_ID_RANDOM_BITS) |
				(rng_splitmix64(&lv->rnd) & ((1u << LIVE_ID_RANDOM_BITS) - 1)));
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
	if (j->nfree) {
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
	j->job.batches_leased += take;
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

enum tally_err live_complete(struct live *lv, int64_t id, const uint64_t *counts, int64_t now,
			     int *finished)
{
	struct llease *l = lease_find(lv, id);
	uint64_t sum[KERNEL_MAX_KEYS];
	struct job *job;

	*finished = 0;
	if (!l)
		return TALLY_ENOTFOUND;
	if (l->lease.state != LEASE_ACTIVE)
		return TALLY_ELOST;
	job = &l->job->job;
	memcpy(sum, job->counts, sizeof sum);
	for (size_t i = 0; i < job->spec.kernel->nkeys; i++)
		if (add_checked(&sum[i], counts[i]))
			return TALLY_ECOUNTS;
	if (lease_end(lv, l, LEASE_DONE, now, 0, "", NULL))
		return TALLY_ENOMEM; /* not reached: a done lease gives nothing back */
	memcpy(job->counts, sum, sizeof sum);
	job->batches_done += l->lease.batch_count;
	job->samples_done += lease_samples(&l->lease);
	if (job->batches_done == job->batches_total) {
		job->state = JOB_SUCCEEDED;
		job->finished_at = now;
		*finished = 1;
	}
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

int live_dirty(const struct live *lv)
{
	return lv->dirty_jobs || lv->dirty_leases;
}

int live_each_dirty(struct live *lv, int (*job_fn)(void *ctx, const struct live_job_row *row),
		    int (*lease_fn)(void *ctx, const struct live_lease_row *row), void *ctx)
{
	int rc;
	for (struct ljob *j = lv->dirty_jobs; j; j = j->dnext) {
		struct live_job_row row = { &j->job, j->key, j->next_batch, j->last_failure,
					    j->free, j->nfree, j->ranges_changed };
		if ((rc = job_fn(ctx, &row)))
			return rc;
	}
	for (struct llease *l = lv->dirty_leases; l; l = l->dnext) {
		struct live_lease_row row = { &l->lease, l->finished_at };
		if ((rc = lease_fn(ctx, &row)))
			return rc;
	}
	return 0;
}

void live_written(struct live *lv)
{
	struct llease *l, *ln;
	struct ljob *j, *jn;

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
			free(j->free);
			free(j);
		}
	}
	lv->dirty_jobs = NULL;
	lv->dirty_jobs_tail = &lv->dirty_jobs;
}

size_t live_jobs_count(const struct live *lv)
{
	return lv->njobs;
}

size_t live_leases_count(const struct live *lv)
{
	return lv->nleases;
}
