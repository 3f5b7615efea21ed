/* What every libFuzzer target of tests/fuzz/ shares: the entry point's prototype, a check that
 * aborts with a message (libFuzzer then saves the input), the run of one body through a decoder,
 * the checks every refusal must pass, and plain references for numbers and ids. */
#ifndef TALLY_FUZZ_H
#define TALLY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "decode.h"

/* A fixed seed for bodies without one, as jobs_create draws them: 53 bits. */
#define FUZZ_DEFAULT_SEED 0x1234567890ABCULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts (a crash for libFuzzer) with the message when cond is false. */
#define FUZZ_CHECK(cond, ...) ((cond) ? (void)0 : fuzz_die(__FILE__, __LINE__, __VA_ARGS__))
void fuzz_die(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* A body decoder under test. */
struct fuzz_decoder {
	const char *const *fields; /* the names its refusals start with, NULL-terminated */
	int empty_body;            /* 1: an empty body is decoded, as NULL; 0: the handler refuses it */
	/* Decodes body into out, as the handler calls it. */
	enum tally_err (*decode)(const json_t *body, void *out, struct decode_error *e);
	/* Checks out, accepted from body: it must hold what body says, in range. */
	void (*accepted)(const json_t *body, const void *out);
	/* Checks that body may be refused at all, after the checks on the refusal. May be NULL. */
	void (*refused)(const json_t *body);
};

/* Runs one input through a body decoder as the server does: decode_json(), then d->decode() into
 * out, then checks the outcome with d->accepted(), or checks the refusal: a known code, and a
 * non-empty message, NUL-terminated inside its buffer, that starts with the field at fault. For
 * decode_json() that is "body" or the key a number out of range came under (as written in data);
 * for d->decode() one of d->fields (followed by ':', '.' or '['), or for unknown_field a key of
 * body (cut to 64 bytes), and the message must be valid UTF-8 but for a sequence cut short by a
 * length cap (the server scrubs those). Returns 0, for LLVMFuzzerTestOneInput() to return. */
int fuzz_run_body(const uint8_t *data, size_t size, const struct fuzz_decoder *d, void *out);

/* Returns 1 when v is a JSON number (integer or real) whose value is exactly x. */
int fuzz_number_is(const json_t *v, uint64_t x);

/* The reference for decimal text: 1 to 20 digits and nothing else, no overflow, in [min, max]
 * (num_parse_u64()'s contract, written plainly). Returns 0 with *out set, or -1. */
int fuzz_ref_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* The reference for ids: canonical decimal (no leading zero) 1..2^63-1. Returns 0, or -1. */
int fuzz_ref_id(const char *s, int64_t *out);
/* Checks num_parse_u64() and decode_id() on s against the references. */
void fuzz_check_number(const char *s, uint64_t min, uint64_t max);
void fuzz_check_id(const char *s);
/* Checks that decode_lease_ref() takes s only in the form the coordinator prints. */
void fuzz_check_lease_ref(const char *s);

/* Returns 1 when s is valid UTF-8, sequences cut short (a lead byte and too few continuation
 * bytes) excepted. */
int fuzz_utf8_ok(const char *s);

#endif
