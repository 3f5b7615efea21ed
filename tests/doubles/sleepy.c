/* sleepy: a kernel plug-in for the test of speculative execution (tests/integration/
 * test_speculation.py). A batch counts its samples and itself, and takes a set time to do it:
 * TALLY_TEST_BATCH_MS (50 by default) times TALLY_TEST_SLOWDOWN (1 by default), both read from
 * the worker's environment, so that one worker of a fleet can be made slower than the others.
 * It sleeps rather than computes, so the times hold on a busy machine. Never installed. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <time.h>
#include "tally/kernel.h"

#define SLEEPY_SLICE_MS 5 /* how often a batch looks whether it is still wanted */

static const char *const keys[] = { "samples", "batches", NULL };

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	char *end;
	long n = v ? strtol(v, &end, 10) : dflt;
	return v && (*end || n < 0) ? dflt : n;
}

static int run(void *state, const struct tally_batch *b, uint64_t *counts, char *err,
	       size_t errlen)
{
	long ms = env_long("TALLY_TEST_BATCH_MS", 50) * env_long("TALLY_TEST_SLOWDOWN", 1);
	struct timespec slice = { 0, SLEEPY_SLICE_MS * 1000000L };
	(void)state;
	(void)err;
	(void)errlen;
	for (; ms > 0 && !(b->stop && *b->stop); ms -= SLEEPY_SLICE_MS)
		nanosleep(&slice, NULL);
	counts[0] += b->samples;
	counts[1] += 1;
	return 0;
}

static const struct tally_kernel sleepy = {
	.abi = TALLY_KERNEL_ABI,
	.name = "sleepy",
	.version = 1,
	.keys = keys,
	.run = run,
};

const struct tally_kernel *tally_kernel_v1(void)
{
	return &sleepy;
}
