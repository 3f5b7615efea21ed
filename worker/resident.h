/* Resident programs: kernel exec with "resident": true. A job's program is started once per
 * compute thread and kept; each batch is one line of JSON written to its stdin, answered by one
 * line of counts on its stdout. A thread keeps the programs of at most RESIDENT_JOBS_MAX jobs,
 * never shared between jobs. A program is restarted after any failure, and stopped when its job
 * ends, after --exec-idle seconds without a batch, or with the worker (also when the worker is
 * killed: a death signal).
 *
 * Owned by the pull loop (loop.c); slot i is compute thread i's while a lease computes. The loop
 * calls resident_end_job between leases, and resident_reap between leases and while one
 * computes (a program in a batch is never idle, and a thread's other jobs' programs may be). */
#ifndef TALLY_RESIDENT_H
#define TALLY_RESIDENT_H

#include <stdint.h>
#include <sys/types.h>
#include "exec.h"
#include "kernel.h"

#define RESIDENT_JOBS_MAX 4          /* jobs' programs a thread keeps */
#define RESIDENT_LINE_MAX 65536      /* bytes of an answer, its newline included */
#define RESIDENT_RSS_EVERY_MS 100    /* how often a program's resident set is looked at */

struct resident;

/* Programs for nslots compute threads. idle_s: stop a program after that many seconds without a
 * batch (0: never). max_rss_mib: restart a program whose resident set passes it (0: no limit).
 * Returns NULL when out of memory or when the thread that starts programs cannot start. */
struct resident *resident_new(int nslots, int64_t idle_s, int64_t max_rss_mib);
/* Stops every program and frees r (NULL: nothing). */
void resident_free(struct resident *r);

/* Runs one batch of j on slot's program for j's job, starting it when needed: adds its counts
 * to counts[] as exec_batch() does. Returns 0, or -1 with a message in err (the program has then
 * been stopped; the next batch starts another). *stop set: stops the program, returns -1. */
int resident_batch(struct resident *r, int slot, const struct exec_job *j, uint64_t seed,
		   uint64_t batch, uint64_t first, uint64_t n, const int *stop,
		   struct count_keys *keys, uint64_t *counts, char *err, size_t errlen);

/* Stops the programs of job_id (it ended). Returns how many were stopped. */
int resident_end_job(struct resident *r, const char *job_id);

/* Stops the programs idle for idle_s at now_ms (timefmt_mono_ms()'s clock), but for those in a
 * batch and in a slot whose thread is picking a program (they are looked at next time). Returns the
 * ms until the next one will be, or -1 when none will (no program, or no idle limit). Never
 * waits for a compute thread. */
int64_t resident_reap(struct resident *r, int64_t now_ms);

/* The pid of slot's program for job_id, or 0 (for tests). */
pid_t resident_pid(struct resident *r, int slot, const char *job_id);

#endif
