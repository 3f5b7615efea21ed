/* The SQLite store of jobs, leases and free batch ranges. Every statement is prepared once at
 * open; read-then-write transactions start with BEGIN IMMEDIATE.
 *
 * Batch bookkeeping, per job: batches [0, next_batch) have been handed out at least once;
 * [next_batch, batches_total) are fresh. Handed-out batches are done (counted in batches_done),
 * in a live lease (batches_leased), or back in free_ranges after a lease expired or failed.
 * So pending = (batches_total - next_batch) + sum(free_ranges) = total - done - leased. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sqlite3.h>
#include "db.h"
#include "schema.h"

enum db_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_JOB_INSERT,
	ST_JOB_GET,
	ST_JOB_LIST,
	ST_JOB_LIST_STATE,
	ST_JOB_CANCEL,
	ST_JOB_PICK,
	ST_JOB_TAKE_FRESH,
	ST_JOB_LEASED,
	ST_JOB_DONE,
	ST_JOB_FAILURE,
	ST_RANGE_FIRST,
	ST_RANGE_DELETE,
	ST_RANGE_SHRINK,
	ST_RANGE_INSERT,
	ST_RANGE_DROP_JOB,
	ST_LEASE_INSERT,
	ST_LEASE_GET,
	ST_LEASE_EXTEND,
	ST_LEASE_SET_STATE,
	ST_LEASE_CANCEL_JOB,
	ST_LEASE_EXPIRED,
	ST_LEASE_NEXT_EXPIRY,
	ST_COUNT
};

#define JOB_COLS                                                                                  \
	"id, kernel, samples, batch_size, seed, state, batches_total, batches_done, "              \
	"batches_leased, samples_done, c0, c1, c2, c3, c4, c5, c6, c7, error, created_at, "        \
	"started_at, finished_at, kernel_version"

static const char *const db_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT op",
	[ST_RELEASE] = "RELEASE op",
	[ST_ROLLBACK_TO] = "ROLLBACK TO op",
	[ST_JOB_INSERT] = "INSERT INTO jobs(kernel, kernel_version, samples, batch_size, seed, state, "
			  "batches_total, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
	[ST_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
	[ST_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
	[ST_JOB_LIST_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE state = ?3 AND id < ?1 "
			      "ORDER BY id DESC LIMIT ?2",
	[ST_JOB_CANCEL] = "UPDATE jobs SET state = 4, batches_leased = 0, finished_at = ?2 "
			  "WHERE id = ?1",
	[ST_JOB_PICK] = "SELECT " JOB_COLS ", next_batch FROM jobs WHERE state IN (0, 1) "
			"AND batches_done + batches_leased < batches_total "
			"AND kernel IN (SELECT value FROM json_each(?1)) ORDER BY id LIMIT 1",
	[ST_JOB_TAKE_FRESH] = "UPDATE jobs SET next_batch = next_batch + ?2 WHERE id = ?1",
	[ST_JOB_LEASED] = "UPDATE jobs SET batches_leased = batches_leased + ?2, state = 1, "
			  "started_at = coalesce(started_at, ?3) WHERE id = ?1",
	[ST_JOB_DONE] = "UPDATE jobs SET batches_done = batches_done + ?2, "
			"batches_leased = batches_leased - ?2, samples_done = samples_done + ?3, "
			"c0 = ?4, c1 = ?5, c2 = ?6, c3 = ?7, c4 = ?8, c5 = ?9, c6 = ?10, c7 = ?11, "
			"state = CASE WHEN batches_done + ?2 = batches_total THEN 2 ELSE state END, "
			"finished_at = CASE WHEN batches_done + ?2 = batches_total THEN ?12 "
			"ELSE finished_at END WHERE id = ?1",
	[ST_JOB_FAILURE] = "UPDATE jobs SET last_failure = ?2 WHERE id = ?1",
	[ST_RANGE_FIRST] = "SELECT id, first_batch, batch_count FROM free_ranges WHERE job_id = ?1 "
			   "ORDER BY first_batch LIMIT 1",
	[ST_RANGE_DELETE] = "DELETE FROM free_ranges WHERE id = ?1",
	[ST_RANGE_SHRINK] = "UPDATE free_ranges SET first_batch = first_batch + ?2, "
			    "batch_count = batch_count - ?2 WHERE id = ?1",
	[ST_RANGE_INSERT] = "INSERT INTO free_ranges(job_id, first_batch, batch_count) "
			    "VALUES (?1, ?2, ?3)",
	[ST_RANGE_DROP_JOB] = "DELETE FROM free_ranges WHERE job_id = ?1",
	[ST_LEASE_INSERT] = "INSERT INTO leases(job_id, first_batch, batch_count, worker, state, "
			    "granted_at, expires_at, id) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)",
	[ST_LEASE_GET] = "SELECT l.id, l.job_id, l.first_batch, l.batch_count, l.state, "
			 "l.granted_at, l.expires_at, l.worker, j.kernel, j.samples, j.batch_size, "
			 "j.seed, j.kernel_version FROM leases l JOIN jobs j ON j.id = l.job_id "
			 "WHERE l.id = ?1",
	[ST_LEASE_EXTEND] = "UPDATE leases SET expires_at = ?2 WHERE id = ?1 AND state = 0",
	[ST_LEASE_SET_STATE] = "UPDATE leases SET state = ?2, finished_at = ?3 WHERE id = ?1",
	[ST_LEASE_CANCEL_JOB] = "UPDATE leases SET state = 4, finished_at = ?2 "
				"WHERE job_id = ?1 AND state = 0",
	[ST_LEASE_EXPIRED] = "SELECT id, job_id, first_batch, batch_count FROM leases "
			     "WHERE state = 0 AND expires_at <= ?1",
	[ST_LEASE_NEXT_EXPIRY] = "SELECT min(expires_at) FROM leases WHERE state = 0",
};

struct db {
	sqlite3 *conn;
	sqlite3_stmt *st[ST_COUNT];
	int group;      /* group commit: operations are savepoints in a shared transaction */
	int group_open; /* that transaction has begun and not yet been committed */
	int group_lost; /* SQLite rolled it back by itself (disk full, I/O): the next flush fails */
	char errmsg[256];
};

