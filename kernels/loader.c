/* The plug-in loader: every *.so of a directory, dlopen'ed, its table (include/tally/kernel.h)
 * checked and registered as a kernel. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel.h"
#include "registry.h"

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
	if (!n || !(k = calloc(1, sizeof *k))) {
		snprintf(err, errlen, "%s: no count names, or out of memory", path);
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
	if (kernel_add_plugin(k)) {
		snprintf(err, errlen, "%s: too many plug-ins (%d)", path, KERNEL_PLUGINS_MAX);
		free(k);
		goto fail;
	}
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
