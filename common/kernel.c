/* The kernel registry (built-in kernels, plug-ins, kernels known by name only), params, and
 * batch arithmetic. */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "execspec.h"
#include "kernel.h"

extern const struct kernel kernel_pi;
extern const struct kernel kernel_count;

/* exec runs programs: the worker does that (worker/exec.c). Here it is a name, a version, open
 * keys and a check of its params. */
static const struct kernel kernel_exec = {
	.name = "exec",
	.version = 1,
	.open = 1,
	.params = 1,
};

/* What a job names when its kernel has no code here, until the job is accepted and the name is
 * made a kernel of its own (kernel_named): params are any object, counts name themselves. */
static const struct kernel kernel_unknown = {
	.name = "",
	.open = 1,
	.params = 1,
};

static const struct kernel *const kernel_table[] = { &kernel_pi, &kernel_count };
#define KERNEL_TABLE_LEN (sizeof kernel_table / sizeof kernel_table[0])

/* Plug-ins: written before threads start, read-only after. */
static struct kernel *plugins[KERNEL_PLUGINS_MAX];
static size_t nplugins;
/* Kernels known by name only: made on demand under the lock, never freed. */
static struct kernel *named[KERNEL_NAMED_MAX];
static size_t nnamed;
static pthread_mutex_t named_lock = PTHREAD_MUTEX_INITIALIZER;