/* Records the connection's error; returns TALLY_EDB for the caller to pass on. */
static enum tally_err db_fail(struct db *db, const char *what)
{
	snprintf(db->errmsg, sizeof db->errmsg, "%s: %s", what, sqlite3_errmsg(db->conn));
	return TALLY_EDB;
}

const char *db_errmsg(struct db *db)
{
	return db->errmsg;
}

/* Returns the statement reset and with bindings cleared, ready to bind. */
static sqlite3_stmt *db_stmt(struct db *db, enum db_stmt which)
{
	sqlite3_stmt *s = db->st[which];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Runs a statement that returns no rows. */
static enum tally_err db_exec(struct db *db, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(db, "writing");
	return TALLY_OK;
}

/* Every write operation runs between db_begin and db_commit (or db_rollback). Alone, that is
 * a transaction of its own. In group mode it is a savepoint inside one transaction shared by
 * many operations, which db_flush commits: one WAL write for a whole pass of the event loop. */
static enum tally_err db_begin(struct db *db)
{
	enum tally_err rc;
	if (!db->group)
		return db_exec(db, db_stmt(db, ST_BEGIN));
	if (db->group_open && sqlite3_get_autocommit(db->conn)) {
		/* Everything since the last flush is gone: report it at the flush, and keep what
		 * follows out of the store too, so that one answer covers the whole batch. */
		db->group_lost = 1;
		db->group_open = 0;
	}
	if (!db->group_open) {
		if ((rc = db_exec(db, db_stmt(db, ST_BEGIN))))
			return rc;
		db->group_open = 1;
	}
	return db_exec(db, db_stmt(db, ST_SAVEPOINT));
}

static void db_rollback(struct db *db)
{
	if (db->group) {
		if (db->group_open) {
			sqlite3_step(db_stmt(db, ST_ROLLBACK_TO));
			sqlite3_reset(db->st[ST_ROLLBACK_TO]);
			sqlite3_step(db_stmt(db, ST_RELEASE));
			sqlite3_reset(db->st[ST_RELEASE]);
		}
		return;
	}
	if (!sqlite3_get_autocommit(db->conn)) {
		sqlite3_step(db_stmt(db, ST_ROLLBACK));
		sqlite3_reset(db->st[ST_ROLLBACK]);
	}
}

static enum tally_err db_commit(struct db *db)
{
	enum tally_err rc;
	if (db->group) {
		if ((rc = db_exec(db, db_stmt(db, ST_RELEASE))))
			db_rollback(db);
		return rc;
	}
	rc = db_exec(db, db_stmt(db, ST_COMMIT));
	if (rc)
		sqlite3_step(db_stmt(db, ST_ROLLBACK)), sqlite3_reset(db->st[ST_ROLLBACK]);
	return rc;
}

void db_set_group(struct db *db, int on)
{
	db->group = on;
}

int db_dirty(const struct db *db)
{
	return db->group_open || db->group_lost;
}

enum tally_err db_flush(struct db *db)
{
	enum tally_err rc;
	if (db->group_open && sqlite3_get_autocommit(db->conn))
		db->group_lost = 1;
	if (db->group_lost) {
		db->group_lost = 0;
		db->group_open = 0;
		if (!sqlite3_get_autocommit(db->conn)) {
			sqlite3_step(db_stmt(db, ST_ROLLBACK));
			sqlite3_reset(db->st[ST_ROLLBACK]);
		}
		snprintf(db->errmsg, sizeof db->errmsg,
			 "the shared transaction was rolled back by SQLite (disk full or I/O error)");
		return TALLY_EDB;
	}
	if (!db->group_open)
		return TALLY_OK;
	db->group_open = 0;
	rc = db_exec(db, db_stmt(db, ST_COMMIT));
	if (rc && !sqlite3_get_autocommit(db->conn)) {
		sqlite3_step(db_stmt(db, ST_ROLLBACK));
		sqlite3_reset(db->st[ST_ROLLBACK]);
	}
	return rc;
}

static enum tally_err db_migrate(struct db *db, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int version;

	if (sqlite3_prepare_v2(db->conn, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		snprintf(err, errlen, "reading schema version: %s", sqlite3_errmsg(db->conn));
		sqlite3_finalize(s);
		return TALLY_EDB;
	}
	version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > SCHEMA_VERSION) {
		snprintf(err, errlen, "schema version %d is newer than this tally-server (%d)", version,
			 SCHEMA_VERSION);
		return TALLY_EDB;
	}
	for (int v = version; v < SCHEMA_VERSION; v++) {
		char *msg = NULL;
		char setver[64];
		snprintf(setver, sizeof setver, "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db->conn, schema_migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db->conn, setver, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db->conn, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "migrating schema to version %d: %s", v + 1,
				 msg ? msg : sqlite3_errmsg(db->conn));
			sqlite3_free(msg);
			sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
			return TALLY_EDB;
		}
	}
	return TALLY_OK;
}

