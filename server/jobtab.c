/* The jobs in memory (jobtab.h): a list by id, hash tables by id and key, the lists of changed
 * jobs and of jobs to reschedule, the scheduler over them (fair.c), and each job's batch
 * bookkeeping over its free ranges (ranges.c) and prefix segments (stop.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "hash.h"
#include "jobtab.h"
#include "kernel.h"

/* An unfinished job costs at most 2 KiB of memory besides its params (the shared-fleet
 * contract): the struct, with room left for its allocation's overhead and its places in the
 * hash tables and the scheduler's heaps. bench/run.py --only queue measures the whole. */
_Static_assert(sizeof(struct ljob) <= 1792, "struct ljob outgrew its 2 KiB budget");

/* The job whose member `member` node is. */
#define LJOB_OF(node, member) \
	((struct ljob *)(void *)((char *)(node) - offsetof(struct ljob, member)))

void jobtab_init(struct jobtab *t)
{
	t->head = t->tail = NULL;
	t->n = 0;
	htab_init(&t->byid);
	htab_init(&t->bykey);
	fair_init(&t->fair);
	owners_init(&t->owners);
	t->dirty = NULL;
	t->dirty_tail = &t->dirty;
	t->resched = NULL;
	t->next_id = 1;
}

static void job_free(struct ljob *j)
{
	struct verify_check *ch, *cn;
	stop_free(j->stop);
	for (ch = j->checks; ch; ch = cn) {
		cn = ch->next;
		free(ch);
	}
	ranges_release(&j->free);
	free(j->params);
	free(j->error);
	kernel_drop(j->job.spec.kernel);
	free(j);
}

void jobtab_clear(struct jobtab *t)
{
	struct ljob *j, *jn;
	int64_t next_id = t->next_id;
	for (j = t->head; j; j = jn) {
		jn = j->next;
		job_free(j);
	}
	htab_release(&t->byid);
	htab_release(&t->bykey);
	fair_release(&t->fair);
	owners_release(&t->owners);
	jobtab_init(t);
	t->next_id = next_id;
}

/* Returns a new, empty job for spec with its own copy of spec's params (and its prefix
 * segments when it stops early), or NULL. */
static struct ljob *job_new(const struct job_spec *spec)
{
	struct ljob *j = t_calloc(1, sizeof *j);
	if (!j)
		return NULL;
	if (!(j->params = t_strdup(job_params(spec))) ||
	    (spec->target_stderr > 0 && !(j->stop = stop_new()))) {
		job_free(j);
		return NULL;
	}
	return j;
}

/* Sets j's spec: its params its own copy's, its kernel held (a kernel known by name only made
 * of the placeholder's name). Returns TALLY_OK, or TALLY_ENOMEM with j's kernel NULL. */
static enum tally_err job_set_spec(struct ljob *j, const struct job_spec *spec)
{
	const struct kernel *k = spec->kernel;

	j->job.spec = *spec;
	j->job.spec.params = j->params;
	if (k == kernel_placeholder())
		k = kernel_named(spec->kernel_name);
	else
		kernel_hold(k);
	j->job.spec.kernel = k;
	return k ? TALLY_OK : TALLY_ENOMEM;
}

static uint64_t id_hash(int64_t id)
{
	return htab_hash_int((uint64_t)id);
}

/* Adds j (its id, key and spec set) to the list, the tables and the scheduler, and has it
 * scheduled. Returns TALLY_OK, or TALLY_ENOMEM with t unchanged (the caller frees j). */
static enum tally_err job_link(struct jobtab *t, struct ljob *j)
{
	if (owners_ref(&t->owners, j->job.spec.owner, &j->owner))
		return TALLY_ENOMEM;
	if (htab_reserve(&t->byid, t->n + 1) ||
	    (j->key[0] && htab_reserve(&t->bykey, t->bykey.n + 1)) ||
	    fair_add(&t->fair, &j->fair, j->job.id, j->job.spec.priority, j->job.spec.owner)) {
		owners_unref(&t->owners, j->owner);
		return TALLY_ENOMEM;
	}
	j->tallied = j->job.state;
	owners_count(&t->owners, j->owner, j->tallied, 1);
	htab_insert(&t->byid, &j->byid, id_hash(j->job.id));
	if (j->key[0])
		htab_insert(&t->bykey, &j->bykey, hash_str(j->key));
	j->prev = t->tail;
	if (t->tail)
		t->tail->next = j;
	else
		t->head = j;
	t->tail = j;
	t->n++;
	jobtab_resched(t, j);
	return TALLY_OK;
}