int kernel_name_ok(const char *name)
{
	size_t n = strlen(name);
	return n >= 1 && n < KERNEL_NAME_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int kernel_key_ok(const char *name)
{
	size_t n = strlen(name);
	return n >= 1 && n < KERNEL_KEY_MAX && !(name[0] >= '0' && name[0] <= '9') &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int kernel_offer_is(const char *offer, const char *name, unsigned *version)
{
	size_t len = strlen(name);

	if (strncmp(offer, name, len) || (offer[len] && offer[len] != '@'))
		return 0;
	*version = offer[len] ? (unsigned)strtoul(offer + len + 1, NULL, 10) : 0;
	return 1;
}

const struct kernel *kernel_find(const char *name)
{
	for (size_t i = 0; i < KERNEL_TABLE_LEN; i++)
		if (!strcmp(kernel_table[i]->name, name))
			return kernel_table[i];
	if (!strcmp(name, kernel_exec.name))
		return &kernel_exec;
	for (size_t i = 0; i < nplugins; i++)
		if (!strcmp(plugins[i]->name, name))
			return plugins[i];
	return NULL;
}

const struct kernel *kernel_named(const char *name)
{
	const struct kernel *k = kernel_find(name);
	struct kernel *n = NULL;
	char *copy = NULL;

	if (k || !kernel_name_ok(name))
		return k;
	pthread_mutex_lock(&named_lock);
	for (size_t i = 0; i < nnamed; i++)
		if (!strcmp(named[i]->name, name))
			k = named[i];
	if (!k && nnamed < KERNEL_NAMED_MAX && (n = calloc(1, sizeof *n)) &&
	    (copy = strdup(name))) {
		n->name = copy;
		n->open = 1;
		n->params = 1;
		named[nnamed++] = n;
		k = n;
	} else if (!k) {
		free(n);
	}
	pthread_mutex_unlock(&named_lock);
	return k;
}

const struct kernel *kernel_placeholder(void)
{
	return &kernel_unknown;
}

const struct kernel *kernel_at(size_t i)
{
	if (i < KERNEL_TABLE_LEN)
		return kernel_table[i];
	i -= KERNEL_TABLE_LEN;
	return i < nplugins ? plugins[i] : NULL;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads one plug-in file. Returns 0, or -1 with a message in err. */
static int kernel_load(const char *path, char *err, size_t errlen)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	const struct tally_kernel *abi = NULL;
	struct kernel *k = NULL;
	tally_kernel_v1_fn entry;
	size_t n = 0;

	if (!h) {
		snprintf(err, errlen, "%s: %s", path, dlerror());
		return -1;
	}
	*(void **)&entry = dlsym(h, TALLY_KERNEL_ENTRY);
	if (!entry || !(abi = entry())) {
		snprintf(err, errlen, "%s: exports no %s(), or it returned NULL", path,
			 TALLY_KERNEL_ENTRY);
		goto fail;
	}
	if (abi->abi != TALLY_KERNEL_ABI) {
		snprintf(err, errlen, "%s: kernel ABI %u, this build has %d", path, abi->abi,
			 TALLY_KERNEL_ABI);
		goto fail;
	}
	if (!abi->name || !kernel_name_ok(abi->name) || kernel_find(abi->name)) {
		snprintf(err, errlen, "%s: kernel name '%.32s' is not 1 to 31 of [a-z0-9_-], or is "
				      "taken", path, abi->name ? abi->name : "(null)");
		goto fail;
	}
	if (!abi->version || !abi->run || !abi->keys) {
		snprintf(err, errlen, "%s: kernel %s needs a version from 1, run() and keys", path,
			 abi->name);
		goto fail;
	}
	for (n = 0; abi->keys[n]; n++) {
		if (n == KERNEL_MAX_KEYS || !kernel_key_ok(abi->keys[n])) {
			snprintf(err, errlen, "%s: kernel %s: count names must be 1 to %d of "
					      "[a-z0-9_], at most %d of them", path, abi->name,
				 KERNEL_KEY_MAX - 1, KERNEL_MAX_KEYS);
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(abi->keys[i], abi->keys[n])) {
				snprintf(err, errlen, "%s: kernel %s names count %s twice", path,
					 abi->name, abi->keys[n]);
				goto fail;
			}
		}
	}
	if (!n || nplugins == KERNEL_PLUGINS_MAX || !(k = calloc(1, sizeof *k))) {
		snprintf(err, errlen, "%s: no count names, too many plug-ins (%d), or out of memory",
			 path, KERNEL_PLUGINS_MAX);
		goto fail;
	}
	k->name = abi->name;
	k->version = abi->version;
	k->nkeys = n;
	k->keys = abi->keys;
	k->params = abi->open != NULL;
	k->check = abi->check;
	k->abi = abi;
	snprintf(k->path, sizeof k->path, "%.511s", path);
	plugins[nplugins++] = k;
	return 0; /* the handle stays open for the process's life */
fail:
	dlclose(h);
	return -1;
}

int kernel_load_dir(const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, **grown;
	size_t n = 0, cap = 0;
	int rc = -1;

	if (!d) {
		snprintf(err, errlen, "%s: cannot open the kernel directory", dir);
		return -1;
	}
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 3, ".so"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if (!(grown = realloc(names, cap * sizeof *names)))
				goto done;
			names = grown;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto done;
		n++;
	}
	qsort(names, n, sizeof *names, name_cmp);
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		char path[512];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
			snprintf(err, errlen, "%s/%s: path too long", dir, names[i]);
			rc = -1;
		} else {
			rc = kernel_load(path, err, errlen);
		}
	}
done:
	if (rc && !*err)
		snprintf(err, errlen, "%s: out of memory", dir);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
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
		if (kernel_open(k, text, &state, err, errlen))
			rc = TALLY_EINVAL;
		else
			kernel_close(k, state);
	}
done:
	free(text);
	json_decref(empty);
	return rc;
}

int kernel_open(const struct kernel *k, const char *params, void **state, char *err,
		size_t errlen)
{
	*state = NULL;
	if (!k->abi || !k->abi->open)
		return 0;
	*err = '\0';
	if (k->abi->open(params, state, err, errlen)) {
		if (!*err)
			snprintf(err, errlen, "params: refused by kernel %s", k->name);
		return -1;
	}
	return 0;
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

int kernel_has_result(const struct kernel *k)
{
	return k->result || (k->abi && k->abi->result);
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
		char err[256];
		if (kernel_run_batch(k, NULL, seed, b, first, n, NULL, out, err, sizeof err))
			return;
	}
}
