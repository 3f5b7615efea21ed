/* Counts as they cross tally's interfaces: a counts object {"name": n, ...} decoded into named
 * integers (struct counts), the JSON form of a job's counts, and the one matcher that puts named
 * counts in the order of a job's names under its kernel's rules (fixed names, or open ones).
 * Pure functions, no I/O, no global state: thread-safe. */
#ifndef TALLY_COUNTS_H
#define TALLY_COUNTS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"
#include "kernel.h"

#define COUNTS_NAME_SHOWN 65 /* bytes of a refused member's name kept for its message, NUL too */

/* Why a member of a counts object could not be held in a struct counts. */
enum counts_fault {
	COUNTS_FAULT_NONE,
	COUNTS_FAULT_NAME,  /* its name is no count name (kernel_key_ok) */
	COUNTS_FAULT_VALUE, /* its value is not an integer from 0 to 2^63-1 */
	COUNTS_FAULT_FULL,  /* it is one name more than KERNEL_MAX_KEYS */
};

/* Named counts as a counts object gave them, in its order: distinct count names, each with its
 * value. Decoding stops at the first member that cannot be held: fault says why and fault_name
 * (cut to 64 bytes) names it; the members before it are kept. Whether that refuses the counts,
 * and with which message, depends on the job's kernel and names: counts_match() says, as it
 * does for names the job lacks or misses. */
struct counts {
	struct count_keys keys;
	uint64_t v[KERNEL_MAX_KEYS]; /* v[i] is the count named keys.name[i] */
	enum counts_fault fault;
	char fault_name[COUNTS_NAME_SHOWN];
};

/* Decodes a counts object into *out. Returns TALLY_OK (with out->fault set when a member could
 * not be held), or TALLY_EINVAL when obj is not an object. Can't fail otherwise. */
TALLY_WUR enum tally_err counts_decode(const json_t *obj, struct counts *out);
/* Returns a new reference to {"name": count, ...}: values[i] named keys->name[i], in keys'
 * order. NULL when out of memory. */
json_t *counts_encode(const struct count_keys *keys, const uint64_t *values);

/* Puts in's counts in the order of keys (a job's names; NULL: k's own) into
 * out[KERNEL_MAX_KEYS], 0 where in has none. k's rules: a kernel with fixed names takes exactly
 * those, wherever keys has them (names learnt from counts before a plug-in was loaded here may
 * be in another order, or more; one keys lacks is appended); an open kernel's counts name
 * themselves, and names new to keys are appended to it. Returns TALLY_OK, or TALLY_ECOUNTS with
 * a message naming the count at fault in err ("counts.<name>: ..."; keys may have grown then:
 * discard it). */
TALLY_WUR enum tally_err counts_match(const struct counts *in, const struct kernel *k,
				      struct count_keys *keys, uint64_t *out, char *err,
				      size_t errlen);

#endif
