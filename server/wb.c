/* Write-behind (wb.h): the live state read from the store, written back into one transaction
 * per pass, and read back after a failed write; one enum says where it stands. */
#include <stdlib.h>
#include "alloc.h"
#include "db.h"
#include "live.h"
#include "log.h"
#include "wb.h"

/* Lease ids are reserved in blocks of this many sequence numbers; a new block is written when
 * half of the current one is used. */
#define WB_SEQ_BLOCK (1ULL << 16)
#define WB_SEQ_META "lease_seq_limit"
#define WB_PROBE_MS 1000 /* wb_check() tries a write at most this often */

struct wb {
	struct db *db;
	struct live *live;
	int64_t lease_timeout_ms;
	struct wb_hooks hooks;
	enum wb_state state;
	uint64_t seq_pending; /* a lease id limit written, not yet committed (0: none) */
	int failing;          /* the last flush failed, and no write has worked since */
	int64_t probed_at;    /* when wb_check() last tried a write */
};

struct wb *wb_new(struct db *db, struct live *live, int64_t lease_timeout_ms,
		  struct wb_hooks hooks)
{
	struct wb *wb = t_calloc(1, sizeof *wb);
	if (!wb)
		return NULL;
	wb->db = db;
	wb->live = live;
	wb->lease_timeout_ms = lease_timeout_ms;
	wb->hooks = hooks;
	return wb;
}

void wb_free(struct wb *wb)
{
	free(wb);
}

enum wb_state wb_state(const struct wb *wb)
{
	return wb->state;
}

int wb_broken(const struct wb *wb)
{
	return wb->state == WB_BROKEN || wb->state == WB_BROKEN_LOST;
}

int wb_dirty(const struct wb *wb)
{
	return wb->state != WB_CLEAN || live_dirty(wb->live);
}

/* --- reading the store ---------------------------------------------------------------------- */

struct loading {
	struct live *live;
	int64_t expires_at; /* the least expiry a loaded lease gets */
};

static enum tally_err load_job(void *ctx, const struct job *job, uint64_t next_batch,
			       const char *failure)
{
	return live_load_job(((struct loading *)ctx)->live, job, next_batch, failure);
}

static enum tally_err load_range(void *ctx, int64_t job_id, const struct batch_range *r)
{
	return live_load_range(((struct loading *)ctx)->live, job_id, r);
}

static enum tally_err load_check(void *ctx, const struct lease *checked, const uint64_t *counts)
{
	return live_load_check(((struct loading *)ctx)->live, checked, counts);
}

static enum tally_err load_opinion(void *ctx, const struct lease *check, const uint64_t *counts)
{
	return live_load_opinion(((struct loading *)ctx)->live, check, counts);
}

/* A lease from before a restart gets a whole lease timeout from now: its worker could not reach
 * a coordinator that was down, and should not lose its work (nor strike its batches) for it. */
static enum tally_err load_lease(void *ctx, const struct lease *lease)
{
	struct loading *ld = ctx;
	struct lease l = *lease;
	if (l.expires_at < ld->expires_at)
		l.expires_at = ld->expires_at;
	return live_load_lease(ld->live, &l);
}

static enum tally_err load_quarantine(void *ctx, const char *worker, const char *reason,
				      int64_t at)
{
	return live_load_quarantine(((struct loading *)ctx)->live, worker, reason, at);
}

/* A done lease of an early-stopping job: its counts go to their prefix segment. */
static enum tally_err load_result(void *ctx, const struct lease *l, const uint64_t *counts)
{
	live_load_result(ctx, l, counts);
	return TALLY_OK;
}

/* Fills the (empty) live state from the store, with the done leases of its early-stopping jobs.
 * Sets *seq_floor to the lowest lease sequence number no stored lease id has used, and *limit
 * to the stored limit (left alone when none). expires_at: the least expiry a live lease gets.
 * On failure memory is left empty. */
