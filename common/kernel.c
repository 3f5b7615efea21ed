/* The kernel registry, batch arithmetic, and the JSON form of counts. */
#include <stdio.h>
#include <string.h>
#include "kernel.h"

extern const struct kernel kernel_pi;
extern const struct kernel kernel_count;

static const struct kernel *const kernel_table[] = { &kernel_pi, &kernel_count };
#define KERNEL_TABLE_LEN (sizeof kernel_table / sizeof kernel_table[0])

const struct kernel *kernel_find(const char *name)
{
	for (size_t i = 0; i < KERNEL_TABLE_LEN; i++)
		if (!strcmp(kernel_table[i]->name, name))
			return kernel_table[i];
	return NULL;
}

const struct kernel *kernel_at(size_t i)
{
	return i < KERNEL_TABLE_LEN ? kernel_table[i] : NULL;
}

uint64_t kernel_batches(uint64_t samples, uint64_t batch_size)
{
	return samples / batch_size + (samples % batch_size != 0);
}

uint64_t kernel_range_samples(uint64_t samples, uint64_t batch_size, uint64_t first_batch,
			      uint64_t count)
{
	uint64_t lo = first_batch * batch_size;
	uint64_t hi = (first_batch + count) * batch_size;
	if (lo >= samples)
		return 0;
	if (hi > samples)
		hi = samples;
	return hi - lo;
}

void kernel_run_range(const struct kernel *k, uint64_t seed, uint64_t samples, uint64_t batch_size,
		      uint64_t first_batch, uint64_t count, uint64_t *out)
{
	for (uint64_t b = first_batch; b < first_batch + count; b++) {
		uint64_t first = b * batch_size;
		if (first >= samples)
			break;
		uint64_t n = samples - first < batch_size ? samples - first : batch_size;
		k->run(seed, b, first, n, NULL, out);
	}
}

enum tally_err kernel_counts_decode(const struct kernel *k, const json_t *obj, uint64_t *out,
				    char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "counts: must be an object");
		return TALLY_EINVAL;
	}
	json_object_foreach((json_t *)obj, key, v) {
		size_t i;
		for (i = 0; i < k->nkeys; i++)
			if (!strcmp(k->keys[i], key))
				break;
		if (i == k->nkeys) {
			snprintf(err, errlen, "counts.%.64s: not a count of kernel %s", key, k->name);
			return TALLY_EINVAL;
		}
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errlen, "counts.%s: must be a non-negative integer", key);
			return TALLY_EINVAL;
		}
		out[i] = (uint64_t)json_integer_value(v);
	}
	for (size_t i = 0; i < k->nkeys; i++) {
		if (!json_object_get(obj, k->keys[i])) {
			snprintf(err, errlen, "counts.%s: missing", k->keys[i]);
			return TALLY_EINVAL;
		}
	}
	return TALLY_OK;
}

json_t *kernel_counts_encode(const struct kernel *k, const uint64_t *counts)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; i < k->nkeys; i++) {
		if (json_object_set_new(o, k->keys[i], json_integer((json_int_t)counts[i]))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}
