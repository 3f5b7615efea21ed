/* libFuzzer target: a POST /v1/leases body through decode_json() and decode_lease_request(). An
 * accepted request must hold exactly what the body says, within the protocol's ranges; a refusal
 * must name the field at fault. */
#include <string.h>
#include "fuzz.h"

static const char *const fields[] = { "body", "worker", "kernels", "wait_s", "max_batches",
				      "skip_jobs", NULL };

static int worker_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

/* Checks an accepted request against the body it came from. */
static void check_request(const json_t *body, const void *out)
{
	const struct lease_request *q = out;
	const json_t *worker = json_object_get(body, "worker");
	const json_t *kernels = json_object_get(body, "kernels");
	const json_t *v;
	size_t i, len;

	FUZZ_CHECK(json_is_object(body), "accepted a body that is not an object");
	len = strnlen(q->worker, sizeof q->worker);
	FUZZ_CHECK(len >= 1 && len < sizeof q->worker, "worker of %zu bytes", len);
	FUZZ_CHECK(json_is_string(worker) && json_string_length(worker) == len &&
		   !memcmp(q->worker, json_string_value(worker), len),
		   "worker '%s' is not the body's", q->worker);
	for (i = 0; i < len; i++)
		FUZZ_CHECK(worker_char(q->worker[i]), "worker '%s': byte %zu", q->worker, i);

	FUZZ_CHECK(json_is_array(kernels) && q->nkernels == json_array_size(kernels) &&
		   q->nkernels >= 1 && q->nkernels <= COORD_KERNELS_MAX,
		   "%zu kernels", q->nkernels);
	for (i = 0; i < q->nkernels; i++) {
		const json_t *k = json_array_get(kernels, i);
		len = strlen(q->kernels[i]);
		FUZZ_CHECK(q->kernels[i] == json_string_value(k) && len == json_string_length(k) &&
			   len >= 1 && len < KERNEL_NAME_MAX + 11, /* "name@4294967295" */
			   "kernels[%zu] '%s'", i, q->kernels[i]);
	}

	v = json_object_get(body, "wait_s");
	FUZZ_CHECK(q->wait_ms >= 0 && q->wait_ms <= DECODE_WAIT_MAX_S * 1000 && q->wait_ms % 1000 == 0,
		   "wait_ms %lld", (long long)q->wait_ms);
	FUZZ_CHECK(v ? fuzz_number_is(v, (uint64_t)q->wait_ms / 1000) : q->wait_ms == 0,
		   "wait_ms %lld is not the body's", (long long)q->wait_ms);
	v = json_object_get(body, "max_batches");
	FUZZ_CHECK(q->max_batches <= JOB_SAMPLES_MAX &&
		   (v ? fuzz_number_is(v, q->max_batches) : q->max_batches == 0),
		   "max_batches %llu", (unsigned long long)q->max_batches);
}

static enum tally_err decode(const json_t *body, void *out, struct decode_error *e)
{
	return decode_lease_request(body, out, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_decoder d = { fields, 0, decode, check_request, NULL };
	struct lease_request q;
	return fuzz_run_body(data, size, &d, &q);
}
