/* Counts: the JSON codec of named counts and the matcher of named counts to a job's names. */
#include <stdio.h>
#include <string.h>
#include "counts.h"

enum tally_err counts_decode(const json_t *obj, struct counts *out)
{
	const char *key;
	json_t *v;

	memset(out, 0, sizeof *out);
	if (!json_is_object(obj))
		return TALLY_EINVAL;
	json_object_foreach((json_t *)obj, key, v) {
		/* In the order the matcher's messages want: the name first, then room, then the
		 * value. */
		if (!kernel_key_ok(key))
			out->fault = COUNTS_FAULT_NAME;
		else if (out->keys.n == KERNEL_MAX_KEYS)
			out->fault = COUNTS_FAULT_FULL;
		else if (!json_is_integer(v) || json_integer_value(v) < 0)
			out->fault = COUNTS_FAULT_VALUE;
		if (out->fault) {
			snprintf(out->fault_name, sizeof out->fault_name, "%s", key);
			break;
		}
		snprintf(out->keys.name[out->keys.n], KERNEL_KEY_MAX, "%s", key);
		out->v[out->keys.n++] = (uint64_t)json_integer_value(v);
	}
	return TALLY_OK;
}

json_t *counts_encode(const struct count_keys *keys, const uint64_t *values)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; i < keys->n; i++) {
		if (json_object_set_new(o, keys->name[i], json_integer((json_int_t)values[i]))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* Returns the index of name in keys, keys->n when it is not there. */
static size_t counts_index(const struct count_keys *keys, const char *name)
{
	size_t i;
	for (i = 0; i < keys->n && strcmp(keys->name[i], name); i++)
		;
	return i;
}

/* A count name that names is missing: a fixed kernel refuses it, an open one appends it while
 * there is room. */
static enum tally_err counts_learn(const struct kernel *k, struct count_keys *names,
				   const char *name, char *err, size_t errlen)
{
	if (!k->open) {
		snprintf(err, errlen, "counts.%.64s: not a count of this job", name);
		return TALLY_ECOUNTS;
	}
	if (names->n == KERNEL_MAX_KEYS) {
		snprintf(err, errlen, "counts.%s: a job has at most %d count names", name,
			 KERNEL_MAX_KEYS);
		return TALLY_ECOUNTS;
	}
	snprintf(names->name[names->n++], KERNEL_KEY_MAX, "%.*s", KERNEL_KEY_MAX - 1, name);
	return TALLY_OK;
}

/* The refusal of the member decoding stopped at, after the members before it matched. */
static enum tally_err counts_refuse(const struct counts *in, const struct kernel *k,
				    struct count_keys *names, char *err, size_t errlen)
{
	enum tally_err rc;

	if (in->fault == COUNTS_FAULT_NAME) {
		if (!k->open)
			return counts_learn(k, names, in->fault_name, err, errlen);
		snprintf(err, errlen, "counts.%.64s: a count name is 1 to %d of [a-z0-9_], not "
				      "starting with a digit", in->fault_name, KERNEL_KEY_MAX - 1);
		return TALLY_ECOUNTS;
	}
	if (counts_index(names, in->fault_name) == names->n &&
	    (rc = counts_learn(k, names, in->fault_name, err, errlen)))
		return rc;
	if (in->fault == COUNTS_FAULT_FULL)
		snprintf(err, errlen, "counts.%s: a job has at most %d count names", in->fault_name,
			 KERNEL_MAX_KEYS);
	else
		snprintf(err, errlen, "counts.%s: must be a non-negative integer", in->fault_name);
	return TALLY_ECOUNTS;
}

enum tally_err counts_match(const struct counts *in, const struct kernel *k,
			    struct count_keys *keys, uint64_t *out, char *err, size_t errlen)
{
	struct count_keys fixed;
	/* The names in's are matched against: k's own when fixed, the job's when open. */
	struct count_keys *names = k->open && keys ? keys : &fixed;
	uint64_t v[KERNEL_MAX_KEYS] = { 0 };
	enum tally_err rc;
	size_t i, j;

	kernel_keys(k, &fixed);
	for (i = 0; i < in->keys.n; i++) {
		j = counts_index(names, in->keys.name[i]);
		if (j == names->n && (rc = counts_learn(k, names, in->keys.name[i], err, errlen)))
			return rc;
		v[j] = in->v[i];
	}
	if (in->fault)
		return counts_refuse(in, k, names, err, errlen);
	for (i = 0; !k->open && i < fixed.n; i++) {
		if (counts_index(&in->keys, fixed.name[i]) == in->keys.n) {
			snprintf(err, errlen, "counts.%s: missing", fixed.name[i]);
			return TALLY_ECOUNTS;
		}
	}
	if (names != &fixed || !keys) {
		memcpy(out, v, sizeof v);
		return TALLY_OK;
	}
	/* A fixed kernel's counts, in the job's order. */
	memset(out, 0, sizeof v);
	for (i = 0; i < fixed.n; i++) {
		j = counts_index(keys, fixed.name[i]);
		if (j == keys->n) {
			if (j == KERNEL_MAX_KEYS) {
				snprintf(err, errlen, "counts.%s: the job has no room for it",
					 fixed.name[i]);
				return TALLY_ECOUNTS;
			}
			memcpy(keys->name[keys->n++], fixed.name[i], KERNEL_KEY_MAX);
		}
		out[j] = v[i];
	}
	return TALLY_OK;
}
