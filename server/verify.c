/* Verification by recomputation, in two parts: its decisions (verify.h: opinions compared, the
 * verdict and the reason for a quarantine, the quarantined workers and the changed checks
 * kept), pure and tested alone; and their application to the live state (live.h's
 * verification functions: quarantines taking leases back, done leases discarded). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "live_internal.h"
#include "verify.h"

static void opinion_set(struct verify_opinion *o, const struct lease *l, const uint64_t *counts)
{
	memset(o, 0, sizeof *o);
	o->lease_id = l->id;
	memcpy(o->counts, counts, sizeof o->counts);
	snprintf(o->worker, sizeof o->worker, "%s", l->worker);
}

static int same_counts(const struct verify_opinion *a, const struct verify_opinion *b)
{
	return !memcmp(a->counts, b->counts, sizeof a->counts); /* unused names count 0 */
}

static int opinion_has(const struct verify_check *ch, const char *worker)
{
	for (size_t i = 0; i < ch->nop; i++)
		if (!strcmp(ch->op[i].worker, worker))
			return 1;
	return 0;
}

struct verify_check *verify_check_add(struct verify_check **list, const struct lease *l,
				      const uint64_t *counts)
{
	struct verify_check *ch = t_calloc(1, sizeof *ch);
	if (!ch)
		return NULL;
	ch->lease_id = l->id;
	ch->first = l->first_batch;
	ch->count = l->batch_count;
	opinion_set(&ch->op[0], l, counts);
	ch->nop = 1;
	ch->state = CHECK_PENDING;
	ch->next = *list;
	*list = ch;
	return ch;
}

struct verify_check *verify_check_find(struct verify_check *list, int64_t lease_id)
{
	while (list && list->lease_id != lease_id)
		list = list->next;
	return list;
}

void verify_check_unlink(struct verify_check **list, struct verify_check *ch)
{
	while (*list && *list != ch)
		list = &(*list)->next;
	if (*list)
		*list = ch->next;
	ch->next = NULL;
}

struct verify_check *verify_check_for(struct verify_check *list, const char *worker,
				      uint64_t max_batches)
{
	for (struct verify_check *ch = list; ch; ch = ch->next)
		if (!ch->leased && ch->nop < VERIFY_OPINIONS_MAX && !opinion_has(ch, worker) &&
		    (!max_batches || ch->count <= max_batches))
			return ch;
	return NULL;
}

void verify_check_opinion(struct verify_check *ch, const struct lease *l, const uint64_t *counts,
			  int64_t job_id, struct verify_verdict *out)
{
	size_t best = 0, agree = 0;
	char names[3 * WORKER_NAME_MAX + 16] = "";

	out->disputed = 0;
	out->ndissent = 0;
	out->reason[0] = '\0';
	opinion_set(&ch->op[ch->nop++], l, counts);
	for (size_t i = 0; i < ch->nop; i++) { /* the counts most opinions share, first first */
		size_t a = 0;
		for (size_t k = 0; k < ch->nop; k++)
			a += same_counts(&ch->op[i], &ch->op[k]);
		if (a > agree) {
			agree = a;
			best = i;
		}
	}
	if (agree < ch->nop && !ch->disputed)
		ch->disputed = out->disputed = 1;
	if (agree < 2) {
		out->outcome = ch->nop < VERIFY_OPINIONS_MAX ? VERIFY_WAIT : VERIFY_NO_AGREEMENT;
		return;
	}
	for (size_t i = 0, n = 0; i < ch->nop; i++) {
		size_t used = strlen(names);
		if (!same_counts(&ch->op[i], &ch->op[best]) || n == 3)
			continue;
		snprintf(names + used, sizeof names - used, "%s'%s'", n++ ? ", " : "",
			 ch->op[i].worker);
	}
	snprintf(out->reason, sizeof out->reason,
		 "job %lld, batches %llu-%llu: its counts differed from those of %s",
		 (long long)job_id, (unsigned long long)ch->first,
		 (unsigned long long)(ch->first + ch->count - 1), names);
	for (size_t i = 0; i < ch->nop; i++)
		if (!same_counts(&ch->op[i], &ch->op[best]))
			out->dissent[out->ndissent++] = i;
	ch->state = same_counts(&ch->op[0], &ch->op[best]) ? CHECK_PASSED : CHECK_REFUTED;
	out->outcome = VERIFY_SETTLED;
}