/* Takes j (not on the list to reschedule) out of the list, the tables and the scheduler. */
static void job_unlink(struct jobtab *t, struct ljob *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		t->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		t->tail = j->prev;
	htab_remove(&t->byid, &j->byid);
	if (j->key[0])
		htab_remove(&t->bykey, &j->bykey);
	fair_remove(&t->fair, &j->fair);
	owners_count(&t->owners, j->owner, j->tallied, -1);
	owners_unref(&t->owners, j->owner);
	t->n--;
}

struct ljob *jobtab_submit(struct jobtab *t, const struct job_spec *spec, const char *key,
			   int64_t now)
{
	struct ljob *j = job_new(spec);
	if (!j)
		return NULL;
	if (key)
		snprintf(j->key, sizeof j->key, "%s", key);
	if (job_set_spec(j, spec)) {
		job_free(j);
		return NULL;
	}
	j->job.id = t->next_id++;
	j->job.spec.kernel_version = spec->kernel->version; /* the version it is computed with */
	kernel_keys(spec->kernel, &j->job.keys);
	j->job.state = JOB_QUEUED;
	j->job.batches_total = job_batches(spec->samples, spec->batch_size);
	j->job.created_at = now;
	if (job_link(t, j)) {
		job_free(j);
		t->next_id--;
		return NULL;
	}
	jobtab_touch(t, j);
	return j;
}

enum tally_err jobtab_load(struct jobtab *t, const struct job *job, uint64_t next_batch,
			   const char *last_failure)
{
	struct ljob *j = job_new(&job->spec);
	if (!j)
		return TALLY_ENOMEM;
	j->job = *job;
	j->job.error = NULL;
	if (job_set_spec(j, &job->spec) ||
	    (job_error(job)[0] && ljob_set_error(j, job_error(job)))) {
		job_free(j);
		return TALLY_ENOMEM;
	}
	j->job.checks_pending = 0; /* counted again as the pending checks load */
	if (!j->job.first_lease_id && next_batch)
		j->job.first_lease_id = 1; /* leased before the store kept it: any lease may be its */
	j->next_batch = next_batch;
	if (last_failure)
		snprintf(j->last_failure, sizeof j->last_failure, "%s", last_failure);
	if (job_link(t, j)) {
		job_free(j);
		return TALLY_ENOMEM;
	}
	jobtab_set_next_id(t, job->id + 1);
	return TALLY_OK;
}

void jobtab_set_next_id(struct jobtab *t, int64_t id)
{
	if (id > t->next_id)
		t->next_id = id;
}

struct ljob *jobtab_find(const struct jobtab *t, int64_t id)
{
	for (struct htab_node *e = htab_first(&t->byid, id_hash(id)); e; e = htab_next(e))
		if (LJOB_OF(e, byid)->job.id == id)
			return LJOB_OF(e, byid);
	return NULL;
}

struct ljob *jobtab_by_key(const struct jobtab *t, const char *key)
{
	if (!key[0])
		return NULL;
	for (struct htab_node *e = htab_first(&t->bykey, hash_str(key)); e; e = htab_next(e))
		if (!strcmp(LJOB_OF(e, bykey)->key, key))
			return LJOB_OF(e, bykey);
	return NULL;
}

uint64_t jobtab_unfinished(const struct jobtab *t, const char *owner)
{
	return owners_unfinished(&t->owners, owner);
}

uint64_t jobtab_unfinished_total(const struct jobtab *t)
{
	return owners_total(&t->owners);
}

int64_t jobtab_oldest_lease(const struct jobtab *t)
{
	int64_t min = 0;
	for (const struct ljob *j = t->head; j; j = j->next)
		if (!job_is_final(j->job.state) && j->job.first_lease_id &&
		    (!min || j->job.first_lease_id < min))
			min = j->job.first_lease_id;
	return min;
}

int64_t jobtab_next_stopping(const struct jobtab *t, int64_t after)
{
	for (const struct ljob *j = t->head; j; j = j->next)
		if (j->job.id > after && j->stop && !job_is_final(j->job.state))
			return j->job.id;
	return 0;
}

