/* Latency histograms for GET /metrics: requests by route, and the event loop's commits. */
#include <math.h>
#include <stddef.h>
#include "latency.h"

const double latency_le[LATENCY_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, INFINITY
};

void latency_add(struct latency *l, int64_t us)
{
	double s = (double)us / 1e6;
	size_t i = 0;
	while (i + 1 < LATENCY_BUCKETS && s > latency_le[i])
		i++;
	l->bucket[i]++;
	l->count++;
	l->sum_s += s;
}