void verify_check_load_opinion(struct verify_check *ch, const struct lease *l,
			       const uint64_t *counts)
{
	if (ch->nop == VERIFY_OPINIONS_MAX)
		return;
	opinion_set(&ch->op[ch->nop++], l, counts);
	if (!same_counts(&ch->op[0], &ch->op[ch->nop - 1]))
		ch->disputed = 1;
}

void verify_check_withdraw(struct verify_check *ch, int64_t lease_id)
{
	for (size_t i = 1; i < ch->nop; i++) {
		if (ch->op[i].lease_id != lease_id)
			continue;
		memmove(&ch->op[i], &ch->op[i + 1], (ch->nop - i - 1) * sizeof ch->op[0]);
		ch->nop--;
		return;
	}
}

/* --- quarantined workers -------------------------------------------------------------------- */

void verify_clear(struct verify *v)
{
	struct verify_quar *q, *qn;
	struct verify_check *ch, *cn;

	for (ch = v->dirty; ch; ch = cn) { /* settled ones: pending ones are their job's */
		cn = ch->dnext;
		if (ch->state != CHECK_PENDING)
			free(ch);
	}
	v->dirty = NULL;
	for (q = v->quar; q; q = qn) {
		qn = q->next;
		free(q);
	}
	v->quar = NULL;
	v->nsuspects = 0;
}

static struct verify_quar *quar_find(const struct verify *v, const char *worker)
{
	struct verify_quar *q = v->quar;
	while (q && strcmp(q->worker, worker))
		q = q->next;
	return q;
}

const char *verify_quarantined(const struct verify *v, const char *worker)
{
	const struct verify_quar *q = quar_find(v, worker);
	return q ? q->reason : NULL;
}

/* Returns a new quarantined worker at the head of v's list, or NULL when out of memory. */
static struct verify_quar *quar_add(struct verify *v, const char *worker, const char *reason,
				    int64_t at, int64_t job_id)
{
	struct verify_quar *q = t_calloc(1, sizeof *q);
	if (!q)
		return NULL;
	snprintf(q->worker, sizeof q->worker, "%s", worker);
	snprintf(q->reason, sizeof q->reason, "%s", reason);
	q->at = at;
	q->job_id = job_id;
	q->next = v->quar;
	v->quar = q;
	return q;
}

enum tally_err verify_quarantine(struct verify *v, const char *worker, const char *reason,
				 int64_t at, int64_t job_id)
{
	struct verify_quar *q = quar_add(v, worker, reason, at, job_id);
	if (!q)
		return TALLY_ENOMEM;
	q->dirty = 1;
	q->suspect = 1;
	v->nsuspects++;
	return TALLY_OK;
}

enum tally_err verify_load(struct verify *v, const char *worker, const char *reason, int64_t at)
{
	return quar_add(v, worker, reason, at, 0) ? TALLY_OK : TALLY_ENOMEM;
}

int verify_take_suspect(struct verify *v, char *name)
{
	for (struct verify_quar *q = v->quar; q; q = q->next) {
		if (!q->suspect)
			continue;
		q->suspect = 0;
		v->nsuspects--;
		snprintf(name, WORKER_NAME_MAX, "%s", q->worker);
		return 1;
	}
	return 0;
}

void verify_touch(struct verify *v, struct verify_check *ch)
{
	if (!ch->dirty) {
		ch->dirty = 1;
		ch->dnext = v->dirty;
		v->dirty = ch;
	}
}

int verify_dirty(const struct verify *v)
{
	if (v->dirty)
		return 1;
	for (const struct verify_quar *q = v->quar; q; q = q->next)
		if (q->dirty)
			return 1;
	return 0;
}

