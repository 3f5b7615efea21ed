/* The counter-based random streams behind every kernel: splitmix64 to derive a state from
 * (kernel tag, seed, batch, lane), xoshiro256+ to draw from it. docs/algorithm.md specifies them
 * bit for bit; changing anything here changes every job's counts, so bump the kernel's version. */
#ifndef TALLY_RNG_H
#define TALLY_RNG_H

#include <stdint.h>

#define RNG_GAMMA 0x9E3779B97F4A7C15ULL

/* splitmix64: advances *x by the golden gamma and returns the mixed value. */
static inline uint64_t rng_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += RNG_GAMMA);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* One splitmix64 step from state v: a bijection on 64-bit words. */
static inline uint64_t rng_mix(uint64_t v)
{
	return rng_splitmix64(&v);
}

/* The key shared by every lane of one batch: mix(mix(seed ^ tag) ^ batch). */
static inline uint64_t rng_batch_key(uint64_t tag, uint64_t seed, uint64_t batch)
{
	return rng_mix(rng_mix(seed ^ tag) ^ batch);
}

/* The key of one lane from its batch's key: mix(batch_key ^ lane). (pi's avx512 path computes
 * eight of these at once; tests/unit/test_kernel.c checks every path against this.) */
static inline uint64_t rng_lane_key(uint64_t batch_key, uint64_t lane)
{
	return rng_mix(batch_key ^ lane);
}

/* The key of one lane of one batch: mix(mix(mix(seed ^ tag) ^ batch) ^ lane), as
 * docs/algorithm.md specifies it. */
static inline uint64_t rng_stream_key(uint64_t tag, uint64_t seed, uint64_t batch, uint64_t lane)
{
	return rng_lane_key(rng_batch_key(tag, seed, batch), lane);
}

/* Fills s[0..3] with a xoshiro256 state: four splitmix64 outputs from the key. */
static inline void rng_xoshiro_seed(uint64_t key, uint64_t s[4])
{
	for (int i = 0; i < 4; i++)
		s[i] = rng_splitmix64(&key);
	if (!(s[0] | s[1] | s[2] | s[3]))
		s[0] = 1;
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256+ (Blackman and Vigna): returns the next output and advances s. */
static inline uint64_t rng_xoshiro_next(uint64_t s[4])
{
	uint64_t r = s[0] + s[3];
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl(s[3], 45);
	return r;
}

#endif
