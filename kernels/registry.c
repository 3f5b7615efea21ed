/* The kernel registry: built-in kernels, loaded plug-ins, and kernels known by name only (jobs
 * for workers' plug-ins), found by name. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel.h"
#include "registry.h"


/* What a job names when its kernel has no code here, until the job is accepted and the name is
 * made a kernel of its own (kernel_named): params are any object, counts name themselves. */
static const struct kernel kernel_unknown = {
	.name = "",
	.open = 1,
	.params = 1,
};

static const struct kernel *const kernel_table[] = { &kernel_pi, &kernel_count };
#define KERNEL_TABLE_LEN (sizeof kernel_table / sizeof kernel_table[0])

/* Plug-ins: written before threads start (kernel_load_dir), read-only after. */
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

int kernel_add_plugin(struct kernel *k)
{
	if (nplugins == KERNEL_PLUGINS_MAX)
		return -1;
	plugins[nplugins++] = k;
	return 0;
}
