/* Strict parsing of unsigned decimal numbers from untrusted text (no sign, no spaces, no base
 * prefixes, no overflow), shared by the API's decoders and the worker. */
#ifndef TALLY_NUM_H
#define TALLY_NUM_H

#include <stdint.h>

/* Parses s, decimal digits only, as an integer in [min, max]. Returns 0, or -1. */
int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