/* Runs PRAGMA quick_check; anything but a single "ok" row refuses the file. */
static enum tally_err db_quick_check(struct db *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	const char *row;
	int step;

	if (sqlite3_prepare_v2(db->conn, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "opening %s: %s", path, sqlite3_errmsg(db->conn));
		return TALLY_EDB;
	}
	step = sqlite3_step(s);
	row = step == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	if (!row || strcmp(row, "ok")) {
		snprintf(err, errlen, "opening %s: the database is corrupt or not a database (%.200s)",
			 path, row ? row : sqlite3_errmsg(db->conn));
		sqlite3_finalize(s);
		return TALLY_EDB;
	}
	sqlite3_finalize(s);
	return TALLY_OK;
}

enum tally_err db_open(const char *path, struct db **out, char *err, size_t errlen)
{
	struct db *db = calloc(1, sizeof *db);
	char *msg = NULL;
	enum tally_err rc = TALLY_EDB;

	if (!db)
		return TALLY_ENOMEM;
	if (sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "opening %s: %s", path,
			 db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db->conn, 5000);
	sqlite3_extended_result_codes(db->conn, 1);
	/* quick_check first: a corrupt file is refused at start, not discovered mid-job. */
	if (db_quick_check(db, path, err, errlen))
		goto fail;
	/* One process owns the store: holding the lock saves two fcntl() calls per transaction. */
	if (sqlite3_exec(db->conn, "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; "
				   "PRAGMA synchronous = NORMAL; "
				   "PRAGMA foreign_keys = ON",
			 NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "opening %s: %s", path, msg ? msg : sqlite3_errmsg(db->conn));
		sqlite3_free(msg);
		goto fail;
	}
	rc = db_migrate(db, err, errlen);
	if (rc)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(db->conn, db_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "preparing statement %d: %s", i,
				 sqlite3_errmsg(db->conn));
			rc = TALLY_EDB;
			goto fail;
		}
	}
	*out = db;
	return TALLY_OK;