void jobtab_totals(const struct jobtab *t, uint64_t *pending_batches, uint64_t *remaining_samples,
		   uint64_t *checks_pending)
{
	for (const struct ljob *j = t->head; j; j = j->next) {
		if (job_is_final(j->job.state))
			continue;
		*pending_batches += ljob_pending(j);
		*remaining_samples += j->job.spec.samples - j->job.samples_done;
		*checks_pending += j->job.checks_pending;
	}
}

/* --- scheduling ---------------------------------------------------------------------------- */

/* 1 when j waits for a lease: unfinished, with batches pending or checks open. */
static int ljob_ready(const struct ljob *j)
{
	return !job_is_final(j->job.state) && (ljob_pending(j) || j->checks_open);
}

void jobtab_resched(struct jobtab *t, struct ljob *j)
{
	if (!j->resched) {
		j->resched = 1;
		j->rnext = t->resched;
		t->resched = j;
	}
}

/* Tells the scheduler which of the jobs touched or rescheduled since the last time are ready. */
static void resched_all(struct jobtab *t)
{
	struct ljob *j;
	while ((j = t->resched)) {
		t->resched = j->rnext;
		j->rnext = NULL;
		j->resched = 0;
		fair_set_ready(&t->fair, &j->fair, ljob_ready(j));
	}
}

struct pick {
	int (*ok)(void *ctx, struct ljob *j);
	void *ctx;
};

static int pick_ok(void *ctx, struct fair_member *m)
{
	const struct pick *p = ctx;
	return p->ok(p->ctx, LJOB_OF(m, fair));
}

struct ljob *jobtab_pick(struct jobtab *t, int (*ok)(void *ctx, struct ljob *j), void *ctx)
{
	struct pick p = { ok, ctx };
	struct fair_member *m;

	resched_all(t);
	m = fair_pick(&t->fair, pick_ok, &p);
	return m ? LJOB_OF(m, fair) : NULL;
}

void jobtab_charge(struct jobtab *t, struct ljob *j)
{
	fair_charge(&t->fair, &j->fair);
}

/* --- changes -------------------------------------------------------------------------------- */

void jobtab_touch(struct jobtab *t, struct ljob *j)
{
	if (j->tallied != j->job.state) {
		owners_count(&t->owners, j->owner, j->tallied, -1);
		owners_count(&t->owners, j->owner, j->job.state, 1);
		j->tallied = j->job.state;
	}
	jobtab_resched(t, j);
	if (!j->dirty) {
		j->dirty = 1;
		j->dnext = NULL;
		*t->dirty_tail = j;
		t->dirty_tail = &j->dnext;
	}
}

int jobtab_dirty(const struct jobtab *t)
{
	return t->dirty != NULL;
}

enum tally_err jobtab_each_dirty(const struct jobtab *t,
				 enum tally_err (*fn)(void *ctx, const struct ljob *j), void *ctx)
{
	enum tally_err rc;
	for (const struct ljob *j = t->dirty; j; j = j->dnext)
		if ((rc = fn(ctx, j)))
			return rc;
	return TALLY_OK;
}

void jobtab_written(struct jobtab *t)
{
	struct ljob *j, *jn;
	resched_all(t); /* none of the jobs freed below stays on that list */
	for (j = t->dirty; j; j = jn) {
		jn = j->dnext;
		j->dirty = 0;
		j->ranges_changed = 0;
		j->dnext = NULL;
		if (job_is_final(j->job.state)) {
			job_unlink(t, j);
			job_free(j);
		}
	}
	t->dirty = NULL;
	t->dirty_tail = &t->dirty;
}

/* --- one job's batches ---------------------------------------------------------------------- */

enum tally_err ljob_set_error(struct ljob *j, const char *text)
{
	size_t n = strnlen(text, JOB_ERROR_MAX - 1);
	char *copy = t_malloc(n + 1);
	if (!copy)
		return TALLY_ENOMEM;
	memcpy(copy, text, n);
	copy[n] = '\0';
	free(j->error);
	j->job.error = j->error = copy;
	return TALLY_OK;
}

uint64_t ljob_pending(const struct ljob *j)
{
	return j->job.batches_total - j->job.batches_done - j->job.batches_leased;
}

