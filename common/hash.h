/* FNV-1a over a NUL-terminated string: the hash of every table keyed by a worker's name. */
#ifndef TALLY_HASH_H
#define TALLY_HASH_H

#include <stdint.h>

static inline uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

#endif
