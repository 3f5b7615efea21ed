/* Kernel pi: the seed's Monte Carlo estimate with integer coordinates. Each batch draws from
 * PI_LANES interleaved xoshiro256+ streams keyed by (seed, batch, lane), so the counts do not
 * depend on vector width, thread or order. docs/algorithm.md is the specification.
 *
 * Three implementations of the block loop (scalar, AVX2, AVX-512) give bit-identical counts: the
 * lanes are fixed at 8 by the specification, and a vector path only computes 8 (or 2x4) of them at
 * once. The fastest one the CPU has is picked on first use; TALLY_PI_PATH forces one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include "kernel.h"
#include "pi.h"
#include "rng.h"

#define PI_TAG 0x5049000000000001ULL /* "PI", version 1 */
#define PI_LANES 8
#define PI_R2 (1ULL << 62)           /* (2^31)^2: the squared radius */

/* The 8 lanes' xoshiro256 states, word-major so that a vector load takes one word of 8 lanes. */
struct pi_state {
	uint64_t s[4][PI_LANES];
};

typedef uint64_t (*pi_blocks_fn)(struct pi_state *st, uint64_t blocks);
typedef void (*pi_seed_fn)(uint64_t batch_key, struct pi_state *st);

/* Seeds lane l from rng_lane_key(batch_key, l). */
static void pi_seed_scalar(uint64_t batch_key, struct pi_state *st)
{
	for (int l = 0; l < PI_LANES; l++) {
		uint64_t s[4];
		rng_xoshiro_seed(rng_lane_key(batch_key, (uint64_t)l), s);
		for (int w = 0; w < 4; w++)
			st->s[w][l] = s[w];
	}
}

