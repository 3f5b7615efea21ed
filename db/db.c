/* The SQLite store: opening (schema migrations, a quick check, the exclusive lock), the
 * statements (prepared once at open), transactions and settings. Writes run inside one BEGIN
 * IMMEDIATE transaction per db_begin/db_commit. Rows are written whole (upserts), so a save
 * never depends on what the file held before. The rows themselves: db_jobs.c, db_leases.c,
 * db_load.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "alloc.h"
#include "db_int.h"
#include "log.h"
#include "schema.h"

#define TALLY_STR_(x) #x
#define TALLY_STR(x) TALLY_STR_(x)

static const char *const db_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_JOB_SAVE] = "INSERT INTO jobs(id, kernel, kernel_version, samples, batch_size, seed, "
			"state, batches_total, next_batch, batches_done, batches_leased, "
			"samples_done, c0, c1, c2, c3, c4, c5, c6, c7, error, last_failure, "
			"created_at, started_at, finished_at, idempotency_key, verify, "
			"checks_passed, checks_pending, mismatches, quarantined, first_lease, params, "
			"keys, target_stderr, owner, priority) VALUES "
			"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
			"?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, "
			"?33, ?34, ?35, ?36, ?37) "
			"ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
			"samples = excluded.samples, batches_total = excluded.batches_total, "
			"kernel_version = excluded.kernel_version, keys = excluded.keys, "
			"next_batch = excluded.next_batch, batches_done = excluded.batches_done, "
			"batches_leased = excluded.batches_leased, "
			"samples_done = excluded.samples_done, c0 = excluded.c0, c1 = excluded.c1, "
			"c2 = excluded.c2, c3 = excluded.c3, c4 = excluded.c4, c5 = excluded.c5, "
			"c6 = excluded.c6, c7 = excluded.c7, error = excluded.error, "
			"last_failure = excluded.last_failure, started_at = excluded.started_at, "
			"finished_at = excluded.finished_at, "
			"checks_passed = excluded.checks_passed, "
			"checks_pending = excluded.checks_pending, mismatches = excluded.mismatches, "
			"quarantined = excluded.quarantined, first_lease = excluded.first_lease, "
			"priority = excluded.priority",
	[ST_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
	[ST_JOB_BY_KEY] = "SELECT " JOB_COLS " FROM jobs WHERE owner = ?2 AND idempotency_key = ?1",
	[ST_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
	[ST_JOB_LIST_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE state = ?3 AND id < ?1 "
			      "ORDER BY id DESC LIMIT ?2",
	[ST_JOB_LIST_OWNER] = "SELECT " JOB_COLS " FROM jobs WHERE owner = ?4 AND id < ?1 "
			      "ORDER BY id DESC LIMIT ?2",
	[ST_JOB_LIST_OWNER_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE owner = ?4 AND "
				    "state = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2",
	[ST_JOB_LOAD] = "SELECT " JOB_COLS ", next_batch, last_failure FROM jobs "
			"WHERE state IN (0, 1) ORDER BY id",
	/* The highest job id ever used: deleted jobs' ids are never handed out again. */
	[ST_JOB_MAX] = "SELECT max(coalesce((SELECT max(id) FROM jobs), 0), "
		       "coalesce((SELECT value FROM meta WHERE name = 'job_id_max'), 0))",
	[ST_RANGE_DROP_JOB] = "DELETE FROM free_ranges WHERE job_id = ?1",
	[ST_RANGE_INSERT] = "INSERT INTO free_ranges(job_id, first_batch, batch_count, failures, "
			    "strikes) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_RANGE_LOAD] = "SELECT job_id, first_batch, batch_count, failures, strikes "
			  "FROM free_ranges ORDER BY job_id, first_batch",
	[ST_LEASE_SAVE] = "INSERT INTO leases(id, job_id, first_batch, batch_count, worker, state, "
			  "granted_at, expires_at, finished_at, failures, strikes, check_of, c0, c1, "
			  "c2, c3, c4, c5, c6, c7) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
			  "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) "
			  "ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
			  "expires_at = excluded.expires_at, finished_at = excluded.finished_at, "
			  "c0 = coalesce(excluded.c0, c0), c1 = coalesce(excluded.c1, c1), "
			  "c2 = coalesce(excluded.c2, c2), c3 = coalesce(excluded.c3, c3), "
			  "c4 = coalesce(excluded.c4, c4), c5 = coalesce(excluded.c5, c5), "
			  "c6 = coalesce(excluded.c6, c6), c7 = coalesce(excluded.c7, c7)",
	[ST_LEASE_GET] = "SELECT l.id, l.job_id, l.first_batch, l.batch_count, l.state, "
			 "l.granted_at, l.expires_at, l.worker, j.kernel, j.samples, j.batch_size, "
			 "j.seed, j.kernel_version FROM leases l JOIN jobs j ON j.id = l.job_id "
			 "WHERE l.id = ?1",
	[ST_LEASE_LOAD] = "SELECT id, job_id, first_batch, batch_count, granted_at, expires_at, "
			  "worker, failures, strikes, check_of FROM leases WHERE state = 0",
	[ST_LEASE_MAX] = "SELECT coalesce(max(id), 0) FROM leases",
	[ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
	[ST_META_SET] = "INSERT INTO meta(name, value) VALUES (?1, ?2) "
			"ON CONFLICT(name) DO UPDATE SET value = excluded.value",
	[ST_CHECK_SAVE] = "UPDATE leases SET check_state = ?2 WHERE id = ?1",
	[ST_CHECK_LOAD] = "SELECT " RESULT_COLS " FROM leases l WHERE l.check_state = 1 AND "
			  "l.state = 1 ORDER BY l.id",
	[ST_OPINION_LOAD] = "SELECT " RESULT_COLS " FROM leases c JOIN leases l ON "
			    "l.check_of = c.id WHERE c.check_state = 1 AND c.state = 1 AND "
			    "l.state = 1 ORDER BY l.id",
	[ST_QUAR_SAVE] = "INSERT INTO quarantine(worker, at, job_id, reason) VALUES (?1, ?2, ?3, "
			 "?4) ON CONFLICT(worker) DO NOTHING",
	[ST_QUAR_LOAD] = "SELECT worker, reason, at FROM quarantine ORDER BY at",
	[ST_JOB_COUNTS] = "SELECT state, count(*) FROM jobs GROUP BY state",
	/* A scan of the leases since the oldest unfinished job's first (ids grow with time): it
	 * runs only when a worker is caught lying. */
	[ST_WORKER_RESULTS] = "SELECT " RESULT_COLS " FROM leases l JOIN jobs j ON "
			      "j.id = l.job_id WHERE l.id >= ?2 AND l.worker = ?1 AND l.state = 1 AND "
			      "l.c0 IS NOT NULL AND j.state IN (0, 1) ORDER BY l.id",
	/* A job's done leases, with their counts (a scan: it runs when a coordinator starts with
	 * an early-stopping job unfinished, and when a job is extended). */
	[ST_JOB_RESULTS] = "SELECT " RESULT_COLS " FROM leases l WHERE l.job_id = ?1 AND "
			   "l.state = 1 AND l.check_of IS NULL AND l.c0 IS NOT NULL ORDER BY l.id",
	/* Retention (db_retain.c). A job's leases, its check leases among them, are found by
	 * leases_job (schema 7). */
	[ST_JOB_DELETE] = "DELETE FROM jobs WHERE id = ?1",
	[ST_JOB_LEASES_DELETE] = "DELETE FROM leases WHERE job_id = ?1",
	[ST_JOB_ID_KEEP] = "INSERT INTO meta(name, value) VALUES ('job_id_max', ?1) "
			   "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
	[ST_JOB_EXPIRED] = "SELECT id FROM jobs WHERE state >= 2 AND finished_at < ?1 "
			   "ORDER BY finished_at LIMIT ?2",
	[ST_RECLAIM] = "PRAGMA incremental_vacuum(" TALLY_STR(DB_RECLAIM_PAGES) ")",
};

