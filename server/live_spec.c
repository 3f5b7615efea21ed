/* Speculative execution applied to the live state (live.h: live_speculate): which live lease a
 * worker with nothing else to do gets a copy of, and how a pair of copies ends. The policy's
 * numbers are spec.h's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "live_internal.h"

/* 1 when worker may have a copy of live lease l: an ordinary lease of another worker, neither
 * paired nor a copy, of a job waiting for its live leases only, that worker can run. */
static int copyable(const struct llease *l, const char *worker, const char *const *kernels,
		    size_t nkernels, uint64_t max_batches, const struct passover_worker *skip)
{
	const struct ljob *j = l->job;
	unsigned version;

	return !l->lease.check_of && !l->twin && !l->copy && strcmp(l->lease.worker, worker) &&
	       (!max_batches || l->lease.batch_count <= max_batches) &&
	       !job_is_final(j->job.state) && !ljob_pending(j) && !j->checks_open &&
	       ljob_wants(j, kernels, nkernels, &version) && !passover_has(skip, j->job.id);
}

enum tally_err live_speculate(struct live *lv, const char *worker, const char *const *kernels,
			      size_t nkernels, uint64_t max_batches,
			      const struct passover_worker *skip, size_t max_live, int64_t now,
			      int64_t ttl_ms, live_rate_fn rate, void *ctx, struct lease *out,
			      int64_t *of)
{
	struct llease *best = NULL, *c;
	int64_t best_at = 0;
	double mine;

	lv->spec.look_at = 0;
	if (verify_quarantined(&lv->verify, worker))
		return TALLY_EFORBIDDEN;
	if (leasetab_pairs(&lv->leases) >= max_live)
		return TALLY_ENOTFOUND;
	mine = rate(ctx, worker);
	/* Every live lease: they are as many as the workers, and this runs only for a worker that
	 * found no other work. */
	for (size_t i = 0; i < leasetab_live(&lv->leases); i++) {
		struct llease *l = leasetab_live_at(&lv->leases, i);
		struct spec_lease s;
		int64_t at;

		if (!copyable(l, worker, kernels, nkernels, max_batches, skip))
			continue;
		s = (struct spec_lease){ l->lease.granted_at, lease_samples(&l->lease),
					 rate(ctx, l->lease.worker) };
		if (!spec_worth(&s, mine, now)) {
			spec_earlier(&lv->spec.look_at, spec_look_at(&s, now));
			continue;
		}
		at = spec_expect(&s, now);
		if (!best || at > best_at || (at == best_at && l->lease.id < best->lease.id)) {
			best = l;
			best_at = at;
		}
	}
	if (!best)
		return TALLY_ENOTFOUND;
	if (lv->seq_next >= lv->seq_limit)
		return TALLY_ETOOBIG;
	if (!(c = t_calloc(1, sizeof *c)))
		return TALLY_ENOMEM;
	c->lease = best->lease; /* the same job, batches and history */
	c->lease.id = live_next_id(lv);
	c->lease.granted_at = now;
	c->lease.expires_at = now + ttl_ms;
	snprintf(c->lease.worker, sizeof c->lease.worker, "%s", worker);
	c->job = best->job;
	c->copy = 1;
	if (leasetab_insert(&lv->leases, c)) {
		free(c);
		return TALLY_ENOMEM;
	}
	lv->seq_next++;
	leasetab_pair(&lv->leases, best, c);
	lv->spec.granted++;
	*out = c->lease;
	*of = best->lease.id;
	return TALLY_OK;
}

int64_t live_spec_look_at(const struct live *lv)
{
	return lv->spec.look_at;
}

int live_spec_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
		  unsigned failures, unsigned strikes)
{
	struct llease *t = l->twin;

	leasetab_unpair(&lv->leases, l);
	if (s == LEASE_DONE) {
		/* l won. Its twin is done with it: its batches are, and its worker's complete is
		 * then a duplicate, acknowledged with nothing added (no counts are kept on it). */
		lv->spec.won += (uint64_t)l->copy;
		live_lease_finish(lv, t, LEASE_DONE, now);
		return 0;
	}
	/* The twin holds the batches on, with their history; a copy left alone is written from
	 * now on, as any lease (it is touched). */
	if (t->lease.failures < failures)
		t->lease.failures = failures;
	if (t->lease.strikes < strikes)
		t->lease.strikes = strikes;
	leasetab_touch(&lv->leases, t);
	live_lease_finish(lv, l, s, now);
	jobtab_touch(&lv->jobs, l->job);
	return 1;
}