fail:
	db_close(db);
	return rc;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->conn);
	free(db);
}

static int64_t col_time(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, i);
}

/* Fills *j from a row selected with JOB_COLS. TALLY_EDB for a kernel this build lacks. */
static enum tally_err job_from_row(struct db *db, sqlite3_stmt *s, struct job *j)
{
	const char *kernel = (const char *)sqlite3_column_text(s, 1);
	const char *error = (const char *)sqlite3_column_text(s, 18);

	memset(j, 0, sizeof *j);
	j->id = sqlite3_column_int64(s, 0);
	j->spec.kernel = kernel ? kernel_find(kernel) : NULL;
	if (!j->spec.kernel) {
		snprintf(db->errmsg, sizeof db->errmsg, "job %lld has unknown kernel %.32s",
			 (long long)j->id, kernel ? kernel : "(null)");
		return TALLY_EDB;
	}
	j->spec.samples = (uint64_t)sqlite3_column_int64(s, 2);
	j->spec.batch_size = (uint64_t)sqlite3_column_int64(s, 3);
	j->spec.seed = (uint64_t)sqlite3_column_int64(s, 4);
	j->state = (enum job_state)sqlite3_column_int(s, 5);
	j->batches_total = (uint64_t)sqlite3_column_int64(s, 6);
	j->batches_done = (uint64_t)sqlite3_column_int64(s, 7);
	j->batches_leased = (uint64_t)sqlite3_column_int64(s, 8);
	j->samples_done = (uint64_t)sqlite3_column_int64(s, 9);
	for (int i = 0; i < KERNEL_MAX_KEYS; i++)
		j->counts[i] = (uint64_t)sqlite3_column_int64(s, 10 + i);
	if (error)
		snprintf(j->error, sizeof j->error, "%s", error);
	j->created_at = col_time(s, 19);
	j->started_at = col_time(s, 20);
	j->finished_at = col_time(s, 21);
	j->spec.kernel_version = (unsigned)sqlite3_column_int(s, 22);
	return TALLY_OK;
}

/* Reads job id into *j, inside or outside a transaction. */
static enum tally_err job_load(struct db *db, int64_t id, struct job *j)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_GET);
	enum tally_err rc;
	int step;

	sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE)
		rc = TALLY_ENOTFOUND;
	else if (step != SQLITE_ROW)
		rc = db_fail(db, "reading job");
	else
		rc = job_from_row(db, s, j);
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_job_insert(struct db *db, const struct job_spec *spec, int64_t now,
			     struct job *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_INSERT);
	enum tally_err rc;

	sqlite3_bind_text(s, 1, spec->kernel->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)spec->kernel->version); /* the version this job is computed with */
	sqlite3_bind_int64(s, 3, (int64_t)spec->samples);
	sqlite3_bind_int64(s, 4, (int64_t)spec->batch_size);
	sqlite3_bind_int64(s, 5, (int64_t)spec->seed);
	sqlite3_bind_int64(s, 6, (int64_t)kernel_batches(spec->samples, spec->batch_size));
	sqlite3_bind_int64(s, 7, now);
	if ((rc = db_begin(db)))
		return rc;
	if ((rc = db_exec(db, s)) ||
	    (rc = job_load(db, sqlite3_last_insert_rowid(db->conn), out)) || (rc = db_commit(db))) {
		db_rollback(db);
		return rc;
	}
	return TALLY_OK;
}

