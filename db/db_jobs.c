/* The store's job rows: read one, by key, a page of them, counts by state; saved whole with
 * their free ranges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "db_int.h"
#include "kernel.h"

static int64_t col_time(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, i);
}

enum tally_err db_job_from_row(struct db *db, sqlite3_stmt *s, struct job *j)
{
	const char *kernel = (const char *)sqlite3_column_text(s, 1);
	const char *error = (const char *)sqlite3_column_text(s, 18);
	const char *params = (const char *)sqlite3_column_text(s, 29);
	const char *keys = (const char *)sqlite3_column_text(s, 30);

	memset(j, 0, sizeof *j);
	j->id = sqlite3_column_int64(s, 0);
	j->spec.kernel = kernel ? kernel_stored(kernel) : NULL;
	if (!j->spec.kernel || (keys && kernel_keys_parse(keys, &j->keys))) {
		snprintf(db->errmsg, sizeof db->errmsg, "job %lld: bad kernel %.32s or count names",
			 (long long)j->id, kernel ? kernel : "(null)");
		return TALLY_EDB;
	}
	snprintf(j->spec.kernel_name, sizeof j->spec.kernel_name, "%s", kernel);
	if (!j->keys.n)
		kernel_keys(j->spec.kernel, &j->keys);
	snprintf(db->job_params, sizeof db->job_params, "%s", params ? params : "{}");
	j->spec.params = db->job_params;
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
	if (error) {
		snprintf(db->job_error, sizeof db->job_error, "%s", error);
		j->error = db->job_error;
	}
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
	if (sqlite3_column_type(s, 32) == SQLITE_TEXT)
		snprintf(j->spec.owner, sizeof j->spec.owner, "%s",
			 (const char *)sqlite3_column_text(s, 32));
	j->spec.priority = sqlite3_column_int(s, 33);
	return TALLY_OK;
}

/* Runs a bound statement selecting at most one job (JOB_COLS) into *j. TALLY_ENOTFOUND. */
static enum tally_err job_read_one(struct db *db, sqlite3_stmt *s, struct job *j)
{
	enum tally_err rc;
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE)
		rc = TALLY_ENOTFOUND;
	else if (step != SQLITE_ROW)
		rc = db_error(db, "reading job");
	else
		rc = db_job_from_row(db, s, j);
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_job_get(struct db *db, int64_t id, struct job *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_GET);
	sqlite3_bind_int64(s, 1, id);
	return job_read_one(db, s, out);
}

enum tally_err db_job_by_key(struct db *db, const char *owner, const char *key, struct job *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_BY_KEY);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	return job_read_one(db, s, out);
}

enum tally_err db_job_list(struct db *db, const char *owner, int state, int64_t before,
			   size_t limit, enum tally_err (*each)(void *ctx, const struct job *job),
			   void *ctx)
{
	static const enum db_stmt which[2][2] = { { ST_JOB_LIST_STATE, ST_JOB_LIST },
						  { ST_JOB_LIST_OWNER_STATE, ST_JOB_LIST_OWNER } };
	sqlite3_stmt *s = db_stmt(db, which[owner != NULL][state < 0]);
	enum tally_err rc = TALLY_OK;
	struct job *j = t_malloc(sizeof *j);
	int step = SQLITE_DONE;

	if (!j)
		return TALLY_ENOMEM;
	sqlite3_bind_int64(s, 1, before > 0 ? before : INT64_MAX);
	sqlite3_bind_int64(s, 2, (int64_t)limit);
	if (state >= 0)
		sqlite3_bind_int(s, 3, state);
	if (owner)
		sqlite3_bind_text(s, 4, owner, -1, SQLITE_STATIC);
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW)
		if (!(rc = db_job_from_row(db, s, j)))
			rc = each(ctx, j);
	rc = db_step_end(db, s, step, rc, "listing jobs");
	free(j);
	return rc;
}

enum tally_err db_job_save(struct db *db, const struct job *job, const char *key,
			   uint64_t next_batch, const char *last_failure)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_SAVE);
	char keys[KERNEL_MAX_KEYS * KERNEL_KEY_MAX];

	sqlite3_bind_int64(s, 1, job->id);
	sqlite3_bind_text(s, 2, kernel_name_of(&job->spec), -1, SQLITE_STATIC);
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
	if (job_error(job)[0])
		sqlite3_bind_text(s, 21, job_error(job), -1, SQLITE_STATIC);
	if (last_failure && last_failure[0])
		sqlite3_bind_text(s, 22, last_failure, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 23, job->created_at);
	db_bind_time(s, 24, job->started_at);
	db_bind_time(s, 25, job->finished_at);
	if (key && key[0])
		sqlite3_bind_text(s, 26, key, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 27, job->spec.verify);
	sqlite3_bind_int64(s, 28, (int64_t)job->checks_passed);
	sqlite3_bind_int64(s, 29, (int64_t)job->checks_pending);
	sqlite3_bind_int64(s, 30, (int64_t)job->mismatches);
	if (job->quarantined[0])
		sqlite3_bind_text(s, 31, job->quarantined, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 32, job->first_lease_id);
	sqlite3_bind_text(s, 33, job_params(&job->spec), -1, SQLITE_STATIC);
	kernel_keys_format(&job->keys, keys, sizeof keys);
	sqlite3_bind_text(s, 34, keys, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 35, job->spec.target_stderr);
	sqlite3_bind_text(s, 36, job->spec.owner, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 37, job->spec.priority);
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
		rc = db_error(db, "counting jobs");
	sqlite3_reset(s);
	return rc;
}
