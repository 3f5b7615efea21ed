/* The job and the lease as both sides see them: typed structs, no JSON, no SQL.
 * A job's batches are 0..B-1, batch b covering samples [b*batch_size, min((b+1)*batch_size,
 * samples)). Every batch is pending, leased (in exactly one live lease, or in two: a lease and
 * its speculative copy, server/spec.h) or done. */
#ifndef TALLY_JOB_H
#define TALLY_JOB_H

#include <stddef.h>
#include <stdint.h>
#include "wire.h"

#define JOB_SAMPLES_MAX WIRE_SAMPLES_MAX
#define JOB_BATCH_SIZE_DEFAULT 100000ULL
#define JOB_ERROR_MAX WIRE_ERROR_MAX
#define WORKER_NAME_MAX WIRE_WORKER_NAME_MAX
#define JOB_KEY_MAX WIRE_KEY_MAX
#define JOB_QUARANTINED_MAX (4 * WORKER_NAME_MAX) /* names a job keeps of workers it caught */

#define KERNEL_NAME_MAX WIRE_KERNEL_NAME_MAX
#define KERNEL_MAX_KEYS WIRE_COUNTS_MAX
#define KERNEL_KEY_MAX WIRE_COUNT_NAME_MAX
#define KERNEL_PARAMS_MAX WIRE_PARAMS_MAX

struct kernel; /* kernels/kernel.h */

/* The names of a job's counts, in the order of its counts arrays. A kernel with code here fixes
 * them; an open kernel's batches name their own, and the job's list grows (never reorders) as
 * new names arrive. */
struct count_keys {
	size_t n;
	char name[KERNEL_MAX_KEYS][KERNEL_KEY_MAX];
};

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED };

/* What a client submits, once validated. */
struct job_spec {
	const struct kernel *kernel; /* static */
	/* The kernel's name (kernel_name_of() reads it). A submission's (decode_job_spec): kernel
	 * is then the one with code here, or kernel_placeholder() until the job in memory makes
	 * the name a kernel of its own (kernel_named). A job read back from the store names its
	 * kernel here too: kernel is the placeholder when the name is no kernel now. May be ""
	 * where kernel is not the placeholder (kernel->name is then the name). */
	char kernel_name[KERNEL_NAME_MAX];
	uint64_t samples;
	uint64_t batch_size;
	uint64_t seed;
	/* Who submitted it ("" when the coordinator has no users: an open one) and its priority,
	 * WIRE_PRIORITY_MIN..WIRE_PRIORITY_MAX (0 by default): a lease goes to the highest priority
	 * job with pending work, and among equals each owner gets an equal share. */
	char owner[WIRE_USER_NAME_MAX];
	int priority;
	double verify;           /* the fraction of completed leases computed again to check */
	double target_stderr;    /* stop once a prefix's result has a stderr this small (0: none) */
	/* The version the job is computed with: the kernel's here, or for a kernel known by name
	 * only, the version the first worker given a lease offered (0 until then). */
	unsigned kernel_version;
	/* The kernel's params, compact JSON of at most KERNEL_PARAMS_MAX - 1 bytes; NULL or "{}"
	 * when none (job_params() reads either as "{}"). Borrowed: whoever fills a spec says how
	 * long its text lives (a job in memory owns its copy: server/jobtab.h). */
	const char *params;
};

/* A job's full status. Times are ms since the epoch, 0 when unset. */
struct job {
	int64_t id;
	struct job_spec spec;
	enum job_state state;
	uint64_t batches_total;
	uint64_t batches_done;
	uint64_t batches_leased;
	uint64_t samples_done;
	struct count_keys keys;           /* the names of counts[] */
	uint64_t counts[KERNEL_MAX_KEYS]; /* in keys' order */
	/* Why it failed, at most JOB_ERROR_MAX - 1 bytes; NULL or "" when it did not (job_error()
	 * reads either as ""). Borrowed, like spec.params. */
	const char *error;
	/* Verification (spec.verify): checks of completed leases that agreed (or were settled in
	 * their favour), checks still waiting for a second (or third...) opinion, checks where
	 * workers disagreed, and the workers this job caught lying, one per line. */
	uint64_t checks_passed;
	uint64_t checks_pending;
	uint64_t mismatches;
	char quarantined[JOB_QUARANTINED_MAX];
	int64_t first_lease_id; /* its first lease's id, 0 before it has one */
	int64_t created_at;
	int64_t started_at;
	int64_t finished_at;
};

/* Batches [first, first + count) of one job, how many failed leases they have been in, and how
 * many of those were leases of one batch alone (strikes: each names its batch). */
struct batch_range {
	uint64_t first, count;
	unsigned failures;
	unsigned strikes;
};

/* A discarded lease was done, but its worker was later caught lying: its counts were taken back
 * out of its job and its batches computed again. */
enum lease_state {
	LEASE_ACTIVE,
	LEASE_DONE,
	LEASE_EXPIRED,
	LEASE_FAILED,
	LEASE_CANCELLED,
	LEASE_DISCARDED
};

/* A lease on batches [first_batch, first_batch + batch_count) of one job. A check lease
 * (check_of != 0) computes again the batches of lease check_of, done by another worker: its
 * counts are compared with that lease's, never added to the job. */
struct lease {
	int64_t id;
	int64_t job_id;
	struct job_spec spec; /* the job's */
	uint64_t first_batch;
	uint64_t batch_count;
	enum lease_state state;
	int64_t granted_at;
	int64_t expires_at;
	unsigned failures; /* failed leases its batches were in before this one */
	unsigned strikes;  /* of those, failed leases of its batch alone (a one-batch lease) */
	int64_t check_of;
	char worker[WORKER_NAME_MAX];
};

/* Returns s's params: "{}" when it has none. */
const char *job_params(const struct job_spec *s);
/* Returns j's error: "" when it has none. */
const char *job_error(const struct job *j);

/* Returns the lowercase name of a state ("queued", ...). Static; can't fail. */
const char *job_state_name(enum job_state s);
/* Parses a state name. Returns 0, or -1 when s names no state. */
int job_state_parse(const char *s, enum job_state *out);
/* Returns 1 when the job can no longer change (succeeded, failed, cancelled). */
int job_is_final(enum job_state s);
/* Early stopping (job_spec.target_stderr). A job's result is evaluated over prefixes of its
 * batches that end at fixed boundaries, the same for every job whatever its size: every batch
 * count with at most three significant bits (1, 2, ... 8, 10, 12, 14, 16, 20, 24, 28, 32, 40...).
 * So a prefix stops at most a quarter past where its target was reached, and a job stops at the
 * same boundary with the same counts however its batches were computed. Segment i holds batches
 * [job_stop_boundary(i), job_stop_boundary(i + 1)); no lease straddles two. */
#define JOB_STOP_SEGMENTS 244 /* enough for 2^62 batches */
uint64_t job_stop_boundary(size_t i);
size_t job_stop_segment(uint64_t batch);

/* The number of batches of a job: ceil(samples / batch_size). batch_size > 0. */
uint64_t job_batches(uint64_t samples, uint64_t batch_size);
/* The number of samples in batches [first_batch, first_batch + count) of a job. */
uint64_t job_range_samples(uint64_t samples, uint64_t batch_size, uint64_t first_batch,
			   uint64_t count);

/* Returns the number of samples the lease covers. */
uint64_t lease_samples(const struct lease *l);

#endif