enum tally_err db_job_get(struct db *db, int64_t id, struct job *out)
{
	return job_load(db, id, out);
}

enum tally_err db_job_list(struct db *db, int state, int64_t before, size_t limit,
			   int (*each)(void *ctx, const struct job *job), void *ctx)
{
	sqlite3_stmt *s = db_stmt(db, state < 0 ? ST_JOB_LIST : ST_JOB_LIST_STATE);
	enum tally_err rc = TALLY_OK;
	struct job *j = malloc(sizeof *j);
	int step;

	if (!j)
		return TALLY_ENOMEM;
	sqlite3_bind_int64(s, 1, before > 0 ? before : INT64_MAX);
	sqlite3_bind_int64(s, 2, (int64_t)limit);
	if (state >= 0)
		sqlite3_bind_int(s, 3, state);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rc = job_from_row(db, s, j);
		if (rc || each(ctx, j))
			break;
	}
	if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
		rc = db_fail(db, "listing jobs");
	sqlite3_reset(s);
	free(j);
	return rc;
}

enum tally_err db_job_cancel(struct db *db, int64_t id, int64_t now, struct job *out)
{
	enum tally_err rc = db_begin(db);
	sqlite3_stmt *s;

	if (rc)
		return rc;
	rc = job_load(db, id, out);
	if (rc)
		goto fail;
	if (out->state == JOB_SUCCEEDED || out->state == JOB_FAILED) {
		rc = TALLY_ECONFLICT;
		goto fail;
	}
	if (out->state == JOB_CANCELLED)
		goto fail; /* rc is TALLY_OK: nothing to change */
	s = db_stmt(db, ST_LEASE_CANCEL_JOB);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	if ((rc = db_exec(db, s)))
		goto fail;
	s = db_stmt(db, ST_RANGE_DROP_JOB);
	sqlite3_bind_int64(s, 1, id);
	if ((rc = db_exec(db, s)))
		goto fail;
	s = db_stmt(db, ST_JOB_CANCEL);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	if ((rc = db_exec(db, s)) || (rc = db_commit(db)))
		goto fail;
	return job_load(db, id, out);
fail:
	db_rollback(db);
	return rc;
}

/* Returns a lease's batches to pending and takes them off the job's leased count.
 * Inside a transaction. */
static enum tally_err range_release(struct db *db, int64_t job_id, uint64_t first, uint64_t count)
{
	sqlite3_stmt *s = db_stmt(db, ST_RANGE_INSERT);
	enum tally_err rc;

	sqlite3_bind_int64(s, 1, job_id);
	sqlite3_bind_int64(s, 2, (int64_t)first);
	sqlite3_bind_int64(s, 3, (int64_t)count);
	if ((rc = db_exec(db, s)))
		return rc;
	s = db_stmt(db, ST_JOB_LEASED);
	sqlite3_bind_int64(s, 1, job_id);
	sqlite3_bind_int64(s, 2, -(int64_t)count);
	sqlite3_bind_null(s, 3);
	return db_exec(db, s);
}

static enum tally_err lease_set_state(struct db *db, int64_t id, enum lease_state state,
				      int64_t now)
{
	sqlite3_stmt *s = db_stmt(db, ST_LEASE_SET_STATE);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, (int)state);
	sqlite3_bind_int64(s, 3, now);
	return db_exec(db, s);
}

/* Reclaims expired leases; inside a transaction. */
static enum tally_err reap_locked(struct db *db, int64_t now, int *reaped)
{
	enum { REAP_CHUNK = 64 };
	struct { int64_t id, job; uint64_t first, count; } batch[REAP_CHUNK];
	enum tally_err rc = TALLY_OK;
	int n, step;

