/* libFuzzer target: a heartbeat or cancel body (empty, or {}) through decode_json() and
 * decode_empty(): accepted exactly when it is empty or an empty object. */
#include "fuzz.h"

static const char *const fields[] = { "body", NULL };

static int empty(const json_t *body)
{
	return !body || (json_is_object(body) && !json_object_size(body));
}

static enum tally_err decode(const json_t *body, void *out, struct decode_error *e)
{
	(void)out;
	return decode_empty(body, e);
}

static void check_accepted(const json_t *body, const void *out)
{
	(void)out;
	FUZZ_CHECK(empty(body), "accepted a body that is not empty");
}

static void check_refused(const json_t *body)
{
	FUZZ_CHECK(!empty(body), "refused an empty body");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_decoder d = { fields, 1, decode, check_accepted, check_refused };
	return fuzz_run_body(data, size, &d, NULL);
}
