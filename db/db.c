/* The SQLite store of jobs, leases and free batch ranges, written behind by the coordinator.
 * Every statement is prepared once at open; writes run inside one BEGIN IMMEDIATE transaction
 * per db_begin/db_commit. Rows are written whole (upserts), so a save never depends on what the
 * file held before. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "db.h"
#include "schema.h"

#define TALLY_STR_(x) #x
#define TALLY_STR(x) TALLY_STR_(x)

enum db_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_JOB_SAVE,
	ST_JOB_GET,
	ST_JOB_BY_KEY,
	ST_JOB_LIST,
	ST_JOB_LIST_STATE,
	ST_JOB_LOAD,
	ST_JOB_MAX,
	ST_RANGE_DROP_JOB,
	ST_RANGE_INSERT,
	ST_RANGE_LOAD,
	ST_LEASE_SAVE,
	ST_LEASE_GET,
	ST_LEASE_LOAD,
	ST_LEASE_MAX,
	ST_META_GET,
	ST_META_SET,
	ST_CHECK_SAVE,
	ST_CHECK_LOAD,
	ST_OPINION_LOAD,
	ST_QUAR_SAVE,
	ST_QUAR_LOAD,
	ST_WORKER_RESULTS,
	ST_JOB_COUNTS,
	ST_JOB_RESULTS,
	ST_COUNT
};

#define JOB_COLS                                                                                  \
	"id, kernel, samples, batch_size, seed, state, batches_total, batches_done, "              \
	"batches_leased, samples_done, c0, c1, c2, c3, c4, c5, c6, c7, error, created_at, "        \
	"started_at, finished_at, kernel_version, verify, checks_passed, checks_pending, "       \
	"mismatches, quarantined, first_lease, params, keys, target_stderr"
#define JOB_NCOLS 32

/* A lease with its counts: read by lease_counts_from_row(). The lease comes whole (its times
 * too), so that a caller saving it again (a discard) does not clear them. */
#define RESULT_COLS                                                                               \
	"l.id, l.job_id, l.first_batch, l.batch_count, l.worker, l.check_of, l.c0, l.c1, l.c2, "   \
	"l.c3, l.c4, l.c5, l.c6, l.c7, l.granted_at, l.expires_at, l.failures, l.strikes"