static enum tally_err wb_read(struct wb *wb, int64_t expires_at, uint64_t *seq_floor,
			      int64_t *limit)
{
	struct loading ld = { wb->live, expires_at };
	struct db_loader l = { load_job,   load_range,      load_check, load_opinion,
			       load_lease, load_quarantine, &ld };
	int64_t max_job = 0, max_lease = 0;
	int skipped = 0;
	enum tally_err rc = db_load(wb->db, &l, &max_job, &max_lease, &skipped);

	for (int64_t id = 0; !rc && (id = live_next_stopping_job(wb->live, id));)
		rc = db_job_results(wb->db, id, load_result, wb->live);
	if (!rc)
		rc = db_meta_get(wb->db, WB_SEQ_META, limit);
	if (rc) {
		live_clear(wb->live);
		return rc;
	}
	if (skipped)
		log_warn("msg=\"jobs left out: this build lacks their kernel\" count=%d", skipped);
	live_set_next_job_id(wb->live, max_job + 1);
	*seq_floor = ((uint64_t)max_lease >> LIVE_ID_RANDOM_BITS) + 1;
	return TALLY_OK;
}

/* Sets a meta value in a transaction of its own. */
static enum tally_err wb_write_meta(struct wb *wb, const char *name, int64_t value)
{
	enum tally_err rc;
	if ((rc = db_begin(wb->db)) || (rc = db_meta_set(wb->db, name, value)) ||
	    (rc = db_commit(wb->db)))
		db_rollback(wb->db);
	return rc;
}

enum tally_err wb_load(struct wb *wb, int64_t now)
{
	int64_t limit = 0;
	uint64_t next = 0;
	enum tally_err rc = wb_read(wb, now + wb->lease_timeout_ms, &next, &limit);

	if (rc)
		return rc;
	/* Ids below the stored limit may have been handed out before a crash: start above it. */
	if ((uint64_t)limit > next)
		next = (uint64_t)limit;
	if ((rc = wb_write_meta(wb, WB_SEQ_META, (int64_t)(next + WB_SEQ_BLOCK)))) {
		live_clear(wb->live);
		return rc;
	}
	live_set_seq(wb->live, next, next + WB_SEQ_BLOCK);
	wb->state = WB_CLEAN;
	return TALLY_OK;
}

/* After a failed write: memory is ahead of the store, so it is read again, and the state
 * becomes `after` (WB_CLEAN or WB_LOST), or the matching broken one when that fails. Lease
 * sequence numbers already handed out are never reused. */
static void wb_reload(struct wb *wb, enum wb_state after)
{
	uint64_t next = live_seq_next(wb->live), limit = live_seq_limit(wb->live), floor = 0;
	int64_t stored = 0;

	live_clear(wb->live);
	wb->seq_pending = 0;
	if (wb_read(wb, 0, &floor, &stored)) {
		wb->state = after == WB_LOST ? WB_BROKEN_LOST : WB_BROKEN;
		log_error("msg=\"reloading state failed\" error=\"%s\"", db_errmsg(wb->db));
		return;
	}
	wb->state = after;
	live_set_seq(wb->live, next, limit);
	if (wb->hooks.reloaded)
		wb->hooks.reloaded(wb->hooks.ctx);
	log_warn("msg=\"state reloaded after a failed write\" jobs=%zu leases=%zu",
		 live_jobs_count(wb->live), live_leases_count(wb->live));
}

/* --- writing behind ------------------------------------------------------------------------- */

static enum tally_err save_job(void *ctx, const struct live_job_row *row)
{
	struct db *db = ctx;
	enum tally_err rc = db_job_save(db, row->job, row->key, row->next_batch, row->last_failure);
	if (!rc && row->ranges_changed)
		rc = db_ranges_save(db, row->job->id, row->free, row->nfree);
	return rc;
}

static enum tally_err save_lease(void *ctx, const struct live_lease_row *row)
{
	return db_lease_save(ctx, row->lease, row->finished_at, row->counts);
}

static enum tally_err save_check(void *ctx, const struct live_check_row *row)
{
	return db_check_save(ctx, row->lease_id, (int)row->state);
}

static enum tally_err save_quarantine(void *ctx, const struct live_quarantine_row *row)
{
	return db_quarantine_save(ctx, row->worker, row->at, row->job_id, row->reason);
}

/* Writes the changes into the open transaction (with a new block of lease ids when half of the
 * current one is used). On failure rolls back and reloads into `after`. */
static enum tally_err wb_write(struct wb *wb, enum wb_state after)
{
	uint64_t next = live_seq_next(wb->live), limit = live_seq_limit(wb->live);
	int more_ids = !wb->seq_pending && limit - next < WB_SEQ_BLOCK / 2;
	struct live_writer w = { save_job, save_lease, save_check, save_quarantine, wb->db };
	enum tally_err rc;