	*reaped = 0;
	do {
		sqlite3_stmt *s = db_stmt(db, ST_LEASE_EXPIRED);
		sqlite3_bind_int64(s, 1, now);
		n = 0;
		while (n < REAP_CHUNK && (step = sqlite3_step(s)) == SQLITE_ROW) {
			batch[n].id = sqlite3_column_int64(s, 0);
			batch[n].job = sqlite3_column_int64(s, 1);
			batch[n].first = (uint64_t)sqlite3_column_int64(s, 2);
			batch[n].count = (uint64_t)sqlite3_column_int64(s, 3);
			n++;
		}
		if (n < REAP_CHUNK && step != SQLITE_DONE)
			rc = db_fail(db, "finding expired leases");
		sqlite3_reset(s);
		for (int i = 0; !rc && i < n; i++) {
			rc = lease_set_state(db, batch[i].id, LEASE_EXPIRED, now);
			if (!rc)
				rc = range_release(db, batch[i].job, batch[i].first, batch[i].count);
		}
		*reaped += n;
	} while (!rc && n == REAP_CHUNK);
	return rc;
}

enum tally_err db_reap(struct db *db, int64_t now, int *reaped)
{
	enum tally_err rc = db_begin(db);
	if (rc)
		return rc;
	if ((rc = reap_locked(db, now, reaped)) || (rc = db_commit(db)))
		db_rollback(db);
	return rc;
}

/* Inserts a live lease under a random id: ids are never reused, even when a crash rolls back a
 * grant that a worker already holds, so a complete always names the range it was computed for;
 * and they cannot be guessed from one's own. Inside a transaction. */
static enum tally_err lease_insert(struct db *db, int64_t job_id, uint64_t first, uint64_t count,
				   const char *worker, int64_t now, int64_t expires, int64_t *id)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		sqlite3_stmt *s = db_stmt(db, ST_LEASE_INSERT);
		uint64_t r = 0;
		int step;
		if (getrandom(&r, sizeof r, 0) != sizeof r)
			r = (uint64_t)now * 2654435761u + (uint64_t)attempt;
		*id = (int64_t)(r & ((1ULL << 53) - 1)); /* exact in every JSON reader */
		if (!*id)
			*id = 1;
		sqlite3_bind_int64(s, 1, job_id);
		sqlite3_bind_int64(s, 2, (int64_t)first);
		sqlite3_bind_int64(s, 3, (int64_t)count);
		sqlite3_bind_text(s, 4, worker, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 5, now);
		sqlite3_bind_int64(s, 6, expires);
		sqlite3_bind_int64(s, 7, *id);
		step = sqlite3_step(s);
		sqlite3_reset(s);
		if (step == SQLITE_DONE)
			return TALLY_OK;
		if (sqlite3_extended_errcode(db->conn) != SQLITE_CONSTRAINT_PRIMARYKEY)
			return db_fail(db, "granting a lease");
	}
	return db_fail(db, "granting a lease (no free id)");
}