static const char *const db_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_JOB_SAVE] = "INSERT INTO jobs(id, kernel, kernel_version, samples, batch_size, seed, "
			"state, batches_total, next_batch, batches_done, batches_leased, "
			"samples_done, c0, c1, c2, c3, c4, c5, c6, c7, error, last_failure, "
			"created_at, started_at, finished_at, idempotency_key, verify, "
			"checks_passed, checks_pending, mismatches, quarantined, first_lease, params, "
			"keys, target_stderr) VALUES "
			"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
			"?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, "
			"?33, ?34, ?35) "
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
			"quarantined = excluded.quarantined, first_lease = excluded.first_lease",
	[ST_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
	[ST_JOB_BY_KEY] = "SELECT " JOB_COLS " FROM jobs WHERE idempotency_key = ?1",
	[ST_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
	[ST_JOB_LIST_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE state = ?3 AND id < ?1 "
			      "ORDER BY id DESC LIMIT ?2",
	[ST_JOB_LOAD] = "SELECT " JOB_COLS ", next_batch, last_failure FROM jobs "
			"WHERE state IN (0, 1) ORDER BY id",
	[ST_JOB_MAX] = "SELECT coalesce(max(id), 0) FROM jobs",
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
};

struct db {
	sqlite3 *conn;
	sqlite3_stmt *st[ST_COUNT];
	int in_tx;
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
static enum tally_err db_exec(struct db *db, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(db, what);
	return TALLY_OK;
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
	struct db *db = calloc(1, sizeof *db);
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
	if (sqlite3_exec(db->conn, "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; "
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

/* Fills *j from a row selected with JOB_COLS. A kernel this build has no code for is known by
 * name only; TALLY_EDB for a row that names no kernel, or bad count names. */
static enum tally_err job_from_row(struct db *db, sqlite3_stmt *s, struct job *j)
{
	const char *kernel = (const char *)sqlite3_column_text(s, 1);
	const char *error = (const char *)sqlite3_column_text(s, 18);
	const char *params = (const char *)sqlite3_column_text(s, 29);
	const char *keys = (const char *)sqlite3_column_text(s, 30);

	memset(j, 0, sizeof *j);
	j->id = sqlite3_column_int64(s, 0);
	j->spec.kernel = kernel ? kernel_named(kernel) : NULL;
	if (!j->spec.kernel || (keys && kernel_keys_parse(keys, &j->keys))) {
		snprintf(db->errmsg, sizeof db->errmsg, "job %lld: bad kernel %.32s or count names",
			 (long long)j->id, kernel ? kernel : "(null)");
		return TALLY_EDB;
	}
	if (!j->keys.n)
		kernel_keys(j->spec.kernel, &j->keys);
	snprintf(j->spec.params, sizeof j->spec.params, "%s", params ? params : "{}");
	j->spec.target_stderr = sqlite3_column_double(s, 31);
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
	j->spec.verify = sqlite3_column_double(s, 23);
	j->checks_passed = (uint64_t)sqlite3_column_int64(s, 24);
	j->checks_pending = (uint64_t)sqlite3_column_int64(s, 25);
	j->mismatches = (uint64_t)sqlite3_column_int64(s, 26);
	if (sqlite3_column_type(s, 27) == SQLITE_TEXT)
		snprintf(j->quarantined, sizeof j->quarantined, "%s",
			 (const char *)sqlite3_column_text(s, 27));
	j->first_lease_id = sqlite3_column_int64(s, 28);
	return TALLY_OK;
}

/* Clears *l and fills what every lease query selects first: id, job_id, first_batch,
 * batch_count. */
static void lease_head_from_row(sqlite3_stmt *s, struct lease *l)
{
	memset(l, 0, sizeof *l);
	l->id = sqlite3_column_int64(s, 0);
	l->job_id = sqlite3_column_int64(s, 1);
	l->first_batch = (uint64_t)sqlite3_column_int64(s, 2);
	l->batch_count = (uint64_t)sqlite3_column_int64(s, 3);
}

/* Runs a bound statement selecting at most one job (JOB_COLS) into *j. TALLY_ENOTFOUND. */
static enum tally_err job_read_one(struct db *db, sqlite3_stmt *s, struct job *j)
{
	enum tally_err rc;
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE)
		rc = TALLY_ENOTFOUND;
	else if (step != SQLITE_ROW)
		rc = db_fail(db, "reading job");
	else
		rc = job_from_row(db, s, j);
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_job_get(struct db *db, int64_t id, struct job *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_GET);
	sqlite3_bind_int64(s, 1, id);
	return job_read_one(db, s, out);
}

enum tally_err db_job_by_key(struct db *db, const char *key, struct job *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_BY_KEY);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	return job_read_one(db, s, out);
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
		lease_head_from_row(s, out);
		out->state = (enum lease_state)sqlite3_column_int(s, 4);
		out->granted_at = sqlite3_column_int64(s, 5);
		out->expires_at = sqlite3_column_int64(s, 6);
		snprintf(out->worker, sizeof out->worker, "%s", worker ? worker : "");
		out->spec.kernel = kernel ? kernel_named(kernel) : NULL;
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


/* Binds a time: NULL when unset (0). */
static void bind_time(sqlite3_stmt *s, int i, int64_t t)
{
	if (t)
		sqlite3_bind_int64(s, i, t);
	else
		sqlite3_bind_null(s, i);
}

enum tally_err db_job_save(struct db *db, const struct job *job, const char *key,
			   uint64_t next_batch, const char *last_failure)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_SAVE);
	char keys[KERNEL_MAX_KEYS * KERNEL_KEY_MAX];

	sqlite3_bind_int64(s, 1, job->id);
	sqlite3_bind_text(s, 2, job->spec.kernel->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, (int)job->spec.kernel_version);
	sqlite3_bind_int64(s, 4, (int64_t)job->spec.samples);
	sqlite3_bind_int64(s, 5, (int64_t)job->spec.batch_size);
	sqlite3_bind_int64(s, 6, (int64_t)job->spec.seed);
	sqlite3_bind_int(s, 7, (int)job->state);
	sqlite3_bind_int64(s, 8, (int64_t)job->batches_total);
	sqlite3_bind_int64(s, 9, (int64_t)next_batch);
	sqlite3_bind_int64(s, 10, (int64_t)job->batches_done);
	sqlite3_bind_int64(s, 11, (int64_t)job->batches_leased);
	sqlite3_bind_int64(s, 12, (int64_t)job->samples_done);
	for (int i = 0; i < KERNEL_MAX_KEYS; i++)
		sqlite3_bind_int64(s, 13 + i, (int64_t)job->counts[i]);
	if (job->error[0])
		sqlite3_bind_text(s, 21, job->error, -1, SQLITE_STATIC);
	if (last_failure && last_failure[0])
		sqlite3_bind_text(s, 22, last_failure, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 23, job->created_at);
	bind_time(s, 24, job->started_at);
	bind_time(s, 25, job->finished_at);
	if (key && key[0])
		sqlite3_bind_text(s, 26, key, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 27, job->spec.verify);
	sqlite3_bind_int64(s, 28, (int64_t)job->checks_passed);
	sqlite3_bind_int64(s, 29, (int64_t)job->checks_pending);
	sqlite3_bind_int64(s, 30, (int64_t)job->mismatches);
	if (job->quarantined[0])
		sqlite3_bind_text(s, 31, job->quarantined, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 32, job->first_lease_id);
	sqlite3_bind_text(s, 33, job->spec.params[0] ? job->spec.params : "{}", -1, SQLITE_STATIC);
	kernel_keys_format(&job->keys, keys, sizeof keys);
	sqlite3_bind_text(s, 34, keys, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 35, job->spec.target_stderr);
	return db_exec(db, s, "saving a job");
}

enum tally_err db_ranges_save(struct db *db, int64_t job_id, const struct batch_range *ranges,
			      size_t n)
{
	sqlite3_stmt *s = db_stmt(db, ST_RANGE_DROP_JOB);
	enum tally_err rc;

	sqlite3_bind_int64(s, 1, job_id);
	if ((rc = db_exec(db, s, "saving free ranges")))
		return rc;
	for (size_t i = 0; i < n; i++) {
		s = db_stmt(db, ST_RANGE_INSERT);
		sqlite3_bind_int64(s, 1, job_id);
		sqlite3_bind_int64(s, 2, (int64_t)ranges[i].first);
		sqlite3_bind_int64(s, 3, (int64_t)ranges[i].count);
		sqlite3_bind_int(s, 4, (int)ranges[i].failures);
		sqlite3_bind_int(s, 5, (int)ranges[i].strikes);
		if ((rc = db_exec(db, s, "saving free ranges")))
			return rc;
	}
	return TALLY_OK;
}

enum tally_err db_lease_save(struct db *db, const struct lease *l, int64_t finished_at,
			     const uint64_t *counts)
{
	sqlite3_stmt *s = db_stmt(db, ST_LEASE_SAVE);

	sqlite3_bind_int64(s, 1, l->id);
	sqlite3_bind_int64(s, 2, l->job_id);
	sqlite3_bind_int64(s, 3, (int64_t)l->first_batch);
	sqlite3_bind_int64(s, 4, (int64_t)l->batch_count);
	sqlite3_bind_text(s, 5, l->worker, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, (int)l->state);
	sqlite3_bind_int64(s, 7, l->granted_at);
	sqlite3_bind_int64(s, 8, l->expires_at);
	bind_time(s, 9, finished_at);
	sqlite3_bind_int(s, 10, (int)l->failures);
	sqlite3_bind_int(s, 11, (int)l->strikes);
	if (l->check_of)
		sqlite3_bind_int64(s, 12, l->check_of);
	for (int i = 0; counts && i < KERNEL_MAX_KEYS; i++)
		sqlite3_bind_int64(s, 13 + i, (int64_t)counts[i]);
	return db_exec(db, s, "saving a lease");
}

enum tally_err db_check_save(struct db *db, int64_t lease_id, int state)
{
	sqlite3_stmt *s = db_stmt(db, ST_CHECK_SAVE);
	sqlite3_bind_int64(s, 1, lease_id);
	sqlite3_bind_int(s, 2, state);
	return db_exec(db, s, "saving a check");
}

enum tally_err db_quarantine_save(struct db *db, const char *worker, int64_t at, int64_t job_id,
				  const char *reason)
{
	sqlite3_stmt *s = db_stmt(db, ST_QUAR_SAVE);
	sqlite3_bind_text(s, 1, worker, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, at);
	if (job_id)
		sqlite3_bind_int64(s, 3, job_id);
	sqlite3_bind_text(s, 4, reason, -1, SQLITE_STATIC);
	return db_exec(db, s, "saving a quarantine");
}

/* Fills a done lease and its counts from a row selected with RESULT_COLS. */
static void lease_counts_from_row(sqlite3_stmt *s, struct lease *l, uint64_t *counts)
{
	const char *worker = (const char *)sqlite3_column_text(s, 4);
	lease_head_from_row(s, l);
	snprintf(l->worker, sizeof l->worker, "%s", worker ? worker : "");
	l->check_of = sqlite3_column_int64(s, 5);
	l->state = LEASE_DONE;
	for (int i = 0; i < KERNEL_MAX_KEYS; i++)
		counts[i] = (uint64_t)sqlite3_column_int64(s, 6 + i);
	l->granted_at = sqlite3_column_int64(s, 14);
	l->expires_at = sqlite3_column_int64(s, 15);
	l->failures = (unsigned)sqlite3_column_int(s, 16);
	l->strikes = (unsigned)sqlite3_column_int(s, 17);
}

/* Runs a bound statement selecting RESULT_COLS, calling each(ctx, lease, counts) per row until
 * one returns non-zero (returned). */
static enum tally_err each_result(struct db *db, sqlite3_stmt *s, const char *what,
				  int (*each)(void *ctx, const struct lease *l, const uint64_t *c),
				  void *ctx)
{
	struct lease l;
	uint64_t counts[KERNEL_MAX_KEYS];
	int step, stop = 0;
	enum tally_err rc = TALLY_OK;

	while (!stop && (step = sqlite3_step(s)) == SQLITE_ROW) {
		lease_counts_from_row(s, &l, counts);
		stop = each(ctx, &l, counts);
	}
	if (!stop && step != SQLITE_DONE)
		rc = db_fail(db, what);
	sqlite3_reset(s);
	return rc ? rc : (enum tally_err)stop;
}

enum tally_err db_worker_results(struct db *db, const char *worker, int64_t since,
				 int (*each)(void *ctx, const struct lease *l, const uint64_t *c),
				 void *ctx)
{
	sqlite3_stmt *s = db_stmt(db, ST_WORKER_RESULTS);
	sqlite3_bind_text(s, 1, worker, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, since);
	return each_result(db, s, "reading a worker's results", each, ctx);
}

enum tally_err db_job_results(struct db *db, int64_t job_id,
			      int (*each)(void *ctx, const struct lease *l, const uint64_t *c),
			      void *ctx)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_RESULTS);
	sqlite3_bind_int64(s, 1, job_id);
	return each_result(db, s, "reading a job's results", each, ctx);
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
		rc = db_fail(db, "reading settings");
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

/* Reads one integer from a statement that returns one row. */
static enum tally_err read_one(struct db *db, enum db_stmt which, int64_t *out)
{
	sqlite3_stmt *s = db_stmt(db, which);
	enum tally_err rc = TALLY_OK;
	if (sqlite3_step(s) == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		rc = db_fail(db, "reading");
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_load(struct db *db, const struct db_loader *l, int64_t *max_job_id,
		       int64_t *max_lease_id, int *skipped)
{
	struct job *j = malloc(sizeof *j);
	enum tally_err rc = TALLY_OK;
	sqlite3_stmt *s;
	int step = SQLITE_DONE, stop = 0;

	*skipped = 0;
	if (!j)
		return TALLY_ENOMEM;
	if ((rc = read_one(db, ST_JOB_MAX, max_job_id)) ||
	    (rc = read_one(db, ST_LEASE_MAX, max_lease_id)))
		goto done;
	s = db_stmt(db, ST_JOB_LOAD);
	while (!stop && (step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *failure = (const char *)sqlite3_column_text(s, JOB_NCOLS + 1);
		if (job_from_row(db, s, j)) {
			(*skipped)++; /* a kernel this build lacks: it stays as stored */
			continue;
		}
		stop = l->job(l->ctx, j, (uint64_t)sqlite3_column_int64(s, JOB_NCOLS),
			      failure ? failure : "");
	}
	if (!stop && step != SQLITE_DONE)
		rc = db_fail(db, "loading jobs");
	sqlite3_reset(s);
	if (rc || stop)
		goto done;
	s = db_stmt(db, ST_RANGE_LOAD);
	while (!stop && (step = sqlite3_step(s)) == SQLITE_ROW) {
		struct batch_range r = { (uint64_t)sqlite3_column_int64(s, 1),
					 (uint64_t)sqlite3_column_int64(s, 2),
					 (unsigned)sqlite3_column_int(s, 3),
					 (unsigned)sqlite3_column_int(s, 4) };
		stop = l->range(l->ctx, sqlite3_column_int64(s, 0), &r);
	}
	if (!stop && step != SQLITE_DONE)
		rc = db_fail(db, "loading free ranges");
	sqlite3_reset(s);
	if (rc || stop)
		goto done;
	if ((rc = each_result(db, db_stmt(db, ST_CHECK_LOAD), "loading checks", l->check,
			      l->ctx)) ||
	    (rc = each_result(db, db_stmt(db, ST_OPINION_LOAD), "loading checks", l->opinion,
			      l->ctx)))
		goto done;
	s = db_stmt(db, ST_LEASE_LOAD);
	while (!stop && (step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *worker = (const char *)sqlite3_column_text(s, 6);
		struct lease lease;
		lease_head_from_row(s, &lease);
		lease.state = LEASE_ACTIVE;
		lease.granted_at = sqlite3_column_int64(s, 4);
		lease.expires_at = sqlite3_column_int64(s, 5);
		lease.failures = (unsigned)sqlite3_column_int(s, 7);
		lease.strikes = (unsigned)sqlite3_column_int(s, 8);
		lease.check_of = sqlite3_column_int64(s, 9);
		snprintf(lease.worker, sizeof lease.worker, "%s", worker ? worker : "");
		stop = l->lease(l->ctx, &lease);
	}
	if (!stop && step != SQLITE_DONE)
		rc = db_fail(db, "loading leases");
	sqlite3_reset(s);
	if (rc || stop)
		goto done;
	s = db_stmt(db, ST_QUAR_LOAD);
	while (!stop && (step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *worker = (const char *)sqlite3_column_text(s, 0);
		const char *reason = (const char *)sqlite3_column_text(s, 1);
		stop = l->quarantine(l->ctx, worker ? worker : "", reason ? reason : "",
				     sqlite3_column_int64(s, 2));
	}
	if (!stop && step != SQLITE_DONE)
		rc = db_fail(db, "loading quarantined workers");
	sqlite3_reset(s);
done:
	free(j);
	return rc ? rc : stop ? (enum tally_err)stop : TALLY_OK;
}

enum tally_err db_job_counts(struct db *db, uint64_t counts[5])
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_COUNTS);
	enum tally_err rc = TALLY_OK;
	int step;

	memset(counts, 0, 5 * sizeof counts[0]);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		int state = sqlite3_column_int(s, 0);
		if (state >= 0 && state < 5)
			counts[state] = (uint64_t)sqlite3_column_int64(s, 1);
	}
	if (step != SQLITE_DONE)
		rc = db_fail(db, "counting jobs");
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_check(struct db *db)
{
	int64_t v;
	return read_one(db, ST_JOB_MAX, &v);
}
