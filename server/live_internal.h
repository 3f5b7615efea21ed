/* The live state's insides, for the two files that implement live.h and no other: live.c (jobs
 * and the lease lifecycle) and verify.c (verification applied to the live state). */
#ifndef TALLY_LIVE_INTERNAL_H
#define TALLY_LIVE_INTERNAL_H

#include "jobtab.h"
#include "leasetab.h"
#include "live.h"
#include "spec.h"
#include "verify.h"

struct live {
	struct jobtab jobs;
	struct leasetab leases;
	struct verify verify; /* quarantined workers, and the checks changed */
	struct spec spec;     /* speculative copies: counts, and when to look again */
	uint64_t seq_next, seq_limit;
	uint64_t rnd;
	unsigned max_failures;
};

/* live.c: ends live lease l in state s: no longer live, its batches given back unless done (a
 * check lease's check is open again instead). A fault (an expiry, or a fail saying so) counts
 * against the batches; at the limit their job fails, naming them and reason, and *job_failed
 * (may be NULL) is set. Returns TALLY_OK, or TALLY_ENOMEM with l live and the state as it was
 * (never for a done lease or a check lease). */
enum tally_err live_lease_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
			      int fault, const char *reason, int *job_failed);
/* live.c: marks lease l finished in state s at now: no longer live, to be written. */
void live_lease_finish(struct live *lv, struct llease *l, enum lease_state s, int64_t now);
/* live.c: fails job j with an error naming why (printf-style), ending it with its leases and
 * checks; sets *job_failed (may be NULL). */
void live_job_fail(struct live *lv, struct ljob *j, int64_t now, int *job_failed,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* live.c: returns a new lease id, (seq << LIVE_ID_RANDOM_BITS) | random bits, and moves the
 * sequence on. Check live_seq_next() < live_seq_limit() first. */
int64_t live_next_id(struct live *lv);

/* live_spec.c: ends live lease l (not a check lease) of a speculative pair in state s, with
 * failures and strikes the history its batches would be given back with. Done, l has won: its
 * twin is done too, with nothing added, and 0 is returned (the caller ends l as any done
 * lease). Otherwise l ends alone and 1 is returned: its batches stay with its twin, which takes
 * their history on, and nothing is given back. Can't fail. */
int live_spec_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
		  unsigned failures, unsigned strikes);

/* verify.c: ends check lease l in state s (live_lease_end() for a check lease): unless it is
 * done, its check is open again, and a fault may fail its job. */
void live_check_lease_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
			  int fault, const char *reason, int *job_failed);
/* verify.c: adds check lease l's counts to its check ch (of job j, waiting for l's opinion) and
 * applies the verdict: wait for another worker, fail the job (no agreement), or settle the
 * check and quarantine every worker that disagreed. Returns TALLY_OK, or TALLY_ENOMEM with a
 * quarantine half done (the state must be read back from the store). */
TALLY_WUR enum tally_err live_check_opinion(struct live *lv, struct ljob *j,
					    struct verify_check *ch, const struct lease *l,
					    const uint64_t *counts, int64_t now);

#endif
