/* Unfinished jobs by owner (owners.h): a hash table of owners' counts, referenced by their jobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "hash.h"
#include "owners.h"

void owners_init(struct owners *o)
{
	htab_init(&o->byname);
	o->queued = o->running = 0;
}

void owners_release(struct owners *o)
{
	for (size_t i = 0; i < o->byname.nbuckets; i++) {
		struct htab_node *e, *next;
		for (e = o->byname.bucket[i]; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	htab_release(&o->byname);
	owners_init(o);
}

static struct owner_tally *owner_find(const struct owners *o, const char *owner)
{
	for (struct htab_node *e = htab_first(&o->byname, hash_str(owner)); e; e = htab_next(e))
		if (!strcmp(((struct owner_tally *)e)->owner, owner))
			return (struct owner_tally *)e;
	return NULL;
}

enum tally_err owners_ref(struct owners *o, const char *owner, struct owner_tally **out)
{
	struct owner_tally *e = owner_find(o, owner);

	if (!e) {
		if (htab_reserve(&o->byname, o->byname.n + 1) || !(e = t_calloc(1, sizeof *e)))
			return TALLY_ENOMEM;
		snprintf(e->owner, sizeof e->owner, "%s", owner);
		htab_insert(&o->byname, &e->node, hash_str(e->owner));
	}
	e->jobs++;
	*out = e;
	return TALLY_OK;
}

void owners_unref(struct owners *o, struct owner_tally *e)
{
	if (--e->jobs)
		return;
	htab_remove(&o->byname, &e->node);
	free(e);
}

void owners_count(struct owners *o, struct owner_tally *e, enum job_state state, int delta)
{
	if (state == JOB_QUEUED) {
		e->queued += (uint64_t)(int64_t)delta;
		o->queued += (uint64_t)(int64_t)delta;
	} else if (state == JOB_RUNNING) {
		e->running += (uint64_t)(int64_t)delta;
		o->running += (uint64_t)(int64_t)delta;
	}
}

uint64_t owners_unfinished(const struct owners *o, const char *owner)
{
	const struct owner_tally *e = owner_find(o, owner);
	return e ? e->queued + e->running : 0;
}

uint64_t owners_total(const struct owners *o)
{
	return o->queued + o->running;
}

void owners_each(const struct owners *o, void (*fn)(void *ctx, const struct owner_tally *e),
		 void *ctx)
{
	for (size_t i = 0; i < o->byname.nbuckets; i++)
		for (const struct htab_node *e = o->byname.bucket[i]; e; e = e->next)
			fn(ctx, (const struct owner_tally *)e);
}