/* One step of every lane, for `blocks` blocks of 8 samples; returns the number inside. */
static uint64_t pi_blocks_scalar(struct pi_state *st, uint64_t blocks)
{
	uint64_t inside = 0;
	uint64_t *s0 = st->s[0], *s1 = st->s[1], *s2 = st->s[2], *s3 = st->s[3];

	for (uint64_t i = 0; i < blocks; i++) {
		for (int l = 0; l < PI_LANES; l++) {
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
	return inside;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t pi_blocks_avx2(struct pi_state *st,
							       uint64_t blocks)
{
	__m256i s0[2], s1[2], s2[2], s3[2], acc[2];
	const __m256i r2 = _mm256_set1_epi64x((long long)PI_R2);
	const __m256i m31 = _mm256_set1_epi64x(0x7FFFFFFF);
	uint64_t out[4], inside = 0;

	for (int h = 0; h < 2; h++) {
		s0[h] = _mm256_loadu_si256((const __m256i *)&st->s[0][4 * h]);
		s1[h] = _mm256_loadu_si256((const __m256i *)&st->s[1][4 * h]);
		s2[h] = _mm256_loadu_si256((const __m256i *)&st->s[2][4 * h]);
		s3[h] = _mm256_loadu_si256((const __m256i *)&st->s[3][4 * h]);
		acc[h] = _mm256_setzero_si256();
	}
	for (uint64_t i = 0; i < blocks; i++) {
		for (int h = 0; h < 2; h++) {
			__m256i r = _mm256_add_epi64(s0[h], s3[h]);
			__m256i t = _mm256_slli_epi64(s1[h], 17);
			s2[h] = _mm256_xor_si256(s2[h], s0[h]);
			s3[h] = _mm256_xor_si256(s3[h], s1[h]);
			s1[h] = _mm256_xor_si256(s1[h], s2[h]);
			s0[h] = _mm256_xor_si256(s0[h], s3[h]);
			s2[h] = _mm256_xor_si256(s2[h], t);
			s3[h] = _mm256_or_si256(_mm256_slli_epi64(s3[h], 45),
						_mm256_srli_epi64(s3[h], 19));
			__m256i x = _mm256_srli_epi64(r, 33);
			__m256i y = _mm256_and_si256(_mm256_srli_epi64(r, 2), m31);
			__m256i d = _mm256_add_epi64(_mm256_mul_epu32(x, x), _mm256_mul_epu32(y, y));
			/* d < 2^63, so the signed compare is exact; true lanes are -1. */
			acc[h] = _mm256_sub_epi64(acc[h], _mm256_cmpgt_epi64(r2, d));
		}
	}
	for (int h = 0; h < 2; h++) {
		_mm256_storeu_si256((__m256i *)&st->s[0][4 * h], s0[h]);
		_mm256_storeu_si256((__m256i *)&st->s[1][4 * h], s1[h]);
		_mm256_storeu_si256((__m256i *)&st->s[2][4 * h], s2[h]);
		_mm256_storeu_si256((__m256i *)&st->s[3][4 * h], s3[h]);
		_mm256_storeu_si256((__m256i *)out, acc[h]);
		inside += out[0] + out[1] + out[2] + out[3];
	}
	return inside;
}

/* splitmix64's finalizer on 8 lanes. */
__attribute__((target("avx512f,avx512dq"))) static inline __m512i pi_fin512(__m512i z)
{
	z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
			       _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ULL));
	z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
			       _mm512_set1_epi64((long long)0x94D049BB133111EBULL));
	return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

/* pi_seed_scalar on 8 lanes at once (the cost that dominates tiny batches). */
__attribute__((target("avx512f,avx512dq"))) static void pi_seed_avx512(uint64_t batch_key,
								      struct pi_state *st)
{
	const __m512i gamma = _mm512_set1_epi64((long long)RNG_GAMMA);
	__m512i x = _mm512_xor_si512(_mm512_set1_epi64((long long)batch_key),
				     _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
	__m512i key = pi_fin512(_mm512_add_epi64(x, gamma)); /* rng_mix(batch_key ^ lane) */
	__m512i any = _mm512_setzero_si512();
	for (int w = 0; w < 4; w++) {
		key = _mm512_add_epi64(key, gamma);
		__m512i s = pi_fin512(key);
		any = _mm512_or_si512(any, s);
		_mm512_storeu_si512(st->s[w], s);
	}
	/* The all-zero state is impossible in practice, but defined: s[0] = 1. */
	__mmask8 zero = _mm512_cmpeq_epi64_mask(any, _mm512_setzero_si512());
	for (int l = 0; zero && l < PI_LANES; l++)
		if (zero & (1u << l))
			st->s[0][l] = 1;
}

__attribute__((target("avx512f"))) static uint64_t pi_blocks_avx512(struct pi_state *st,
								   uint64_t blocks)
{
	__m512i s0 = _mm512_loadu_si512(st->s[0]);
	__m512i s1 = _mm512_loadu_si512(st->s[1]);
	__m512i s2 = _mm512_loadu_si512(st->s[2]);
	__m512i s3 = _mm512_loadu_si512(st->s[3]);
	__m512i acc = _mm512_setzero_si512();
	const __m512i r2 = _mm512_set1_epi64((long long)PI_R2);
	const __m512i m31 = _mm512_set1_epi64(0x7FFFFFFF);
	const __m512i one = _mm512_set1_epi64(1);

	for (uint64_t i = 0; i < blocks; i++) {
		__m512i r = _mm512_add_epi64(s0, s3);
		__m512i t = _mm512_slli_epi64(s1, 17);
		s2 = _mm512_xor_si512(s2, s0);
		s3 = _mm512_xor_si512(s3, s1);
		s1 = _mm512_xor_si512(s1, s2);
		s0 = _mm512_xor_si512(s0, s3);
		s2 = _mm512_xor_si512(s2, t);
		s3 = _mm512_rol_epi64(s3, 45);
		__m512i x = _mm512_srli_epi64(r, 33);
		__m512i y = _mm512_and_si512(_mm512_srli_epi64(r, 2), m31);
		__m512i d = _mm512_add_epi64(_mm512_mul_epu32(x, x), _mm512_mul_epu32(y, y));
		acc = _mm512_mask_add_epi64(acc, _mm512_cmplt_epu64_mask(d, r2), acc, one);
	}
	_mm512_storeu_si512(st->s[0], s0);
	_mm512_storeu_si512(st->s[1], s1);
	_mm512_storeu_si512(st->s[2], s2);
	_mm512_storeu_si512(st->s[3], s3);
	return (uint64_t)_mm512_reduce_add_epi64(acc);
}
#endif

static const struct {
	const char *name;
	pi_seed_fn seed;
	pi_blocks_fn fn;
} pi_paths[] = {
	{ "scalar", pi_seed_scalar, pi_blocks_scalar },
#if defined(__x86_64__)
	{ "avx2", pi_seed_scalar, pi_blocks_avx2 },
	{ "avx512", pi_seed_avx512, pi_blocks_avx512 },
#endif
};
#define PI_NPATHS (sizeof pi_paths / sizeof pi_paths[0])

/* The chosen path; -1 until the first use picks one. Written once, read racily but benignly:
 * every thread that races computes the same value. */
static int pi_chosen = -1;

int pi_path_supported(const char *name)
{
	if (!strcmp(name, "scalar"))
		return 1;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (!strcmp(name, "avx2"))
		return __builtin_cpu_supports("avx2");
	if (!strcmp(name, "avx512"))
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#endif
	return 0;
}

int pi_set_path(const char *name)
{
	for (size_t i = 0; i < PI_NPATHS; i++) {
		if (!strcmp(pi_paths[i].name, name) && pi_path_supported(name)) {
			__atomic_store_n(&pi_chosen, (int)i, __ATOMIC_RELAXED);
			return 0;
		}
	}
	return -1;
}

const char *pi_path(void)
{
	int c = __atomic_load_n(&pi_chosen, __ATOMIC_RELAXED);
	if (c < 0) {
		const char *want = getenv("TALLY_PI_PATH");
		c = 0;
		if (want && *want) {
			for (size_t i = 0; i < PI_NPATHS; i++)
				if (!strcmp(pi_paths[i].name, want) && pi_path_supported(want))
					c = (int)i;
		} else {
			for (size_t i = 0; i < PI_NPATHS; i++)
				if (pi_path_supported(pi_paths[i].name))
					c = (int)i; /* the table is in order of preference, last best */
		}
		__atomic_store_n(&pi_chosen, c, __ATOMIC_RELAXED);
	}
	return pi_paths[c].name;
}

/* Blocks per call of the block loop: about a millisecond, so that a stop is seen at once. */
#define PI_CHUNK (1ULL << 18)

static void pi_run(uint64_t seed, uint64_t batch, uint64_t first, uint64_t n, const int *stop,
		   uint64_t *out)
{
	struct pi_state st;
	uint64_t inside = 0, blocks = n / PI_LANES;
	pi_blocks_fn fn;
	(void)first;

	pi_path();
	int path = __atomic_load_n(&pi_chosen, __ATOMIC_RELAXED);
	/* rng_stream_key(PI_TAG, seed, batch, lane), with the batch's part shared by the lanes. */
	pi_paths[path].seed(rng_batch_key(PI_TAG, seed, batch), &st);
	fn = pi_paths[path].fn;
	while (blocks) {
		uint64_t chunk = blocks < PI_CHUNK ? blocks : PI_CHUNK;
		inside += fn(&st, chunk);
		blocks -= chunk;
		if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED))
			return;
	}
	/* The last n % 8 samples: one more step of the first lanes. */
	for (uint64_t l = 0; l < n % PI_LANES; l++) {
		uint64_t s[4] = { st.s[0][l], st.s[1][l], st.s[2][l], st.s[3][l] };
		uint64_t r = rng_xoshiro_next(s);
		uint64_t x = r >> 33, y = (r >> 2) & 0x7FFFFFFFULL;
		inside += x * x + y * y < PI_R2;
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

static int pi_stderr(const uint64_t *counts, double *out)
{
	double p;
	if (!counts[1])
		return -1;
	p = (double)counts[0] / (double)counts[1];
	*out = 4.0 * sqrt(p * (1.0 - p) / (double)counts[1]);
	return 0;
}

static json_t *pi_result(const uint64_t *counts)
{
	double e;
	if (pi_stderr(counts, &e))
		return NULL;
	return json_pack("{s:f,s:f}", "pi", 4.0 * (double)counts[0] / (double)counts[1], "stderr",
			 e);
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
	.stderr_of = pi_stderr,
};