	if (!live_dirty(wb->live) && !more_ids)
		return TALLY_OK;
	if ((rc = db_begin(wb->db)) || (rc = live_each_dirty(wb->live, &w)))
		goto fail;
	if (more_ids) {
		if ((rc = db_meta_set(wb->db, WB_SEQ_META, (int64_t)(next + WB_SEQ_BLOCK))))
			goto fail;
		wb->seq_pending = next + WB_SEQ_BLOCK;
	}
	if (wb->hooks.written)
		wb->hooks.written(wb->hooks.ctx);
	live_written(wb->live);
	if (wb->state == WB_CLEAN)
		wb->state = WB_WRITTEN;
	return TALLY_OK;
fail:
	db_rollback(wb->db);
	wb_reload(wb, after);
	return rc;
}

/* Writes and commits the changes; on failure reloads into `after`. */
static enum tally_err wb_write_commit(struct wb *wb, enum wb_state after)
{
	enum tally_err rc = wb_write(wb, after);

	if (rc || wb->state != WB_WRITTEN)
		return rc;
	if ((rc = db_commit(wb->db))) {
		wb_reload(wb, after);
		return rc;
	}
	wb->state = WB_CLEAN;
	wb->failing = 0; /* a write worked */
	if (wb->seq_pending) {
		live_set_seq(wb->live, live_seq_next(wb->live), wb->seq_pending);
		wb->seq_pending = 0;
	}
	return TALLY_OK;
}

enum tally_err wb_sync(struct wb *wb)
{
	return wb_write(wb, WB_LOST);
}

enum tally_err wb_begin(struct wb *wb)
{
	enum tally_err rc;

	if (wb->state != WB_CLEAN && wb->state != WB_WRITTEN)
		return TALLY_EDB;
	if ((rc = wb_sync(wb)))
		return rc;
	if ((rc = db_begin(wb->db))) {
		wb_lose(wb);
		return rc;
	}
	wb->state = WB_WRITTEN;
	return TALLY_OK;
}

enum tally_err wb_commit(struct wb *wb)
{
	if (wb->state != WB_CLEAN && wb->state != WB_WRITTEN)
		return TALLY_EDB; /* committing now would commit what the next flush must undo */
	return wb_write_commit(wb, WB_LOST);
}

void wb_lose(struct wb *wb)
{
	if (wb->state == WB_CLEAN || wb->state == WB_WRITTEN)
		wb->state = WB_LOST;
	else if (wb->state == WB_BROKEN)
		wb->state = WB_BROKEN_LOST;
}

void wb_read_failed(struct wb *wb)
{
	if (wb->state == WB_WRITTEN)
		wb_lose(wb);
}

/* In BROKEN*, reads the store back. Returns 1 when memory is still empty. */
static int wb_still_broken(struct wb *wb)
{
	if (wb_broken(wb))
		wb_reload(wb, wb->state == WB_BROKEN_LOST ? WB_LOST : WB_CLEAN);
	return wb_broken(wb);
}

enum tally_err wb_flush(struct wb *wb)
{
	enum tally_err rc;

	if (wb_still_broken(wb)) { /* the store may answer again */
		wb->failing = 1;
		return TALLY_EDB;
	}
	if (wb->state == WB_LOST) {
		/* A write between flushes failed: the changes before it are gone, and those after
		 * it go too, so that one answer covers them all. */
		db_rollback(wb->db);
		wb_reload(wb, WB_CLEAN);
		rc = TALLY_EDB;
	} else {
		rc = wb_write_commit(wb, WB_CLEAN);
	}
	if (rc) {
		log_error("msg=\"commit failed\" error=\"%s\"", db_errmsg(wb->db));
		wb->failing = 1;
	}
	return rc;
}

enum tally_err wb_check(struct wb *wb, int64_t now)
{
	enum tally_err rc;

	if (wb_still_broken(wb))
		return TALLY_EDB;
	if (!wb->failing)
		return db_check(wb->db);
	/* Writes failed last time: healthy again only once a write works (space freed, say). */
	if (wb_dirty(wb))
		return TALLY_EDB; /* the next pass's commit will tell */
	if (now - wb->probed_at < WB_PROBE_MS)
		return TALLY_EDB; /* probed within the second: /healthz must stay cheap */
	wb->probed_at = now;
	if ((rc = wb_write_meta(wb, "health_probe", now))) /* a value that changes */
		return rc;
	wb->failing = 0;
	return TALLY_OK;
}