enum tally_err verify_each_dirty(const struct verify *v,
				 enum tally_err (*check)(void *ctx, const struct verify_check *ch),
				 enum tally_err (*quar)(void *ctx, const struct verify_quar *q),
				 void *ctx)
{
	enum tally_err rc;
	for (const struct verify_check *ch = v->dirty; ch; ch = ch->dnext)
		if ((rc = check(ctx, ch)))
			return rc;
	for (const struct verify_quar *q = v->quar; q; q = q->next)
		if (q->dirty && (rc = quar(ctx, q)))
			return rc;
	return TALLY_OK;
}

void verify_written(struct verify *v)
{
	struct verify_check *ch, *cn;
	for (struct verify_quar *q = v->quar; q; q = q->next)
		q->dirty = 0;
	for (ch = v->dirty; ch; ch = cn) {
		cn = ch->dnext;
		ch->dirty = 0;
		ch->dnext = NULL;
		if (ch->state != CHECK_PENDING)
			free(ch);
	}
	v->dirty = NULL;
}

size_t verify_count(const struct verify *v)
{
	size_t n = 0;
	for (const struct verify_quar *q = v->quar; q; q = q->next)
		n++;
	return n;
}

/* --- applied to the live state -------------------------------------------------------------- */

const char *live_quarantined(const struct live *lv, const char *worker)
{
	return verify_quarantined(&lv->verify, worker);
}

/* Quarantines worker, caught by a check of job j: no more leases, its live ones taken back (no
 * fault of their batches), and its done ones queued for the coordinator to discard.
 * TALLY_ENOMEM leaves the state half changed: the caller must have it read back from the
 * store. */
static enum tally_err quarantine(struct live *lv, struct ljob *j, const char *worker,
				 const char *reason, int64_t now)
{
	struct llease *l;

	if (verify_quarantined(&lv->verify, worker))
		return TALLY_OK;
	if (verify_quarantine(&lv->verify, worker, reason, now, j->job.id))
		return TALLY_ENOMEM;
	ljob_caught(j, worker);
	jobtab_touch(&lv->jobs, j);
	while ((l = leasetab_live_of(&lv->leases, worker))) /* each end reorders the heap: search again */
		if (live_lease_end(lv, l, LEASE_FAILED, now, 0, "worker quarantined", NULL))
			return TALLY_ENOMEM;
	return TALLY_OK;
}

/* Ends check lease l in state s. Unless it is done (its opinion is then the caller's to add),
 * its check is open again. A fail that says the batches are at fault counts against the check,
 * and at the limit the job fails; an expiry does not: the batches were computed once already,
 * so it was its worker that died. */
void live_check_lease_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
			  int fault, const char *reason, int *job_failed)
{
	struct ljob *j = l->job;
	struct verify_check *ch = verify_check_find(j->checks, l->lease.check_of);

	live_lease_finish(lv, l, s, now);
	if (!ch || ch->leased != l->lease.id)
		return; /* its check was settled or dropped meanwhile */
	ch->leased = 0;
	if (s == LEASE_DONE)
		return;
	j->checks_open++;
	if (fault && s == LEASE_FAILED && lv->max_failures && ++ch->failures >= lv->max_failures &&
	    !job_is_final(j->job.state))
		live_job_fail(lv, j, now, job_failed,
			      "checking batches %llu-%llu failed %u times; last failure: %.900s",
			      (unsigned long long)ch->first,
			      (unsigned long long)(ch->first + ch->count - 1), ch->failures, reason);
}

enum tally_err live_check_opinion(struct live *lv, struct ljob *j, struct verify_check *ch,
				  const struct lease *l, const uint64_t *counts, int64_t now)
{
	struct verify_verdict v;
	enum tally_err rc = TALLY_OK;

	verify_check_opinion(ch, l, counts, j->job.id, &v);
	if (v.disputed) {
		j->job.mismatches++;
		jobtab_touch(&lv->jobs, j);
	}
	if (v.outcome == VERIFY_WAIT) {
		j->checks_open++; /* one more worker must say */
		return TALLY_OK;
	}
	if (v.outcome == VERIFY_NO_AGREEMENT) {
		live_job_fail(lv, j, now, NULL,
			      "checking batches %llu-%llu: %zu workers gave %zu different counts",
			      (unsigned long long)ch->first,
			      (unsigned long long)(ch->first + ch->count - 1), ch->nop, ch->nop);
		return TALLY_OK;
	}
	if (ch->state == CHECK_PASSED)
		j->job.checks_passed++;
	j->job.checks_pending--;
	verify_check_unlink(&j->checks, ch);
	verify_touch(&lv->verify, ch);
	jobtab_touch(&lv->jobs, j);
	for (size_t i = 0; i < v.ndissent && !rc; i++)
		rc = quarantine(lv, j, ch->op[v.dissent[i]].worker, v.reason, now);
	return rc;
}

