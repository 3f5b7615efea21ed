/* The pass-over memory (passover.h): workers by name in a hash table and in order of their last
 * add; each worker's entries in its own table by job and in order of their add; every entry also
 * in one table by job, so that a job that ended is forgotten without a walk of the workers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "hash.h"
#include "htab.h"
#include "job.h"
#include "passover.h"

struct pentry {
	struct htab_node in_worker; /* w->jobs, by job */
	struct htab_node by_job;    /* p->by_job */
	int64_t job, at;
	struct passover_worker *w;
	struct pentry *older, *newer; /* w's entries, least recently added first */
};

struct passover_worker {
	struct htab_node node; /* p->workers, by name */
	char name[WORKER_NAME_MAX];
	struct htab jobs; /* its entries by job; room for PASSOVER_JOBS_MAX */
	struct pentry *oldest, *newest;
	int64_t last_add;
	struct passover_worker *older, *newer; /* p's workers, least recently added to first */
};

struct passover {
	struct htab workers; /* room for PASSOVER_WORKERS_MAX */
	struct htab by_job;
	struct passover_worker *oldest, *newest;
};

static uint64_t job_hash(int64_t job)
{
	return htab_hash_int((uint64_t)job);
}

struct passover *passover_new(void)
{
	struct passover *p = t_calloc(1, sizeof *p);
	if (p && htab_reserve(&p->workers, PASSOVER_WORKERS_MAX)) {
		free(p);
		return NULL;
	}
	return p;
}

/* The two orders, least recently added first: e among its worker's entries, w among p's. */
static void entry_unlink(struct passover_worker *w, struct pentry *e)
{
	*(e->older ? &e->older->newer : &w->oldest) = e->newer;
	*(e->newer ? &e->newer->older : &w->newest) = e->older;
}

static void entry_push(struct passover_worker *w, struct pentry *e)
{
	e->newer = NULL;
	e->older = w->newest;
	*(w->newest ? &w->newest->newer : &w->oldest) = e;
	w->newest = e;
}

static void worker_unlink(struct passover *p, struct passover_worker *w)
{
	*(w->older ? &w->older->newer : &p->oldest) = w->newer;
	*(w->newer ? &w->newer->older : &p->newest) = w->older;
}

static void worker_push(struct passover *p, struct passover_worker *w)
{
	w->newer = NULL;
	w->older = p->newest;
	*(p->newest ? &p->newest->newer : &p->oldest) = w;
	p->newest = w;
}

/* Takes e out of everything and frees it; its worker too when e was its last. */
static void entry_drop(struct passover *p, struct pentry *e)
{
	struct passover_worker *w = e->w;

	htab_remove(&w->jobs, &e->in_worker);
	htab_remove(&p->by_job, &e->by_job);
	entry_unlink(w, e);
	free(e);
	if (w->jobs.n)
		return;
	htab_remove(&p->workers, &w->node);
	worker_unlink(p, w);
	htab_release(&w->jobs);
	free(w);
}

/* Frees w and its entries. */
static void worker_drop(struct passover *p, struct passover_worker *w)
{
	while (w->jobs.n > 1)
		entry_drop(p, w->oldest);
	entry_drop(p, w->oldest); /* the last: w goes with it */
}

void passover_free(struct passover *p)
{
	if (!p)
		return;
	while (p->oldest)
		worker_drop(p, p->oldest);
	htab_release(&p->workers);
	htab_release(&p->by_job);
	free(p);
}

/* Drops the workers not added to for PASSOVER_TTL_MS: every entry of theirs has expired. */
static void expire_workers(struct passover *p, int64_t now)
{
	while (p->oldest && now - p->oldest->last_add >= PASSOVER_TTL_MS)
		worker_drop(p, p->oldest);
}

static struct passover_worker *worker_find(const struct passover *p, const char *name)
{
	for (struct htab_node *n = htab_first(&p->workers, hash_str(name)); n; n = htab_next(n)) {
		struct passover_worker *w = (struct passover_worker *)n;
		if (!strcmp(w->name, name))
			return w;
	}
	return NULL;
}

static struct pentry *entry_find(const struct passover_worker *w, int64_t job)
{
	for (struct htab_node *n = htab_first(&w->jobs, job_hash(job)); n; n = htab_next(n)) {
		struct pentry *e = (struct pentry *)n;
		if (e->job == job)
			return e;
	}
	return NULL;
}

/* Returns name's memory, made (with no entry, not yet in p's order) when it has none; NULL when
 * out of memory. */
static struct passover_worker *worker_get(struct passover *p, const char *name)
{
	struct passover_worker *w = worker_find(p, name);

	if (w)
		return w;
	if (!(w = t_calloc(1, sizeof *w)))
		return NULL;
	if (htab_reserve(&w->jobs, PASSOVER_JOBS_MAX)) {
		free(w);
		return NULL;
	}
	snprintf(w->name, sizeof w->name, "%s", name);
	return w;
}

enum tally_err passover_add(struct passover *p, const char *worker, int64_t job, int64_t now)
{
	struct passover_worker *w;
	struct pentry *e = NULL;
	int made;

	expire_workers(p, now);
	if (!(w = worker_get(p, worker)))
		return TALLY_ENOMEM;
	made = !w->jobs.n;
	if (!made && (e = entry_find(w, job))) {
		entry_unlink(w, e); /* known: renewed, and now the most recently added */
	} else if (htab_reserve(&p->by_job, p->by_job.n + 1) || !(e = t_malloc(sizeof *e))) {
		if (made) {
			htab_release(&w->jobs);
			free(w);
		}
		return TALLY_ENOMEM;
	} else {
		if (made && p->workers.n >= PASSOVER_WORKERS_MAX)
			worker_drop(p, p->oldest);
		if (w->jobs.n >= PASSOVER_JOBS_MAX)
			entry_drop(p, w->oldest); /* not its last: w stays */
		e->job = job;
		e->w = w;
		htab_insert(&w->jobs, &e->in_worker, job_hash(job));
		htab_insert(&p->by_job, &e->by_job, job_hash(job));
	}
	e->at = now;
	entry_push(w, e);
	if (made)
		htab_insert(&p->workers, &w->node, hash_str(worker));
	else
		worker_unlink(p, w);
	w->last_add = now;
	worker_push(p, w);
	return TALLY_OK;
}

const struct passover_worker *passover_of(struct passover *p, const char *worker, int64_t now)
{
	struct passover_worker *w;

	expire_workers(p, now);
	if (!(w = worker_find(p, worker)))
		return NULL;
	while (w->jobs.n > 1 && now - w->oldest->at >= PASSOVER_TTL_MS)
		entry_drop(p, w->oldest);
	/* Its last entry is its newest: it expired only if the worker did, above. */
	return w;
}

int passover_has(const struct passover_worker *w, int64_t job)
{
	return w && entry_find(w, job) != NULL;
}

void passover_forget(struct passover *p, int64_t job)
{
	struct htab_node *n = htab_first(&p->by_job, job_hash(job)), *next;

	for (; n; n = next) {
		struct pentry *e = (struct pentry *)((char *)n - offsetof(struct pentry, by_job));
		next = htab_next(n);
		if (e->job == job)
			entry_drop(p, e);
	}
}

size_t passover_size(const struct passover *p)
{
	return p->by_job.n;
}

size_t passover_workers(const struct passover *p)
{
	return p->workers.n;
}
