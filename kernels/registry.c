/* The kernel registry: built-in kernels, loaded plug-ins, and kernels known by name only (jobs
 * for workers' plug-ins), found by name. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "hash.h"
#include "htab.h"
#include "kernel.h"
#include "registry.h"


/* What a job names when its kernel has no code here, until the job is in the coordinator's
 * memory and the name is made a kernel of its own (kernel_named), and what a job read back from
 * the store names when its name is no kernel now: params are any object, counts name
 * themselves. Its name is the spec's kernel_name. */
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
/* Kernels known by name only: made on demand, each freed with the last hold on it (the jobs in
 * the coordinator's memory hold theirs), in a hash table by name. No limit of its own: there
 * are never more than the jobs in memory, which the coordinator caps. Under the lock. */
struct named {
	struct kernel k; /* k.name is name */
	char name[KERNEL_NAME_MAX];
	size_t holds;
	struct htab_node node;
};
static struct htab named_tab;
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

/* Returns the entry of the kernel known by name only called name, or NULL. Under the lock. */
static struct named *named_find(const char *name)
{
	for (struct htab_node *n = htab_first(&named_tab, hash_str(name)); n; n = htab_next(n)) {
		struct named *e = (struct named *)(void *)((char *)n - offsetof(struct named, node));
		if (!strcmp(e->name, name))
			return e;
	}
	return NULL;
}

/* Returns k's entry when k is a kernel known by name only, or NULL. Under the lock. */
static struct named *named_of(const struct kernel *k)
{
	struct named *e = k && k->name ? named_find(k->name) : NULL;
	return e && &e->k == k ? e : NULL;
}

const struct kernel *kernel_known(const char *name)
{
	const struct kernel *k = kernel_find(name);
	struct named *e;

	if (k)
		return k;
	pthread_mutex_lock(&named_lock);
	e = named_find(name);
	pthread_mutex_unlock(&named_lock);
	return e ? &e->k : NULL;
}

const struct kernel *kernel_named(const char *name)
{
	const struct kernel *k = kernel_find(name);
	struct named *e;

	if (k || !kernel_name_ok(name))
		return k;
	pthread_mutex_lock(&named_lock);
	if (!(e = named_find(name)) && !htab_reserve(&named_tab, named_tab.n + 1) &&
	    (e = t_calloc(1, sizeof *e))) {
		snprintf(e->name, sizeof e->name, "%s", name);
		e->k.name = e->name;
		e->k.open = 1;
		e->k.params = 1;
		htab_insert(&named_tab, &e->node, hash_str(name));
	}
	if (e)
		e->holds++;
	pthread_mutex_unlock(&named_lock);
	return e ? &e->k : NULL;
}

void kernel_hold(const struct kernel *k)
{
	struct named *e;
	pthread_mutex_lock(&named_lock);
	if ((e = named_of(k)))
		e->holds++;
	pthread_mutex_unlock(&named_lock);
}

void kernel_drop(const struct kernel *k)
{
	struct named *e;
	pthread_mutex_lock(&named_lock);
	if ((e = named_of(k)) && !--e->holds) {
		htab_remove(&named_tab, &e->node);
		free(e);
	}
	pthread_mutex_unlock(&named_lock);
}

size_t kernel_named_count(void)
{
	size_t n;
	pthread_mutex_lock(&named_lock);
	n = named_tab.n;
	pthread_mutex_unlock(&named_lock);
	return n;
}

const struct kernel *kernel_stored(const char *name)
{
	const struct kernel *k = kernel_known(name);
	return k ? k : kernel_name_ok(name) ? &kernel_unknown : NULL;
}

const char *kernel_name_of(const struct job_spec *spec)
{
	return spec->kernel_name[0] || !spec->kernel ? spec->kernel_name : spec->kernel->name;
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
