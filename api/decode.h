/* Request decoding: JSON bodies, ids and query values into typed structs, refusing anything
 * off-spec with a code and a message that names the field. Pure functions (no I/O), so that
 * they can be unit-tested and fuzzed. */
#ifndef TALLY_DECODE_H
#define TALLY_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "coord.h"
#include "counts.h"
#include "err.h"
#include "job.h"
#include "num.h"
#include "wire.h"

#define DECODE_WAIT_MAX_S WIRE_WAIT_MAX_S
#define DECODE_REASON_MAX WIRE_REASON_MAX

/* Why a request was refused: code is one of the protocol's error codes (static). */
struct decode_error {
	const char *code;
	char message[256];
};

/* Parses a request body: one JSON value, UTF-8, no duplicate keys, nesting capped by jansson.
 * Returns a new reference, or NULL with *e filled. */
json_t *decode_json(const char *data, size_t len, struct decode_error *e);

/* Decodes a job submission (its owner is left ""), its params written to params (which
 * out->params points to). default_seed is used when the body has none. A kernel with no code
 * here is left as kernel_placeholder(), its name in out->kernel_name: the decoder changes no
 * global state (coord_submit() makes the name a kernel). TALLY_EINVAL. */
TALLY_WUR enum tally_err decode_job_spec(const json_t *body, uint64_t default_seed,
					 struct job_spec *out, char params[KERNEL_PARAMS_MAX],
					 struct decode_error *e);
/* Decodes an extend body {"samples": n}. TALLY_EINVAL. */
TALLY_WUR enum tally_err decode_extend(const json_t *body, uint64_t *samples,
				       struct decode_error *e);
/* Decodes a lease request. out->kernels borrow from body. TALLY_EINVAL. */
TALLY_WUR enum tally_err decode_lease_request(const json_t *body, struct lease_request *out,
					      struct decode_error *e);
/* Decodes a complete body into *counts. Counts that cannot be right for any lease (a name that
 * is no count name, a value that is no integer from 0 to 2^63-1, too many names) are not refused
 * here: counts->fault keeps the first, and coord_complete() refuses them once the lease's state
 * has answered, with the message its kernel's rules give (TALLY_ECOUNTS, 422). TALLY_EINVAL for
 * a body without a counts object. */
TALLY_WUR enum tally_err decode_complete(const json_t *body, struct counts *counts,
					 struct decode_error *e);
/* Decodes a fail body into reason[DECODE_REASON_MAX], *fault (default 1: the batches are to
 * blame; false: a worker giving a lease back for its own reasons) and *cannot_run (default 0;
 * true: the worker cannot run the job at all, which is then no fault: fault true with it is
 * refused). TALLY_EINVAL. */
TALLY_WUR enum tally_err decode_fail(const json_t *body, char *reason, int *fault,
				     int *cannot_run, struct decode_error *e);
/* Checks that body is absent or an empty object (heartbeat, cancel). TALLY_EINVAL. */
TALLY_WUR enum tally_err decode_empty(const json_t *body, struct decode_error *e);

/* Parses an id: decimal digits, no sign or leading zero, 1..2^63-1. Returns 0, or -1. */
int decode_id(const char *s, int64_t *out);
/* Parses a lease's id as the wire gives it, "<id>-<tag>": an id as decode_id() takes it, '-',
 * and the tag in exactly DECODE_LEASE_TAG_DIGITS lowercase hex digits (the one form the
 * coordinator prints). Returns 0, or -1. */
#define DECODE_LEASE_TAG_DIGITS 16
int decode_lease_ref(const char *s, int64_t *id, uint64_t *tag);

#endif
