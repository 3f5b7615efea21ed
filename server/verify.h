/* Verification by recomputation: a job's pending checks, the opinions gathered on each, the
 * decision once two agree, and the workers quarantined for disagreeing. A check of a done lease
 * starts with that lease's counts as its first opinion; each check lease adds one, from a
 * worker that has given none on it. Batches are deterministic, so honest workers agree: when
 * two opinions agree the check is settled (passed when the checked lease's counts are those,
 * refuted otherwise) and every worker that gave other counts is to be quarantined. While no
 * two agree the check waits for one more worker, up to VERIFY_OPINIONS_MAX opinions; past that
 * no verdict can be had and the job fails.
 *
 * This module decides; live.c applies (leases, jobs, the store's rows). Pure C, no I/O. Not
 * thread-safe. */
#ifndef TALLY_VERIFY_H
#define TALLY_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "job.h"

#define VERIFY_OPINIONS_MAX 5  /* opinions a check gathers, the checked lease's own first */
#define VERIFY_REASON_MAX 512  /* a quarantine's reason, with the NUL */

/* A check's state, as stored on the checked lease's row (the name is the store's: db.h). Dropped:
 * its job ended first. */
enum live_check_state { CHECK_NONE, CHECK_PENDING, CHECK_PASSED, CHECK_REFUTED, CHECK_DROPPED };

/* One worker's counts for a check's batches. */
struct verify_opinion {
	int64_t lease_id;
	uint64_t counts[KERNEL_MAX_KEYS]; /* unused names count 0 */
	char worker[WORKER_NAME_MAX];
};

/* A check of lease lease_id's batches [first, first + count). */
struct verify_check {
	int64_t lease_id;
	uint64_t first, count;
	struct verify_opinion op[VERIFY_OPINIONS_MAX];
	size_t nop;
	int64_t leased;    /* the live check lease on it; 0: none */
	unsigned failures; /* failed check leases (faults) */
	int disputed;      /* its opinions have disagreed (counted in the job's mismatches) */
	enum live_check_state state;
	struct verify_check *next;  /* on its job's list of pending checks */
	int dirty;                  /* changed since the last write */
	struct verify_check *dnext; /* on struct verify's list of changed checks */
};

/* What one more opinion decided. */
enum verify_outcome {
	VERIFY_WAIT,     /* no two opinions agree yet: one more worker must give one */
	VERIFY_NO_AGREEMENT, /* VERIFY_OPINIONS_MAX opinions and no two agree: the job fails */
	VERIFY_SETTLED,  /* two agree: the check's state is CHECK_PASSED or CHECK_REFUTED */
};

struct verify_verdict {
	enum verify_outcome outcome;
	int disputed; /* this opinion was the check's first disagreement */
	/* Settled: the opinions (indices into op[], in order) whose counts differ from the agreed
	 * ones, and why their workers are quarantined (naming up to three that agreed). */
	size_t dissent[VERIFY_OPINIONS_MAX];
	size_t ndissent;
	char reason[VERIFY_REASON_MAX];
};

/* Adds a pending check of done lease l, with counts as its first opinion, at the head of
 * *list. Returns it (owned by the list: free it with free() once unlinked), or NULL when out of
 * memory (nothing changes). */
struct verify_check *verify_check_add(struct verify_check **list, const struct lease *l,
				      const uint64_t *counts);
/* Returns the check of lease lease_id on list, or NULL. */
struct verify_check *verify_check_find(struct verify_check *list, int64_t lease_id);
/* Takes ch off *list (the caller owns it then). Can't fail. */
void verify_check_unlink(struct verify_check **list, struct verify_check *ch);
/* Returns the first check on list, not leased now, that worker can give the next opinion on:
 * it has given none, the check has room for one more, and its batches are at most max_batches
 * (0: no cap). NULL when there is none. */
struct verify_check *verify_check_for(struct verify_check *list, const char *worker,
				      uint64_t max_batches);
/* Adds check lease l's counts to ch as one more opinion (ch has fewer than VERIFY_OPINIONS_MAX)
 * and fills *out with what that decided; a settled check's state is set. job_id is named in
 * the reason. Can't fail. */
void verify_check_opinion(struct verify_check *ch, const struct lease *l, const uint64_t *counts,
			  int64_t job_id, struct verify_verdict *out);
/* Adds an opinion as stored (a done check lease l, loaded): ignored when ch is full; a
 * disagreement marks ch disputed (the job's mismatches count it already). Can't fail. */
void verify_check_load_opinion(struct verify_check *ch, const struct lease *l,
			       const uint64_t *counts);
/* Withdraws the opinion of check lease lease_id (discarded), if ch has it; never the checked
 * lease's own. Can't fail. */
void verify_check_withdraw(struct verify_check *ch, int64_t lease_id);

/* A quarantined worker, caught at `at` by a check of job job_id (0: loaded) for reason. */
struct verify_quar {
	char worker[WORKER_NAME_MAX];
	char reason[VERIFY_REASON_MAX];
	int64_t at, job_id;
	int dirty;   /* not written yet */
	int suspect; /* its done leases are still to be discarded */
	struct verify_quar *next;
};

/* The quarantined workers, newest first, and the checks changed since the last write (newest
 * first). Zeroed, it is empty. A pending check belongs to its job's list; a settled or dropped
 * one, to the list of changed checks, which frees it once written. */
struct verify {
	struct verify_quar *quar;
	size_t nsuspects;
	struct verify_check *dirty;
};

/* Frees every quarantined worker and every settled or dropped check not yet written, and
 * forgets the changed pending ones. Can't fail. */
void verify_clear(struct verify *v);
/* Returns why worker is quarantined (borrowed, until verify_clear()), or NULL when it is not. */
const char *verify_quarantined(const struct verify *v, const char *worker);
/* Quarantines worker (not quarantined yet), caught now: to be written, and a suspect until
 * verify_take_suspect() hands it out. Returns TALLY_OK, or TALLY_ENOMEM with v unchanged. */
TALLY_WUR enum tally_err verify_quarantine(struct verify *v, const char *worker,
					   const char *reason, int64_t at, int64_t job_id);
/* Adds a worker quarantined as stored (written already, its leases discarded already).
 * Returns TALLY_OK, or TALLY_ENOMEM with v unchanged. */
TALLY_WUR enum tally_err verify_load(struct verify *v, const char *worker, const char *reason,
				     int64_t at);
/* Copies a suspect's name into name (WORKER_NAME_MAX bytes), clears its suspicion and returns
 * 1; 0 when there is none. */
int verify_take_suspect(struct verify *v, char *name);
/* Returns how many workers are quarantined. */
size_t verify_count(const struct verify *v);

/* Marks check ch changed (once until written). Can't fail. */
void verify_touch(struct verify *v, struct verify_check *ch);
/* Returns 1 when a check or a quarantined worker changed since verify_written(). */
int verify_dirty(const struct verify *v);
/* Calls check(ctx, ch) for every changed check, then quar(ctx, q) for every quarantined worker
 * not yet written. Returns TALLY_OK, or the first other return, at which it stopped. */
TALLY_WUR enum tally_err verify_each_dirty(const struct verify *v,
					   enum tally_err (*check)(void *ctx,
								   const struct verify_check *ch),
					   enum tally_err (*quar)(void *ctx,
								  const struct verify_quar *q),
					   void *ctx);
/* Marks everything written; settled and dropped checks are freed. Call it before the jobs
 * holding the pending ones are freed. Can't fail. */
void verify_written(struct verify *v);

#endif
