/* A seed's JSON form: an integer up to 2^63-1, a decimal string above (jansson integers are signed
 * 64-bit), so that every 64-bit seed crosses the wire. */
#ifndef TALLY_SEED_H
#define TALLY_SEED_H

#include <stdint.h>
#include <jansson.h>

/* Returns a new reference to seed's JSON form, or NULL when out of memory. */
json_t *seed_json(uint64_t seed);
/* Reads a seed in that form. Returns 0, or -1 for anything else (negative, fractional, junk). */
int seed_parse(const json_t *v, uint64_t *out);

#endif