enum tally_err db_error(struct db *db, const char *what)
{
	snprintf(db->errmsg, sizeof db->errmsg, "%s: %s", what, sqlite3_errmsg(db->conn));
	return TALLY_EDB;
}

int db_injected(struct db *db, unsigned what, const char *doing)
{
	if (!(db->fail_next & what))
		return 0;
	db->fail_next &= ~what;
	snprintf(db->errmsg, sizeof db->errmsg, "%s: failure injected by a test", doing);
	return 1;
}

void db_fail_next(struct db *db, unsigned what)
{
	db->fail_next |= what;
}

const char *db_errmsg(struct db *db)
{
	return db->errmsg;
}

sqlite3_stmt *db_stmt(struct db *db, enum db_stmt which)
{
	sqlite3_stmt *s = db->st[which];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

enum tally_err db_exec(struct db *db, sqlite3_stmt *s, const char *what)
{
	int rc;
	if (s != db->st[ST_COMMIT] && db_injected(db, DB_FAIL_WRITE, what))
		return TALLY_EDB;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_error(db, what);
	return TALLY_OK;
}

enum tally_err db_step_end(struct db *db, sqlite3_stmt *s, int step, enum tally_err stop,
			   const char *what)
{
	enum tally_err rc = stop;
	if (!rc && step != SQLITE_DONE)
		rc = db_error(db, what);
	sqlite3_reset(s);
	return rc;
}

void db_bind_time(sqlite3_stmt *s, int i, int64_t t)
{
	if (t)
		sqlite3_bind_int64(s, i, t);
	else
		sqlite3_bind_null(s, i);
}

enum tally_err db_begin(struct db *db)
{
	enum tally_err rc;
	if (db->in_tx) {
		if (!sqlite3_get_autocommit(db->conn))
			return TALLY_OK;
		/* SQLite rolled it back by itself (disk full, I/O error): what was written into it
		 * is gone, and beginning afresh would hide that. */
		db->in_tx = 0;
		snprintf(db->errmsg, sizeof db->errmsg,
			 "the transaction was rolled back by SQLite (disk full or I/O error)");
		return TALLY_EDB;
	}
	if ((rc = db_exec(db, db_stmt(db, ST_BEGIN), "beginning a transaction")))
		return rc;
	db->in_tx = 1;
	return TALLY_OK;
}

void db_rollback(struct db *db)
{
	db->in_tx = 0;
	if (!sqlite3_get_autocommit(db->conn)) {
		sqlite3_step(db_stmt(db, ST_ROLLBACK));
		sqlite3_reset(db->st[ST_ROLLBACK]);
	}
}

enum tally_err db_commit(struct db *db)
{
	enum tally_err rc;
	if (!db->in_tx)
		return TALLY_OK;
	if (db_injected(db, DB_FAIL_COMMIT, "committing")) {
		db_rollback(db);
		return TALLY_EDB;
	}
	if (sqlite3_get_autocommit(db->conn)) {
		/* SQLite rolled the transaction back by itself (disk full, I/O error). */
		db->in_tx = 0;
		snprintf(db->errmsg, sizeof db->errmsg,
			 "the transaction was rolled back by SQLite (disk full or I/O error)");
		return TALLY_EDB;
	}
	rc = db_exec(db, db_stmt(db, ST_COMMIT), "committing");
	if (rc)
		db_rollback(db);
	db->in_tx = 0;
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

/* Writes "opening <path>: <SQLite's message> (<the system's reason>)" into err. */
static void open_error(struct db *db, const char *path, const char *msg, char *err,
		       size_t errlen);

/* Puts the file in incremental auto-vacuum, so that the pages deleted jobs free can be handed
 * back (db_reclaim). A file made before schema 7 is in none: the mode takes effect only
 * through a VACUUM, which rewrites the whole file once (it needs free disk space about the
 * file's size, and time in proportion to it). That runs here, at the first open by a build that
 * wants it; when it fails (a full disk), the file is used as it is and the VACUUM is tried at
 * the next start: the store works, it only does not shrink. */
static enum tally_err db_auto_vacuum(struct db *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	char *msg = NULL;
	int mode = -1;

	if (sqlite3_prepare_v2(db->conn, "PRAGMA auto_vacuum", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		mode = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (mode < 0) {
		open_error(db, path, NULL, err, errlen);
		return TALLY_EDB;
	}
	if (mode == 2) /* INCREMENTAL */
		return TALLY_OK;
	log_info("msg=\"rewriting the store once for incremental auto-vacuum (VACUUM)\" db=%s", path);
	if (sqlite3_exec(db->conn, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM", NULL, NULL, &msg) !=
	    SQLITE_OK) {
		log_warn("msg=\"VACUUM failed: the store will not shrink after deletions; tried again "
			 "at the next start\" db=%s error=\"%s\"", path,
			 msg ? msg : sqlite3_errmsg(db->conn));
		sqlite3_free(msg);
	}
	return TALLY_OK;
}


static void open_error(struct db *db, const char *path, const char *msg, char *err, size_t errlen)
{
	int sys = db->conn ? sqlite3_system_errno(db->conn) : 0;
	/* SQLite's last system error may be about its -wal or -shm file: whether the database
	 * itself can be written says more (a read-only file system, say). */
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	else if (errno != ENOENT)
		sys = errno;
	if (!msg)
		msg = db->conn ? sqlite3_errmsg(db->conn) : "out of memory";
	if (sys)
		snprintf(err, errlen, "opening %s: %s (%s)", path, msg, strerror(sys));
	else
		snprintf(err, errlen, "opening %s: %s", path, msg);
}

/* Runs PRAGMA quick_check; anything but a single "ok" row refuses the file. */
static enum tally_err db_quick_check(struct db *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	const char *row;
	int step;

	if (sqlite3_prepare_v2(db->conn, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK) {
		open_error(db, path, NULL, err, errlen);
		return TALLY_EDB;
	}
	step = sqlite3_step(s);
	row = step == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	if (!row && (sqlite3_errcode(db->conn) & 0xff) != SQLITE_CORRUPT &&
	    (sqlite3_errcode(db->conn) & 0xff) != SQLITE_NOTADB) {
		open_error(db, path, NULL, err, errlen); /* cannot read it: not a verdict on it */
		sqlite3_finalize(s);
		return TALLY_EDB;
	}
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
	struct db *db = t_calloc(1, sizeof *db);
	char *msg = NULL;
	enum tally_err rc = TALLY_EDB;

	if (!db)
		return TALLY_ENOMEM;
	if (sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		open_error(db, path, NULL, err, errlen);
		goto fail;
	}
	sqlite3_busy_timeout(db->conn, 5000);
	sqlite3_extended_result_codes(db->conn, 1);
	/* quick_check first: a corrupt file is refused at start, not discovered mid-job. */
	if (db_quick_check(db, path, err, errlen))
		goto fail;
	/* One process owns the store: holding the lock saves two fcntl() calls per transaction. */
	/* A new file takes incremental auto-vacuum first, before WAL mode writes its header; an
	 * older one is rewritten once after migrating (db_auto_vacuum). */
	if (sqlite3_exec(db->conn, "PRAGMA auto_vacuum = INCREMENTAL; "
				   "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; "
				   "PRAGMA synchronous = NORMAL; "
				   "PRAGMA foreign_keys = ON",
			 NULL, NULL, &msg) != SQLITE_OK) {
		open_error(db, path, msg, err, errlen);
		sqlite3_free(msg);
		goto fail;
	}
	rc = db_migrate(db, err, errlen);
	if (rc)
		goto fail;
	/* A write now, so that a file another process holds, or one that cannot be written, is
	 * refused at start with its name, and the exclusive lock is ours from here on. */
	if (sqlite3_exec(db->conn, "BEGIN IMMEDIATE; PRAGMA user_version = " TALLY_STR(SCHEMA_VERSION)
				   "; COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
		int code = sqlite3_extended_errcode(db->conn);
		open_error(db, path,
			   (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED
				   ? "database is locked by another process"
				   : msg, err, errlen);
		sqlite3_free(msg);
		sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
		rc = TALLY_EDB;
		goto fail;
	}
	if ((rc = db_auto_vacuum(db, path, err, errlen)))
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

enum tally_err db_meta_get(struct db *db, const char *name, int64_t *value)
{
	sqlite3_stmt *s = db_stmt(db, ST_META_GET);
	enum tally_err rc = TALLY_OK;
	int step;

	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		*value = sqlite3_column_int64(s, 0);
	else if (step != SQLITE_DONE)
		rc = db_error(db, "reading settings");
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_meta_set(struct db *db, const char *name, int64_t value)
{
	sqlite3_stmt *s = db_stmt(db, ST_META_SET);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, value);
	return db_exec(db, s, "saving settings");
}

enum tally_err db_read_one(struct db *db, enum db_stmt which, int64_t *out)
{
	sqlite3_stmt *s = db_stmt(db, which);
	enum tally_err rc = TALLY_OK;
	if (sqlite3_step(s) == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		rc = db_error(db, "reading");
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_check(struct db *db)
{
	int64_t v;
	return db_read_one(db, ST_JOB_MAX, &v);
}
