/* Kernel plug-in "dice", the example of docs/kernels.md: each sample rolls two fair dice; the
 * counts are the doubles rolled and the samples. A batch's rolls come from its own random
 * stream, keyed by (seed, batch) only, so its counts depend on (seed, batch, samples) alone.
 *
 * Built alone: cc -O2 -shared -fPIC -I<tally>/include -o dice.so dice.c -lm */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include "tally/kernel.h"

#define DICE_POLL ((1u << 20) - 1) /* b->stop is polled every 2^20 samples */
/* 2^64 - 4, a multiple of 6: draws from it up are redone, so that x % 6 below it is fair. */
#define DICE_LIMIT (UINT64_MAX - UINT64_MAX % 6)

/* splitmix64 (Steele, Lea and Flood, 2014): advances *s, returns its next 64 random bits. */
static uint64_t dice_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* The first output of a splitmix64 stream that starts at x: a good 64-bit hash of x. */
static uint64_t dice_mix(uint64_t x)
{
	return dice_next(&x);
}

/* One face of a fair die, 0 to 5. */
static unsigned dice_roll(uint64_t *s)
{
	uint64_t x;

	do
		x = dice_next(s);
	while (x >= DICE_LIMIT); /* once in 2^62 draws */
	return (unsigned)(x % 6);
}

static int dice_run(void *state, const struct tally_batch *b, uint64_t *counts, char *err,
		    size_t errlen)
{
	uint64_t s = dice_mix(b->seed ^ dice_mix(b->batch)); /* the batch's stream */
	uint64_t doubles = 0;

	(void)state;
	(void)err;
	(void)errlen;
	for (uint64_t i = 0; i < b->samples; i++) {
		if ((i & DICE_POLL) == 0 && b->stop && *b->stop)
			return 0; /* the counts are thrown away */
		unsigned d1 = dice_roll(&s), d2 = dice_roll(&s);
		doubles += d1 == d2;
	}
	counts[0] += doubles;
	counts[1] += b->samples;
	return 0;
}

static const char *dice_check(const uint64_t *counts, uint64_t samples)
{
	if (counts[1] != samples)
		return "samples differ from the lease's";
	return counts[0] <= counts[1] ? NULL : "more doubles than samples";
}

/* The share of doubles, its standard error and the 1/6 it should approach. */
static int dice_result(const uint64_t *counts, char *out, size_t outlen)
{
	if (counts[1] == 0)
		return -1;
	double n = (double)counts[1], p = (double)counts[0] / n;
	int len = snprintf(out, outlen, "{\"p\": %.17g, \"stderr\": %.17g, \"expected\": %.17g}",
			   p, sqrt(p * (1 - p) / n), 1.0 / 6);
	return len < 0 || (size_t)len >= outlen ? -1 : 0;
}

static const char *const dice_keys[] = { "doubles", "samples", NULL };

static const struct tally_kernel dice_kernel = {
	.abi = TALLY_KERNEL_ABI,
	.name = "dice",
	.version = 1,
	.keys = dice_keys,
	.run = dice_run, /* no params: .open and .close stay NULL */
	.check = dice_check,
	.result = dice_result,
};

const struct tally_kernel *tally_kernel_v1(void)
{
	return &dice_kernel;
}
