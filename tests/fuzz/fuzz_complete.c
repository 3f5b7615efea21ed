/* libFuzzer target: a POST /v1/leases/<id>/complete body through decode_json(), decode_complete()
 * (the body's counts into a struct counts) and, as coord_complete() does, counts_match() and the
 * kernel's check for every kernel, then its result for counts that pass. Decoded counts must be
 * the body's; accepted counts must be the body's; refusals must name the field or count at
 * fault. */
#include <string.h>
#include "fuzz.h"

static const char *const fields[] = { "body", "counts", NULL };

/* Matches counts as kernel k's, as coord_complete() does with the lease's kernel. */
static void check_counts(const struct kernel *k, const json_t *obj, const struct counts *in)
{
	uint64_t v[KERNEL_MAX_KEYS];
	const char *why;
	char err[256]; /* leases_complete()'s */
	size_t i, samples = k->nkeys;
	json_t *result;

	memset(err, 0xff, sizeof err);
	if (counts_match(in, k, NULL, v, err, sizeof err)) {
		FUZZ_CHECK(memchr(err, '\0', sizeof err), "%s: message not NUL-terminated",
			   k->name);
		FUZZ_CHECK(!strncmp(err, "counts", 6) && err[6] && strchr(".:", err[6]),
			   "%s: message names no count: '%s'", k->name, err);
		FUZZ_CHECK(fuzz_utf8_ok(err), "%s: message not UTF-8: '%s'", k->name, err);
		return;
	}
	FUZZ_CHECK(json_object_size(obj) == k->nkeys, "%s: %zu counts accepted", k->name,
		   json_object_size(obj));
	for (i = 0; i < k->nkeys; i++) {
		const json_t *c = json_object_get(obj, k->keys[i]);
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

/* The decoded counts are the body's: its first members, in order, up to the one at fault. */
static void check_complete(const json_t *body, const void *out)
{
	const struct counts *in = out;
	const json_t *obj = json_object_get(body, "counts");
	const struct kernel *k;
	const char *key;
	json_t *v;
	size_t i = 0;
	int stopped = 0;

	FUZZ_CHECK(json_is_object(obj), "counts not the body's object");
	json_object_foreach((json_t *)obj, key, v) {
		if (i == in->keys.n) {
			FUZZ_CHECK(in->fault != COUNTS_FAULT_NONE, "member %s left out", key);
			FUZZ_CHECK(!strncmp(in->fault_name, key, COUNTS_NAME_SHOWN - 1),
				   "fault names %s, not %s", in->fault_name, key);
			stopped = 1;
			break;
		}
		FUZZ_CHECK(!strcmp(in->keys.name[i], key) && kernel_key_ok(key) &&
			   json_is_integer(v) && (uint64_t)json_integer_value(v) == in->v[i],
			   "member %zu is not the body's %s", i, key);
		i++;
	}
	FUZZ_CHECK(i == in->keys.n && stopped == (in->fault != COUNTS_FAULT_NONE),
		   "%zu members held, %zu decoded, fault %d", in->keys.n, i, (int)in->fault);
	for (size_t j = 0; (k = kernel_at(j)); j++)
		check_counts(k, obj, in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_decoder d = { fields, 0, decode, check_complete, NULL };
	struct counts counts;
	return fuzz_run_body(data, size, &d, &counts);
}
