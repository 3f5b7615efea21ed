/* SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash whose outputs nobody without the key
 * can predict or forge. It makes the tags that bind a lease to the worker it was granted to
 * (server/coord_claim.c), and keys tables an attacker must not be able to aim collisions at. */
#ifndef TALLY_SIPHASH_H
#define TALLY_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_SIZE 16

/* Returns SipHash-2-4 of data[0..len) under key (the reference's byte order: key and result
 * little-endian). Pure; can't fail. */
uint64_t siphash24(const uint8_t key[SIPHASH_KEY_SIZE], const void *data, size_t len);

#endif