enum tally_err db_lease_acquire(struct db *db, const char *worker, const char *const *kernels,
				size_t nkernels, int64_t now, int64_t ttl_ms, db_size_fn size,
				void *ctx, struct lease *out, int *reaped)
{
	json_t *names = json_array();
	char *names_text = NULL;
	struct job job;
	uint64_t next_batch, remaining, first, take;
	enum tally_err rc = TALLY_ENOMEM;
	sqlite3_stmt *s;
	int step;

	*reaped = 0;
	if (!names)
		return TALLY_ENOMEM;
	for (size_t i = 0; i < nkernels; i++)
		if (json_array_append_new(names, json_string(kernels[i])))
			goto done;
	if (!(names_text = json_dumps(names, JSON_COMPACT)))
		goto done;
	if ((rc = db_begin(db)))
		goto done;
	if ((rc = reap_locked(db, now, reaped)))
		goto fail;

	s = db_stmt(db, ST_JOB_PICK);
	sqlite3_bind_text(s, 1, names_text, -1, SQLITE_STATIC);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		sqlite3_reset(s);
		rc = db_commit(db) ? TALLY_EDB : TALLY_ENOTFOUND;
		goto done;
	}
	if (step != SQLITE_ROW) {
		rc = db_fail(db, "picking a job");
		sqlite3_reset(s);
		goto fail;
	}
	rc = job_from_row(db, s, &job);
	next_batch = (uint64_t)sqlite3_column_int64(s, 23);
	sqlite3_reset(s);
	if (rc)
		goto fail;

	remaining = job.batches_total - job.batches_done - job.batches_leased;
	take = size(ctx, &job, remaining);
	if (take < 1)
		take = 1;
	if (take > remaining)
		take = remaining;

	/* Returned ranges first, lowest batch first; then fresh batches. */
	s = db_stmt(db, ST_RANGE_FIRST);
	sqlite3_bind_int64(s, 1, job.id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		int64_t range_id = sqlite3_column_int64(s, 0);
		uint64_t count = (uint64_t)sqlite3_column_int64(s, 2);
		first = (uint64_t)sqlite3_column_int64(s, 1);
		sqlite3_reset(s);
		if (take >= count) {
			take = count;
			s = db_stmt(db, ST_RANGE_DELETE);
			sqlite3_bind_int64(s, 1, range_id);
		} else {
			s = db_stmt(db, ST_RANGE_SHRINK);
			sqlite3_bind_int64(s, 1, range_id);
			sqlite3_bind_int64(s, 2, (int64_t)take);
		}
	} else if (step == SQLITE_DONE) {
		sqlite3_reset(s);
		first = next_batch;
		if (take > job.batches_total - next_batch)
			take = job.batches_total - next_batch;
		s = db_stmt(db, ST_JOB_TAKE_FRESH);
		sqlite3_bind_int64(s, 1, job.id);
		sqlite3_bind_int64(s, 2, (int64_t)take);
	} else {
		rc = db_fail(db, "reading free ranges");
		sqlite3_reset(s);
		goto fail;
	}
	if ((rc = db_exec(db, s)))
		goto fail;

	s = db_stmt(db, ST_JOB_LEASED);
	sqlite3_bind_int64(s, 1, job.id);
	sqlite3_bind_int64(s, 2, (int64_t)take);
	sqlite3_bind_int64(s, 3, now);
	if ((rc = db_exec(db, s)))
		goto fail;

	memset(out, 0, sizeof *out);
	if ((rc = lease_insert(db, job.id, first, take, worker, now, now + ttl_ms, &out->id)))
		goto fail;
	if ((rc = db_commit(db)))
		goto done;
	out->job_id = job.id;
	out->spec = job.spec;
	out->first_batch = first;
	out->batch_count = take;
	out->state = LEASE_ACTIVE;
	out->granted_at = now;
	out->expires_at = now + ttl_ms;
	snprintf(out->worker, sizeof out->worker, "%s", worker);
	goto done;
fail:
	db_rollback(db);
done:
	free(names_text);
	json_decref(names);
	return rc;
}

enum tally_err db_lease_get(struct db *db, int64_t id, struct lease *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_LEASE_GET);
	enum tally_err rc = TALLY_OK;
	int step;

	sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = TALLY_ENOTFOUND;
	} else if (step != SQLITE_ROW) {
		rc = db_fail(db, "reading lease");
	} else {
		const char *worker = (const char *)sqlite3_column_text(s, 7);
		const char *kernel = (const char *)sqlite3_column_text(s, 8);
		memset(out, 0, sizeof *out);
		out->id = sqlite3_column_int64(s, 0);
		out->job_id = sqlite3_column_int64(s, 1);
		out->first_batch = (uint64_t)sqlite3_column_int64(s, 2);
		out->batch_count = (uint64_t)sqlite3_column_int64(s, 3);
		out->state = (enum lease_state)sqlite3_column_int(s, 4);
		out->granted_at = sqlite3_column_int64(s, 5);
		out->expires_at = sqlite3_column_int64(s, 6);
		snprintf(out->worker, sizeof out->worker, "%s", worker ? worker : "");
		out->spec.kernel = kernel ? kernel_find(kernel) : NULL;
		out->spec.samples = (uint64_t)sqlite3_column_int64(s, 9);
		out->spec.batch_size = (uint64_t)sqlite3_column_int64(s, 10);
		out->spec.seed = (uint64_t)sqlite3_column_int64(s, 11);
		out->spec.kernel_version = (unsigned)sqlite3_column_int(s, 12);
		if (!out->spec.kernel) {
			snprintf(db->errmsg, sizeof db->errmsg, "lease %lld: unknown kernel",
				 (long long)id);
			rc = TALLY_EDB;
		}
	}
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_lease_heartbeat(struct db *db, int64_t id, int64_t now, int64_t ttl_ms,
				  struct lease *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_LEASE_EXTEND);
	enum tally_err rc;
	int changed;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now + ttl_ms);
	if ((rc = db_begin(db)))
		return rc;
	if ((rc = db_exec(db, s))) {
		db_rollback(db);
		return rc;
	}
	changed = sqlite3_changes(db->conn);
	if ((rc = db_lease_get(db, id, out)) || (rc = db_commit(db))) {
		db_rollback(db);
		return rc;
	}
	return changed ? TALLY_OK : TALLY_ELOST;
}

