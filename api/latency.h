/* Latency histograms, as GET /metrics shows them: fixed upper bounds in seconds (the last is
 * +Inf) and a count per bucket (not cumulative), with the count and sum of what was added.
 * Pure C. Not thread-safe: each histogram belongs to the thread that adds to it. */
#ifndef TALLY_LATENCY_H
#define TALLY_LATENCY_H

#include <stdint.h>

#define LATENCY_BUCKETS 13

/* The buckets' upper bounds in seconds, rising; latency_le[LATENCY_BUCKETS - 1] is +Inf. */
extern const double latency_le[LATENCY_BUCKETS];

/* A histogram; all zero is empty. */
struct latency {
	uint64_t bucket[LATENCY_BUCKETS];
	uint64_t count;
	double sum_s;
};

/* Adds one observation of us microseconds to the first bucket whose bound is at least that.
 * Can't fail. */
void latency_add(struct latency *l, int64_t us);

#endif