void live_each_quarantined(const struct live *lv,
			   void (*each)(void *ctx, const struct live_quarantine_row *row), void *ctx)
{
	for (const struct verify_quar *q = lv->verify.quar; q; q = q->next) {
		struct live_quarantine_row row = { q->worker, q->reason, q->at, q->job_id };
		each(ctx, &row);
	}
}

int live_take_suspect(struct live *lv, char *name)
{
	return verify_take_suspect(&lv->verify, name);
}

/* Drops pending check ch of j (its checked lease was discarded): its live check lease, if any,
 * is cancelled. */
static void check_drop(struct live *lv, struct ljob *j, struct verify_check *ch, int64_t now)
{
	struct llease *cl = ch->leased ? leasetab_find(&lv->leases, ch->leased) : NULL;

	verify_check_unlink(&j->checks, ch);
	if (cl && cl->lease.state == LEASE_ACTIVE)
		(void)live_lease_end(lv, cl, LEASE_CANCELLED, now, 0, "", NULL); /* a check lease */
	else
		j->checks_open--;
	ch->state = CHECK_REFUTED;
	j->job.checks_pending--;
	verify_touch(&lv->verify, ch);
}

enum tally_err live_discard(struct live *lv, const struct lease *stored, const uint64_t *counts,
			    int64_t now)
{
	struct ljob *j = jobtab_find(&lv->jobs, stored->job_id);
	struct verify_check *ch;
	struct llease *l;
	int fresh = 0;
	enum tally_err rc = TALLY_OK;

	if (!j || job_is_final(j->job.state) || stored->state != LEASE_DONE)
		return TALLY_OK;
	if (!(l = leasetab_find(&lv->leases, stored->id))) {
		if (!(l = leasetab_add(&lv->leases, stored, &j->job.spec, j))) /* done: not live */
			return TALLY_ENOMEM;
		fresh = 1;
	} else if (l->lease.state != LEASE_DONE) {
		return TALLY_OK;
	}
	if (!stored->check_of) {
		if ((rc = ljob_uncount(j, &l->lease, counts)))
			goto fail; /* TALLY_ECONFLICT: not this job's counts: leave them */
		if ((ch = verify_check_find(j->checks, stored->id)))
			check_drop(lv, j, ch, now);
	} else if ((ch = verify_check_find(j->checks, stored->check_of))) {
		verify_check_withdraw(ch, stored->id);
	}
	live_lease_finish(lv, l, LEASE_DISCARDED, now);
	jobtab_touch(&lv->jobs, j);
	return TALLY_OK;
fail:
	if (fresh) {
		leasetab_remove(&lv->leases, l);
		free(l);
	}
	return rc == TALLY_ECONFLICT ? TALLY_OK : rc;
}

enum tally_err live_load_check(struct live *lv, const struct lease *checked,
			       const uint64_t *counts)
{
	struct ljob *j = jobtab_find(&lv->jobs, checked->job_id);
	if (!j)
		return TALLY_OK;
	jobtab_resched(&lv->jobs, j); /* a check open */
	return ljob_add_check(j, checked, counts) ? TALLY_OK : TALLY_ENOMEM;
}

enum tally_err live_load_opinion(struct live *lv, const struct lease *check,
				 const uint64_t *counts)
{
	struct ljob *j = jobtab_find(&lv->jobs, check->job_id);
	struct verify_check *ch = j ? verify_check_find(j->checks, check->check_of) : NULL;

	if (ch)
		verify_check_load_opinion(ch, check, counts);
	return TALLY_OK;
}

enum tally_err live_load_quarantine(struct live *lv, const char *worker, const char *reason,
				    int64_t at)
{
	return verify_load(&lv->verify, worker, reason, at);
}