/* Adds b to *a unless the sum would pass INT64_MAX (SQLite's integer). Returns 0, or -1. */
static int add_checked(uint64_t *a, uint64_t b)
{
	if (b > (uint64_t)INT64_MAX - *a)
		return -1;
	*a += b;
	return 0;
}

enum tally_err db_lease_complete(struct db *db, int64_t id, const uint64_t *counts, int64_t now,
				 int *duplicate, int *finished)
{
	struct lease lease;
	struct job job;
	sqlite3_stmt *s;
	enum tally_err rc;

	*duplicate = 0;
	*finished = 0;
	if ((rc = db_begin(db)))
		return rc;
	if ((rc = db_lease_get(db, id, &lease)))
		goto fail;
	if (lease.state == LEASE_DONE) {
		*duplicate = 1;
		goto fail; /* rc is TALLY_OK; nothing to write */
	}
	if (lease.state != LEASE_ACTIVE) {
		rc = TALLY_ELOST;
		goto fail;
	}
	if ((rc = job_load(db, lease.job_id, &job)))
		goto fail;
	for (size_t i = 0; i < job.spec.kernel->nkeys; i++) {
		if (add_checked(&job.counts[i], counts[i])) {
			rc = TALLY_ECOUNTS;
			goto fail;
		}
	}
	if ((rc = lease_set_state(db, id, LEASE_DONE, now)))
		goto fail;
	s = db_stmt(db, ST_JOB_DONE);
	sqlite3_bind_int64(s, 1, job.id);
	sqlite3_bind_int64(s, 2, (int64_t)lease.batch_count);
	sqlite3_bind_int64(s, 3, (int64_t)lease_samples(&lease));
	for (int i = 0; i < KERNEL_MAX_KEYS; i++)
		sqlite3_bind_int64(s, 4 + i, (int64_t)job.counts[i]);
	sqlite3_bind_int64(s, 12, now);
	if ((rc = db_exec(db, s)) || (rc = db_commit(db)))
		goto fail;
	*finished = job.batches_done + lease.batch_count == job.batches_total;
	return TALLY_OK;
fail:
	db_rollback(db);
	return rc;
}

enum tally_err db_lease_fail(struct db *db, int64_t id, const char *reason, int64_t now)
{
	struct lease lease;
	sqlite3_stmt *s;
	enum tally_err rc;

	if ((rc = db_begin(db)))
		return rc;
	if ((rc = db_lease_get(db, id, &lease)))
		goto fail;
	if (lease.state != LEASE_ACTIVE) {
		rc = TALLY_ELOST;
		goto fail;
	}
	if ((rc = lease_set_state(db, id, LEASE_FAILED, now)) ||
	    (rc = range_release(db, lease.job_id, lease.first_batch, lease.batch_count)))
		goto fail;
	s = db_stmt(db, ST_JOB_FAILURE);
	sqlite3_bind_int64(s, 1, lease.job_id);
	sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
	if ((rc = db_exec(db, s)) || (rc = db_commit(db)))
		goto fail;
	return TALLY_OK;
fail:
	db_rollback(db);
	return rc;
}

enum tally_err db_next_expiry(struct db *db, int64_t *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_LEASE_NEXT_EXPIRY);
	enum tally_err rc = TALLY_OK;

	if (sqlite3_step(s) == SQLITE_ROW)
		*out = col_time(s, 0);
	else
		rc = db_fail(db, "reading next expiry");
	sqlite3_reset(s);
	return rc;
}
