/* What a process does with a kernel: check a job's params, open its state, run a batch, check a
 * lease's counts, derive a result and its standard error; and the stored form of count names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "execspec.h"
#include "kernel.h"

static int kernel_open_state(const struct kernel *k, const char *params, void **state, char *err,
			     size_t errlen);

/* Returns 1 when a string in v (a key or a value, at any depth) holds a NUL, with path naming
 * where (path holds pathlen bytes, used of them so far). JSON text with \u0000 does not load
 * back (jansson needs JSON_ALLOW_NUL), so such params are refused rather than changed. */
static int params_nul(const json_t *v, char *path, size_t pathlen, size_t used)
{
	const char *key;
	json_t *m;
	size_t i, n = used < pathlen ? used : pathlen - 1;

	if (json_is_string(v))
		return strlen(json_string_value(v)) != json_string_length(v);
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, m) {
			int len = snprintf(path + n, pathlen - n, ".%s", key);
			if (params_nul(m, path, pathlen, n + (size_t)(len > 0 ? len : 0)))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m) {
			int len = snprintf(path + n, pathlen - n, "[%zu]", i);
			if (params_nul(m, path, pathlen, n + (size_t)(len > 0 ? len : 0)))
				return 1;
		}
	}
	path[n] = '\0';
	return 0;
}

enum tally_err kernel_params_check(const struct kernel *k, const json_t *params, char *out,
				   size_t outlen, enum kernel_params_fault *fault, char *err,
				   size_t errlen)
{
	json_t *empty = NULL;
	char *text = NULL;
	size_t len;
	enum tally_err rc = TALLY_OK;

	*err = '\0';
	*fault = KERNEL_PARAMS_INVALID;
	if (params && !json_is_object(params)) {
		snprintf(err, errlen, "params: must be an object");
		return TALLY_EINVAL;
	}
	if (!params && !(params = empty = json_object()))
		return TALLY_ENOMEM;
	char path[128] = "params";
	if (params_nul(params, path, sizeof path, strlen(path))) {
		snprintf(err, errlen, "%s: a string holds a NUL character (\\u0000), which params "
			 "cannot carry", path);
		rc = TALLY_EINVAL;
		goto done;
	}
	if (!k->params && json_object_size(params)) {
		const char *key = json_object_iter_key(json_object_iter((json_t *)params));
		snprintf(err, errlen, "params.%.64s: kernel %s takes no parameters", key, k->name);
		*fault = KERNEL_PARAMS_UNKNOWN;
		rc = TALLY_EINVAL;
		goto done;
	}
	if (!(text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = TALLY_ENOMEM;
		goto done;
	}
	if ((len = strlen(text)) >= outlen) {
		snprintf(err, errlen, "params: longer than %zu bytes as compact JSON", outlen - 1);
		rc = TALLY_EINVAL;
		goto done;
	}
	memcpy(out, text, len + 1);
	if (k == &kernel_exec) {
		struct exec_spec *spec = malloc(sizeof *spec);
		if (!spec)
			rc = TALLY_ENOMEM;
		else
			rc = exec_spec_parse(params, spec, fault, err, errlen);
		free(spec);
	} else if (k->abi && k->abi->open) {
		void *state = NULL;
		int refused = kernel_open_state(k, text, &state, err, errlen);
		if (refused == TALLY_KERNEL_PARAMS_UNKNOWN)
			*fault = KERNEL_PARAMS_UNKNOWN;
		if (refused)
			rc = TALLY_EINVAL;
		else
			kernel_close(k, state);
	}
done:
	free(text);
	json_decref(empty);
	return rc;
}

/* kernel_open, but returning TALLY_KERNEL_PARAMS_UNKNOWN as the plug-in did, for the params
 * check's error code. */
static int kernel_open_state(const struct kernel *k, const char *params, void **state, char *err,
			     size_t errlen)
{
	int rc;

	*state = NULL;
	if (!k->abi || !k->abi->open)
		return 0;
	*err = '\0';
	if ((rc = k->abi->open(params, state, err, errlen))) {
		if (!*err)
			snprintf(err, errlen, "params: refused by kernel %s", k->name);
		return rc == TALLY_KERNEL_PARAMS_UNKNOWN ? rc : -1;
	}
	return 0;
}

int kernel_open(const struct kernel *k, const char *params, void **state, char *err,
		size_t errlen)
{
	return kernel_open_state(k, params, state, err, errlen) ? -1 : 0;
}

void kernel_close(const struct kernel *k, void *state)
{
	if (k->abi && k->abi->close)
		k->abi->close(state);
}

int kernel_run_batch(const struct kernel *k, void *state, uint64_t seed, uint64_t batch,
		     uint64_t first, uint64_t n, const int *stop, uint64_t *out, char *err,
		     size_t errlen)
{
	if (k->run) {
		k->run(seed, batch, first, n, stop, out);
		return 0;
	}
	if (k->abi) {
		struct tally_batch b = { seed, batch, first, n, stop };
		*err = '\0';
		if (!k->abi->run(state, &b, out, err, errlen))
			return 0;
		if (!*err)
			snprintf(err, errlen, "kernel %s failed batch %llu", k->name,
				 (unsigned long long)batch);
		return -1;
	}
	snprintf(err, errlen, "kernel %s has no code in this process", k->name);
	return -1;
}

/* Returns counts (named by keys) in k's key order: counts itself when they are, else tmp
 * filled by name (a name keys lacks counts 0). */
static const uint64_t *in_order(const struct kernel *k, const struct count_keys *keys,
				const uint64_t *counts, uint64_t *tmp)
{
	size_t i, j;

	if (!keys)
		return counts;
	for (i = 0; i < k->nkeys && i < keys->n && !strcmp(k->keys[i], keys->name[i]); i++)
		;
	if (i == k->nkeys)
		return counts;
	memset(tmp, 0, sizeof(uint64_t) * KERNEL_MAX_KEYS);
	for (i = 0; i < k->nkeys; i++)
		for (j = 0; j < keys->n; j++)
			if (!strcmp(k->keys[i], keys->name[j]))
				tmp[i] = counts[j];
	return tmp;
}

const char *kernel_check(const struct kernel *k, const struct count_keys *keys,
			 const uint64_t *counts, uint64_t samples)
{
	uint64_t tmp[KERNEL_MAX_KEYS];
	return k->check ? k->check(in_order(k, keys, counts, tmp), samples) : NULL;
}

json_t *kernel_result(const struct kernel *k, const struct count_keys *keys,
		      const uint64_t *counts)
{
	char text[TALLY_KERNEL_RESULT_MAX];
	uint64_t tmp[KERNEL_MAX_KEYS];
	json_t *r;

	counts = in_order(k, keys, counts, tmp);
	if (k->result)
		return k->result(counts);
	if (!k->abi || !k->abi->result)
		return NULL;
	text[0] = '\0';
	if (k->abi->result(counts, text, sizeof text))
		return NULL;
	text[sizeof text - 1] = '\0';
	r = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(r)) {
		json_decref(r);
		return NULL;
	}
	return r;
}

