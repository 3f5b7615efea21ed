/* libFuzzer target: a POST /v1/leases/<id>/complete body through decode_json(), decode_complete()
 * and, as coord_complete() does, kernel_counts_decode() and the kernel's check for every kernel,
 * then its result for counts that pass. Accepted counts must be the body's; refusals must name the
 * field or count at fault. */
#include <string.h>
#include "fuzz.h"

static const char *const fields[] = { "body", "counts", NULL };

/* Decodes counts as kernel k's, as coord_complete() does with the lease's kernel. */
static void check_counts(const struct kernel *k, const json_t *counts)
{
	uint64_t v[KERNEL_MAX_KEYS];
	const char *why;
	char err[256]; /* leases_complete()'s */
	size_t i, samples = k->nkeys;
	json_t *result;

	memset(err, 0xff, sizeof err);
	if (kernel_counts_decode(k, NULL, counts, v, err, sizeof err)) {
		FUZZ_CHECK(memchr(err, '\0', sizeof err), "%s: message not NUL-terminated",
			   k->name);
		FUZZ_CHECK(!strncmp(err, "counts", 6) && err[6] && strchr(".:", err[6]),
			   "%s: message names no count: '%s'", k->name, err);
		FUZZ_CHECK(fuzz_utf8_ok(err), "%s: message not UTF-8: '%s'", k->name, err);
		return;
	}
	FUZZ_CHECK(json_object_size(counts) == k->nkeys, "%s: %zu counts accepted", k->name,
		   json_object_size(counts));
	for (i = 0; i < k->nkeys; i++) {
		const json_t *c = json_object_get(counts, k->keys[i]);
		FUZZ_CHECK(json_is_integer(c) && json_integer_value(c) >= 0 &&
			   (uint64_t)json_integer_value(c) == v[i], "%s: count %s is not the body's",
			   k->name, k->keys[i]);
		if (!strcmp(k->keys[i], "samples"))
			samples = i;
	}
	/* The lease's sample count is unknown here: take the counts' own, which may pass. */
	FUZZ_CHECK(samples < k->nkeys, "kernel %s counts no samples", k->name);
	why = k->check(v, v[samples]);
	if (why) {
		FUZZ_CHECK(!strncmp(why, "counts.", 7), "%s: check says '%s'", k->name, why);
		return;
	}
	if (!v[samples])
		return; /* a job's counts are only summed from leases of at least one sample */
	result = k->result(v);
	FUZZ_CHECK(result && json_is_object(result), "%s: no result for valid counts", k->name);
	json_decref(result);
}

static enum tally_err decode(const json_t *body, void *out, struct decode_error *e)
{
	return decode_complete(body, out, e);
}

static void check_complete(const json_t *body, const void *out)
{
	const json_t *counts = *(const json_t *const *)out;
	const struct kernel *k;

	FUZZ_CHECK(counts && json_is_object(counts) && counts == json_object_get(body, "counts"),
		   "counts not the body's");
	for (size_t i = 0; (k = kernel_at(i)); i++)
		check_counts(k, counts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_decoder d = { fields, 0, decode, check_complete, NULL };
	const json_t *counts = NULL;
	return fuzz_run_body(data, size, &d, &counts);
}
