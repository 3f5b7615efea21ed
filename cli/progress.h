/* How the CLI shows a job: one line of progress (a bar on a terminal), and the summary of a job
 * for `tally status`, both from the job's JSON as the coordinator sends it. Pure functions. */
#ifndef TALLY_PROGRESS_H
#define TALLY_PROGRESS_H

#include <stddef.h>
#include <jansson.h>

/* Writes into out one line for job (no newline): on a terminal (bar) a bar of done/total,
 * always the percentage, samples done of all, samples/s, the time left and the estimate with
 * its standard error, e.g. "[#####     ] 52.0%  5.20e9/1.00e10 samples  1.99e9/s  ETA 2s
 * pi = 3.141618 +- 0.000023". */
void progress_line(const json_t *job, int bar, char *out, size_t n);
/* Writes "job 7: succeeded, 1.00e10 samples in 1.7 s (5.9e9/s); pi = 3.14159 +- 1.6e-05"
 * (with the error when the job failed; "job 7 (alice, priority 5): ..." for a job with an owner
 * or a priority). */
void progress_summary(const json_t *job, char *out, size_t n);
/* Returns 1 when the job can no longer change (succeeded, failed, cancelled). */
int progress_final(const json_t *job);

#endif
