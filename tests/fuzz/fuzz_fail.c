/* libFuzzer target: a POST /v1/leases/<id>/fail body (empty, or {"error": "...", "fault": bool,
 * "cannot_run": bool}) through decode_json() and decode_fail(). The reason lands in a buffer of
 * exactly DECODE_REASON_MAX bytes on the heap, so that a write past it shows; an accepted reason,
 * fault and cannot_run must be the body's (fault defaults to true, or to false with cannot_run;
 * never both true). */
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

static const char *const fields[] = { "body", "error", "fault", "cannot_run", NULL };

struct fail_out {
	char *reason; /* DECODE_REASON_MAX bytes */
	int fault;
	int cannot_run;
};

static enum tally_err decode(const json_t *body, void *out, struct decode_error *e)
{
	struct fail_out *f = out;
	return decode_fail(body, f->reason, &f->fault, &f->cannot_run, e);
}

static void check_fail(const json_t *body, const void *out)
{
	const struct fail_out *f = out;
	const json_t *v = body ? json_object_get(body, "error") : NULL;

	FUZZ_CHECK(!body || json_is_object(body), "accepted a body that is not an object");
	FUZZ_CHECK(memchr(f->reason, '\0', DECODE_REASON_MAX), "reason not NUL-terminated");
	FUZZ_CHECK(v ? json_is_string(v) && !strcmp(f->reason, json_string_value(v)) &&
		       strlen(f->reason) == json_string_length(v)
		     : !f->reason[0], "reason '%.64s' is not the body's", f->reason);
	v = body ? json_object_get(body, "cannot_run") : NULL;
	FUZZ_CHECK(v ? json_is_boolean(v) && f->cannot_run == json_is_true(v) : !f->cannot_run,
		   "cannot_run %d is not the body's", f->cannot_run);
	v = body ? json_object_get(body, "fault") : NULL;
	FUZZ_CHECK(v ? json_is_boolean(v) && f->fault == json_is_true(v) : f->fault == !f->cannot_run,
		   "fault %d is not the body's", f->fault);
	FUZZ_CHECK(!(f->fault && f->cannot_run), "fault and cannot_run both accepted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_decoder d = { fields, 1, decode, check_fail, NULL };
	struct fail_out f = { malloc(DECODE_REASON_MAX), -1, -1 };

	if (!f.reason)
		abort();
	memset(f.reason, 0xff, DECODE_REASON_MAX);
	fuzz_run_body(data, size, &d, &f);
	free(f.reason);
	return 0;
}
