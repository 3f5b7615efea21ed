/* The schema, as a list of migrations: schema_migrations[v] takes a database from version v to
 * v + 1 (PRAGMA user_version). To change the schema:
 *   1. append a migration; never edit one that has shipped;
 *   2. bump SCHEMA_VERSION;
 *   3. update the statements in db.c and test a migration from the previous version;
 *   4. a migration runs inside one transaction, so it cannot change what only a VACUUM applies
 *      (auto_vacuum, page_size): db_open does that after migrating, once, when the file's
 *      setting differs (db.c, db_auto_vacuum). The first start of a build that wants such a
 *      setting rewrites the whole file: say so in the release notes (time in proportion to the
 *      file, and free disk about its size; a failed VACUUM is logged and tried again at the
 *      next start, the file staying usable as it was). Schema 7 is the first such: incremental
 *      auto-vacuum, so that deleted jobs' pages go back to the file system. */
#ifndef TALLY_SCHEMA_H
#define TALLY_SCHEMA_H

#define SCHEMA_VERSION 7

static const char *const schema_migrations[SCHEMA_VERSION] = {
	/* 1: jobs with range bookkeeping, leases, free ranges. */
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  kernel TEXT NOT NULL,"
	"  kernel_version INTEGER NOT NULL,"
	"  samples INTEGER NOT NULL,"
	"  batch_size INTEGER NOT NULL,"
	"  seed INTEGER NOT NULL," /* the uint64 seed's bits, as int64 */
	"  params TEXT NOT NULL DEFAULT '{}',"
	"  state INTEGER NOT NULL," /* enum job_state */
	"  batches_total INTEGER NOT NULL,"
	"  next_batch INTEGER NOT NULL DEFAULT 0,"
	"  batches_done INTEGER NOT NULL DEFAULT 0,"
	"  batches_leased INTEGER NOT NULL DEFAULT 0,"
	"  samples_done INTEGER NOT NULL DEFAULT 0,"
	"  c0 INTEGER NOT NULL DEFAULT 0, c1 INTEGER NOT NULL DEFAULT 0,"
	"  c2 INTEGER NOT NULL DEFAULT 0, c3 INTEGER NOT NULL DEFAULT 0,"
	"  c4 INTEGER NOT NULL DEFAULT 0, c5 INTEGER NOT NULL DEFAULT 0,"
	"  c6 INTEGER NOT NULL DEFAULT 0, c7 INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT,"
	"  last_failure TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  started_at INTEGER,"
	"  finished_at INTEGER"
	");"
	"CREATE INDEX jobs_state ON jobs(state, id);"
	"CREATE TABLE leases ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id),"
	"  first_batch INTEGER NOT NULL,"
	"  batch_count INTEGER NOT NULL,"
	"  worker TEXT NOT NULL,"
	"  state INTEGER NOT NULL," /* enum lease_state */
	"  granted_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  finished_at INTEGER"
	");"
	"CREATE INDEX leases_live ON leases(expires_at) WHERE state = 0;"
	"CREATE INDEX leases_job ON leases(job_id) WHERE state = 0;"
	"CREATE TABLE free_ranges ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id),"
	"  first_batch INTEGER NOT NULL,"
	"  batch_count INTEGER NOT NULL"
	");"
	"CREATE INDEX free_ranges_job ON free_ranges(job_id, first_batch);",
	/* 2: the coordinator keeps live state in memory and writes it behind. Lease ids become
	 * increasing sequence numbers with random low bits, reserved in blocks recorded in meta.
	 * Version 1's ids were random across the whole range, so its leases go: live ones give
	 * their batches back (their workers' completes then get 404 and the batches are done
	 * again), finished ones are forgotten. Leases are found by id or loaded whole at start,
	 * so the per-job index only cost writes. */
	"INSERT INTO free_ranges(job_id, first_batch, batch_count) "
	"  SELECT job_id, first_batch, batch_count FROM leases WHERE state = 0;"
	"UPDATE jobs SET batches_leased = 0 WHERE state IN (0, 1);"
	"DELETE FROM leases;"
	"DROP INDEX leases_job;"
	"CREATE TABLE meta ("
	"  name TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	");",
	/* 3: poison batches (how many failed leases a range's batches have been in) and
	 * idempotent submits (a client's key names at most one job). */
	"ALTER TABLE free_ranges ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE free_ranges ADD COLUMN strikes INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE leases ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE leases ADD COLUMN strikes INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;"
	"CREATE UNIQUE INDEX jobs_idempotency_key ON jobs(idempotency_key) "
	"  WHERE idempotency_key IS NOT NULL;",
	/* 4: verification by recomputation. A done lease keeps its counts (NULL for leases done
	 * before this version, which can therefore never be discarded); a check lease names the
	 * lease it checks; the checked lease carries the check's state (enum live_check_state);
	 * quarantined workers are remembered. */
	"ALTER TABLE jobs ADD COLUMN verify REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN checks_passed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN checks_pending INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN mismatches INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN quarantined TEXT;"
	"ALTER TABLE jobs ADD COLUMN first_lease INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE leases ADD COLUMN c0 INTEGER; ALTER TABLE leases ADD COLUMN c1 INTEGER;"
	"ALTER TABLE leases ADD COLUMN c2 INTEGER; ALTER TABLE leases ADD COLUMN c3 INTEGER;"
	"ALTER TABLE leases ADD COLUMN c4 INTEGER; ALTER TABLE leases ADD COLUMN c5 INTEGER;"
	"ALTER TABLE leases ADD COLUMN c6 INTEGER; ALTER TABLE leases ADD COLUMN c7 INTEGER;"
	"ALTER TABLE leases ADD COLUMN check_of INTEGER;"
	"ALTER TABLE leases ADD COLUMN check_state INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX leases_checks_pending ON leases(job_id) WHERE check_state = 1;"
	"CREATE INDEX leases_check_of ON leases(check_of) WHERE check_of IS NOT NULL;"
	"CREATE TABLE quarantine ("
	"  worker TEXT PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  job_id INTEGER,"
	"  reason TEXT NOT NULL"
	");",
	/* 5: kernels beyond the built-in ones: a job's count names (open kernels name their own
	 * as batches arrive; newline-separated; '' means the kernel's fixed names). jobs.params
	 * was there from version 1. Early stopping: a job's target_stderr (0: none). */
	("ALTER TABLE jobs ADD COLUMN keys TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE jobs ADD COLUMN target_stderr REAL NOT NULL DEFAULT 0;"),
	/* 6: users. A job's owner (the submitting user's name; '' for jobs of an open coordinator,
	 * and for every job stored before: only an admin sees those) and its priority; an
	 * Idempotency-Key is unique per owner; a user's list is read by owner. */
	("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;"
	 "DROP INDEX jobs_idempotency_key;"
	 "CREATE UNIQUE INDEX jobs_idempotency_key ON jobs(owner, idempotency_key) "
	 "  WHERE idempotency_key IS NOT NULL;"
	 "CREATE INDEX jobs_owner ON jobs(owner, id);"),
	/* 7: retention. A job is deleted with its leases (found by job now: a delete must not scan
	 * every lease), and finished jobs are found by when they finished. The file goes to
	 * incremental auto-vacuum at open (checklist, 4). */
	("CREATE INDEX leases_job ON leases(job_id);"
	 "CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state >= 2;"),
};

#endif
