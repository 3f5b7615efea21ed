/* Strict parsing of unsigned decimal numbers from untrusted text (no sign, no spaces, no base
 * prefixes, no overflow), shared by the API's decoders and the worker. */
#ifndef TALLY_NUM_H
#define TALLY_NUM_H

#include <stdint.h>

/* Parses s, decimal digits only, as an integer in [min, max]. Returns 0, or -1. */
int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parses a duration, decimal digits then one of s, m, h or d ("90s", "30d"; a bare "0" is 0),
 * into *ms, at most NUM_DURATION_MAX_MS. Returns 0, or -1. */
#define NUM_DURATION_MAX_MS (100LL * 365 * 86400 * 1000) /* a century */
int num_parse_duration(const char *s, int64_t *ms);

#endif
