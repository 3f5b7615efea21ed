/* Deleting finished jobs: one by request (DELETE /v1/jobs/<id>) or those past the retention
 * period, in batches. Only finished jobs go, and they are in the store alone (the live state
 * lets a finished job go once written), so a delete is rows in the pass's transaction plus the
 * job's history in memory. */
#include "coord_int.h"
#include "db.h"
#include "history.h"
#include "live.h"
#include "log.h"
#include "wb.h"

/* Deletes finished job id from the open transaction (wb_begin) and from the history.
 * TALLY_ENOTFOUND, TALLY_ECONFLICT (still in memory: not written as finished yet), TALLY_EDB
 * (the pass's changes are lost). */
static enum tally_err coord_remove(struct coord *c, int64_t id)
{
	enum tally_err rc;

	if (live_job(c->live, id))
		return TALLY_ECONFLICT;
	rc = db_job_delete(c->db, id);
	if (rc == TALLY_EDB)
		wb_lose(c->wb); /* a half-done delete: the flush rolls the pass back */
	if (!rc)
		history_remove(c->history, id);
	return rc;
}

/* Hands back free pages; a failure loses the pass, as any failed write does. Sets *more. */
static enum tally_err coord_reclaim(struct coord *c, int *more)
{
	enum tally_err rc = db_reclaim(c->db, more);
	if (rc)
		wb_lose(c->wb);
	return rc;
}

enum tally_err coord_delete(struct coord *c, struct coord_scope scope, int64_t id,
			    struct job *out)
{
	enum tally_err rc;
	int more = 0;

	if (wb_broken(c->wb))
		return TALLY_EDB;
	if ((rc = coord_job(c, scope, id, out)))
		return rc;
	if (!job_is_final(out->state))
		return TALLY_ECONFLICT;
	/* Writes what memory holds first: a job that just finished leaves memory then. */
	if ((rc = wb_begin(c->wb)))
		return rc;
	c->changes++;
	if ((rc = coord_remove(c, id)) || (rc = coord_reclaim(c, &more)))
		return rc;
	log_info("msg=\"job deleted\" job=%lld owner=\"%s\"", (long long)id, out->spec.owner);
	return TALLY_OK;
}

enum tally_err coord_retain(struct coord *c, int64_t age_ms, size_t max, size_t *deleted,
			    int *more)
{
	int64_t ids[COORD_RETAIN_BATCH];
	size_t n = 0;
	enum tally_err rc;

	*deleted = 0;
	*more = 0;
	if (max > COORD_RETAIN_BATCH)
		max = COORD_RETAIN_BATCH;
	if (wb_broken(c->wb))
		return TALLY_EDB;
	/* Found before the transaction opens: a pass with nothing to delete writes nothing. A job
	 * that finished in memory since the last flush is not that old; one loaded back into
	 * memory (extended) is skipped by coord_remove. */
	if ((rc = db_jobs_expired(c->db, coord_now(c) - age_ms, ids, max, &n))) {
		wb_read_failed(c->wb);
		return rc;
	}
	if (!n)
		return TALLY_OK;
	if ((rc = wb_begin(c->wb)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = coord_remove(c, ids[i]);
		if (rc == TALLY_EDB)
			return rc;
		*deleted += !rc;
	}
	if ((rc = coord_reclaim(c, more)))
		return rc;
	if (n == max)
		*more = 1;
	if (*deleted)
		log_info("msg=\"retention: finished jobs deleted\" jobs=%zu", *deleted);
	return TALLY_OK;
}