int kernel_stderr(const struct kernel *k, const struct count_keys *keys, const uint64_t *counts,
		  double *out)
{
	uint64_t tmp[KERNEL_MAX_KEYS];
	json_t *r, *e;
	int rc = -1;

	if (k->stderr_of)
		return k->stderr_of(in_order(k, keys, counts, tmp), out);
	if (k->result || !k->abi)
		return -1; /* a built-in kernel without one */
	r = kernel_result(k, keys, counts); /* a plug-in's: its result's text, read */
	e = json_object_get(r, "stderr");
	if (json_is_number(e)) {
		*out = json_number_value(e);
		rc = 0;
	}
	json_decref(r);
	return rc;
}

int kernel_has_stderr(const struct kernel *k)
{
	uint64_t counts[KERNEL_MAX_KEYS] = { 0 };
	double e;

	if (k->stderr_of)
		return 1;
	if (k->result || !k->abi || !k->abi->result)
		return 0; /* built in without one, known by name only, or no result() */
	/* The ABI does not say which members a plug-in's result has: its result() (pure) is
	 * asked for a few made-up counts, each name's the same or growing or shrinking with its
	 * place, from 1 to 10^6. */
	for (uint64_t v = 1; v <= 1000000; v *= 1000)
		for (int shape = 0; shape < 3; shape++) {
			for (size_t i = 0; i < k->nkeys; i++)
				counts[i] = v * (shape == 0 ? 1 : shape == 1 ? i + 1 : k->nkeys - i);
			if (!kernel_stderr(k, NULL, counts, &e))
				return 1;
		}
	return 0;
}

void kernel_keys(const struct kernel *k, struct count_keys *keys)
{
	memset(keys, 0, sizeof *keys);
	for (size_t i = 0; i < k->nkeys; i++)
		snprintf(keys->name[i], sizeof keys->name[i], "%s", k->keys[i]);
	keys->n = k->nkeys;
}

int kernel_keys_parse(const char *text, struct count_keys *out)
{
	memset(out, 0, sizeof *out);
	while (*text) {
		size_t len = strcspn(text, "\n");
		if (out->n == KERNEL_MAX_KEYS || len >= KERNEL_KEY_MAX)
			return -1;
		memcpy(out->name[out->n], text, len);
		if (!kernel_key_ok(out->name[out->n]))
			return -1;
		out->n++;
		text += len + (text[len] == '\n');
	}
	return 0;
}

void kernel_keys_format(const struct count_keys *keys, char *out, size_t outlen)
{
	size_t used = 0;
	*out = '\0';
	for (size_t i = 0; i < keys->n; i++) {
		int w = snprintf(out + used, outlen - used, "%s%s", i ? "\n" : "", keys->name[i]);
		if (w < 0 || (size_t)w >= outlen - used)
			return;
		used += (size_t)w;
	}
}