int ljob_wants(const struct ljob *j, const char *const *kernels, size_t n, unsigned *version)
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

struct batch_range ljob_next(const struct ljob *j, uint64_t want)
{
	struct batch_range r = { 0 };
	if (!ranges_front(&j->free, want, &r)) {
		/* Nothing given back: all pending batches are fresh, and want <= pending. */
		r.first = j->next_batch;
		r.count = want;
	}
	if (j->stop) /* no lease straddles the boundary of an early-stopping prefix */
		r.count = stop_cap(r.first, r.count);
	return r;
}

void ljob_take(struct ljob *j, uint64_t count)
{
	if (j->free.n) {
		ranges_take(&j->free, count);
		j->ranges_changed = 1;
	} else {
		j->next_batch += count;
	}
	j->job.batches_leased += count;
}

enum tally_err ljob_give_back(struct ljob *j, uint64_t first, uint64_t count, unsigned failures,
			      unsigned strikes)
{
	j->ranges_changed = 1;
	return ranges_give_back(&j->free, first, count, failures, strikes);
}

enum tally_err ljob_can_count(const struct ljob *j, const uint64_t *counts)
{
	for (size_t i = 0; i < j->job.keys.n; i++)
		if (counts[i] > (uint64_t)INT64_MAX - j->job.counts[i])
			return TALLY_ECOUNTS;
	return TALLY_OK;
}

void ljob_count(struct ljob *j, const struct lease *l, const uint64_t *counts)
{
	for (size_t i = 0; i < j->job.keys.n; i++)
		j->job.counts[i] += counts[i];
	if (j->stop)
		stop_add(j->stop, l->first_batch, l->batch_count, counts);
	j->job.batches_done += l->batch_count;
	j->job.samples_done += lease_samples(l);
}

enum tally_err ljob_uncount(struct ljob *j, const struct lease *l, const uint64_t *counts)
{
	struct job *job = &j->job;
	enum tally_err rc;

	for (size_t i = 0; i < job->keys.n; i++)
		if (counts[i] > job->counts[i])
			return TALLY_ECONFLICT;
	if (l->batch_count > job->batches_done)
		return TALLY_ECONFLICT;
	if ((rc = ljob_give_back(j, l->first_batch, l->batch_count, 0, 0)))
		return rc;
	for (size_t i = 0; i < job->keys.n; i++)
		job->counts[i] -= counts[i];
	if (j->stop)
		stop_take(j->stop, l->first_batch, l->batch_count, counts);
	job->batches_done -= l->batch_count;
	job->samples_done -= lease_samples(l);
	return TALLY_OK;
}

int ljob_stop_eval(struct ljob *j)
{
	uint64_t counts[KERNEL_MAX_KEYS], batches;

	if (!j->stop || j->job.state != JOB_RUNNING ||
	    !stop_eval(j->stop, &j->job, counts, &batches))
		return 0;
	memcpy(j->job.counts, counts, sizeof j->job.counts);
	j->job.batches_done = batches;
	j->job.samples_done = job_range_samples(j->job.spec.samples, j->job.spec.batch_size, 0,
						   batches);
	return 1;
}

struct verify_check *ljob_add_check(struct ljob *j, const struct lease *l, const uint64_t *counts)
{
	struct verify_check *ch = verify_check_add(&j->checks, l, counts);
	if (ch) {
		j->checks_open++;
		j->job.checks_pending++;
	}
	return ch;
}

void ljob_end(struct ljob *j, enum job_state state, int64_t now, struct verify *v)
{
	while (j->checks) {
		struct verify_check *ch = j->checks;
		verify_check_unlink(&j->checks, ch);
		ch->state = CHECK_DROPPED;
		verify_touch(v, ch);
	}
	j->checks_open = 0;
	j->job.checks_pending = 0;
	j->job.state = state;
	j->job.finished_at = now;
	j->job.batches_leased = 0;
	ranges_clear(&j->free);
	j->ranges_changed = 1;
}

void ljob_caught(struct ljob *j, const char *worker)
{
	size_t used = strlen(j->job.quarantined), n = strlen(worker);
	if (used + n + 2 <= sizeof j->job.quarantined) /* names kept while they fit */
		snprintf(j->job.quarantined + used, sizeof j->job.quarantined - used, "%s%s",
			 used ? "\n" : "", worker);
}
