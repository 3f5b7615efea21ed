/* Kernel pi: the seed's Monte Carlo estimate with integer coordinates. Each batch draws from
 * PI_LANES interleaved xoshiro256+ streams keyed by (seed, batch, lane), so the counts do not
 * depend on vector width, thread or order. docs/algorithm.md is the specification. */
#include <math.h>
#include "kernel.h"
#include "rng.h"

#define PI_TAG 0x5049000000000001ULL /* "PI", version 1 */
#define PI_LANES 8
#define PI_R2 (1ULL << 62)           /* (2^31)^2: the squared radius */

static void pi_run(uint64_t seed, uint64_t batch, uint64_t first, uint64_t n, uint64_t *out)
{
	uint64_t s0[PI_LANES], s1[PI_LANES], s2[PI_LANES], s3[PI_LANES];
	uint64_t inside = 0;
	(void)first;

	for (int l = 0; l < PI_LANES; l++) {
		uint64_t s[4];
		rng_xoshiro_seed(rng_stream_key(PI_TAG, seed, batch, (uint64_t)l), s);
		s0[l] = s[0];
		s1[l] = s[1];
		s2[l] = s[2];
		s3[l] = s[3];
	}
	for (uint64_t i = 0; i < n; i += PI_LANES) {
		uint64_t lanes = n - i < PI_LANES ? n - i : PI_LANES;
		for (uint64_t l = 0; l < lanes; l++) {
			uint64_t r = s0[l] + s3[l];
			uint64_t t = s1[l] << 17;
			s2[l] ^= s0[l];
			s3[l] ^= s1[l];
			s1[l] ^= s2[l];
			s0[l] ^= s3[l];
			s2[l] ^= t;
			s3[l] = rng_rotl(s3[l], 45);
			uint64_t x = r >> 33;
			uint64_t y = (r >> 2) & 0x7FFFFFFFULL;
			inside += x * x + y * y < PI_R2;
		}
	}
	out[0] += inside;
	out[1] += n;
}

static const char *pi_check(const uint64_t *counts, uint64_t samples)
{
	if (counts[1] != samples)
		return "counts.samples: not the lease's sample count";
	if (counts[0] > counts[1])
		return "counts.inside: greater than counts.samples";
	return NULL;
}

static json_t *pi_result(const uint64_t *counts)
{
	if (!counts[1])
		return NULL;
	double p = (double)counts[0] / (double)counts[1];
	return json_pack("{s:f,s:f}", "pi", 4.0 * p, "stderr",
			 4.0 * sqrt(p * (1.0 - p) / (double)counts[1]));
}

static const char *const pi_keys[] = { "inside", "samples" };

const struct kernel kernel_pi = {
	.name = "pi",
	.version = 1,
	.nkeys = 2,
	.keys = pi_keys,
	.run = pi_run,
	.check = pi_check,
	.result = pi_result,
};
