/* Kernel plug-in "primes": counts the primes among a batch's numbers, start + first to
 * start + first + samples - 1, with libprimesieve. Its params are {"start": N}, N from 0 to
 * primesieve's largest number (2^64 - 1), 0 when not given. It depends on libc and
 * libprimesieve only: the params are read by the small strict parser below, not by jansson. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <primesieve.h>
#include "tally/kernel.h"

/* Numbers per primesieve call: b->stop is polled between calls, so a huge batch can be
 * abandoned within one chunk (0.1 to 3 s on one core, more the higher the numbers). Counts do
 * not depend on it. Each call first sieves the primes up to sqrt(its last number): 0.1 ms near
 * 10^11, but 1.2 s near 2^64, so jobs up there want large batches. */
#define PRIMES_CHUNK (1ULL << 30)
#define PRIMES_NAME_MAX 24 /* bytes of an unknown member's name quoted in a message */

/* What open() makes (a new allocation, freed by close()) and every run() of the job reads. */
struct primes_params {
	uint64_t start; /* the number sample 0 stands for */
};

/* Skips JSON whitespace; returns the first other character's address. */
static const char *primes_skip(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Reads a member name at p (just after its opening quote) into name, at most namelen bytes
 * with the NUL, cut short with "..." when longer, escapes and unprintable bytes as '?' (the
 * name only goes into messages and is compared with "start"). Returns the address after the
 * closing quote, or NULL when the string is not closed. */
static const char *primes_name(const char *p, char *name, size_t namelen)
{
	size_t n = 0;

	for (; *p && *p != '"'; p++) {
		char c = *p >= ' ' && *p <= '~' && *p != '\\' ? *p : '?';

		if (*p == '\\' && p[1])
			p++; /* an escaped quote does not end the name */
		if (n + 4 < namelen)
			name[n++] = c;
		else if (n + 4 == namelen)
			n += (size_t)snprintf(name + n, 4, "...");
	}
	name[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

/* Reads a JSON integer from 0 to max at p into *v: digits only, no sign, fraction, exponent
 * or leading zero. Returns the address after it, or NULL. */
static const char *primes_uint(const char *p, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (x > (max - d) / 10)
			return NULL;
		x = x * 10 + d;
	}
	if (*p == '.' || *p == 'e' || *p == 'E')
		return NULL;
	*v = x;
	return p;
}

/* Parses params, a JSON object whose only member may be "start", into *out. Returns 0, or -1
 * (TALLY_KERNEL_PARAMS_UNKNOWN for a member other than "start") with a message naming the
 * problem in err. */
static int primes_parse(const char *params, struct primes_params *out, char *err, size_t errlen)
{
	const uint64_t max = primesieve_get_max_stop();
	const char *p = primes_skip(params);
	int seen = 0;

	out->start = 0;
	if (*p++ != '{')
		goto bad;
	p = primes_skip(p);
	for (int more = *p != '}'; more;) {
		char name[PRIMES_NAME_MAX];

		if (*p++ != '"' || !(p = primes_name(p, name, sizeof name)))
			goto bad;
		if (strcmp(name, "start")) {
			snprintf(err, errlen, "params: unknown member \"%s\" (the only one is \"start\")",
				 name);
			return TALLY_KERNEL_PARAMS_UNKNOWN;
		}
		if (seen++) {
			snprintf(err, errlen, "params.start: given twice");
			return -1;
		}
		p = primes_skip(p);
		if (*p++ != ':')
			goto bad;
		p = primes_uint(primes_skip(p), max, &out->start);
		if (!p) {
			snprintf(err, errlen, "params.start: must be an integer 0 to %" PRIu64, max);
			return -1;
		}
		p = primes_skip(p);
		more = *p == ',';
		if (more)
			p = primes_skip(p + 1);
	}
	if (*p == '}' && *primes_skip(p + 1) == '\0')
		return 0;
bad:
	snprintf(err, errlen, "params: must be a JSON object, {\"start\": N} or {}");
	return -1;
}

/* primesieve's thread count is a process-wide setting: set it once, before any run() (every
 * run() follows an open()), so that no write races with the reads of a running count. */
static once_flag primes_once = ONCE_FLAG_INIT;

static void primes_setup(void)
{
	/* tally runs one batch per worker thread already. */
	primesieve_set_num_threads(1);
}

static int primes_open(const char *params, void **state, char *err, size_t errlen)
{
	struct primes_params *pp = malloc(sizeof *pp);
	int rc;

	if (!pp) {
		snprintf(err, errlen, "primes: out of memory");
		return -1;
	}
	if ((rc = primes_parse(params ? params : "{}", pp, err, errlen))) {
		free(pp);
		return rc; /* -1, or TALLY_KERNEL_PARAMS_UNKNOWN */
	}
	call_once(&primes_once, primes_setup);
	*state = pp;
	return 0;
}

static void primes_close(void *state)
{
	free(state);
}

static int primes_run(void *state, const struct tally_batch *b, uint64_t *counts, char *err,
		      size_t errlen)
{
	const struct primes_params *pp = state;
	const uint64_t max = primesieve_get_max_stop();
	uint64_t lo = pp ? pp->start : 0, left = b->samples, found = 0;

	if (left == 0)
		return 0;
	/* The batch's last number, lo + first + samples - 1, must not pass primesieve's limit. */
	if (b->first > max - lo || left - 1 > max - lo - b->first) {
		snprintf(err, errlen, "params.start + first + samples - 1 passes %" PRIu64
			 ", primesieve's largest number", max);
		return -1;
	}
	lo += b->first;
	for (;;) {
		uint64_t len = left < PRIMES_CHUNK ? left : PRIMES_CHUNK;
		uint64_t n;

		if (b->stop && *b->stop)
			return 0; /* the counts are thrown away */
		n = primesieve_count_primes(lo, lo + (len - 1));
		if (n == PRIMESIEVE_ERROR) {
			snprintf(err, errlen, "primesieve failed to count the primes from %" PRIu64
				 " to %" PRIu64, lo, lo + (len - 1));
			return -1;
		}
		found += n;
		left -= len;
		if (left == 0)
			break;
		lo += len; /* cannot wrap: numbers remain after this chunk */
	}
	counts[0] += found;
	return 0;
}

/* Any set of n numbers holds at most n primes. A density bound (at most about 2n / ln n in n
 * consecutive numbers) would hold for a lease of consecutive batches only; the header does not
 * promise that shape, and a false refusal would stall a job for ever. */
static const char *primes_check(const uint64_t *counts, uint64_t samples)
{
	return counts[0] <= samples ? NULL : "more primes than numbers";
}

static int primes_result(const uint64_t *counts, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "{\"primes\": %" PRIu64 "}", counts[0]);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static const char *const primes_keys[] = { "primes", NULL };

static const struct tally_kernel primes_kernel = {
	.abi = TALLY_KERNEL_ABI,
	.name = "primes",
	.version = 1,
	.keys = primes_keys,
	.open = primes_open,
	.close = primes_close,
	.run = primes_run,
	.check = primes_check,
	.result = primes_result,
};

const struct tally_kernel *tally_kernel_v1(void)
{
	return &primes_kernel;
}
