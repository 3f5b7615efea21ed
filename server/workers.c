/* The worker registry: a chained hash table by name, and the names of worker states. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "workers.h"

#define WORKERS_BUCKETS 4096

struct wentry {
	char name[WORKER_NAME_MAX];
	int64_t first_seen, last_seen;
	unsigned leases;
	int64_t lease_id, lease_granted;
	struct wentry *next;
};

struct workers {
	struct wentry *bucket[WORKERS_BUCKETS];
	size_t n;
};

const char *worker_state_name(enum worker_state s)
{
	static const char *const names[WORKER_STATES] = { "active", "idle", "lost", "quarantined" };
	return (unsigned)s < WORKER_STATES ? names[s] : "lost";
}

static size_t workers_hash(const char *name)
{
	return (size_t)(hash_str(name) % WORKERS_BUCKETS);
}

struct workers *workers_new(void)
{
	return calloc(1, sizeof(struct workers));
}

void workers_free(struct workers *ws)
{
	if (!ws)
		return;
	for (size_t i = 0; i < WORKERS_BUCKETS; i++) {
		struct wentry *e = ws->bucket[i], *n;
		for (; e; e = n) {
			n = e->next;
			free(e);
		}
	}
	free(ws);
}

/* Forgets the worker heard from longest ago. */
static void workers_evict(struct workers *ws)
{
	struct wentry **oldest = NULL;
	for (size_t i = 0; i < WORKERS_BUCKETS; i++)
		for (struct wentry **p = &ws->bucket[i]; *p; p = &(*p)->next)
			if (!oldest || (*p)->last_seen < (*oldest)->last_seen)
				oldest = p;
	if (oldest) {
		struct wentry *e = *oldest;
		*oldest = e->next;
		free(e);
		ws->n--;
	}
}

/* Returns name's entry, made if need be (NULL when out of memory). */
static struct wentry *workers_get(struct workers *ws, const char *name, int64_t now)
{
	size_t i = workers_hash(name);
	struct wentry *e;
	for (e = ws->bucket[i]; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	if (ws->n >= WORKERS_MAX)
		workers_evict(ws);
	if (!(e = calloc(1, sizeof *e)))
		return NULL;
	snprintf(e->name, sizeof e->name, "%s", name);
	e->first_seen = e->last_seen = now;
	e->next = ws->bucket[i];
	ws->bucket[i] = e;
	ws->n++;
	return e;
}

int workers_known(const struct workers *ws, const char *name)
{
	for (const struct wentry *e = ws->bucket[workers_hash(name)]; e; e = e->next)
		if (!strcmp(e->name, name))
			return 1;
	return 0;
}

void workers_seen(struct workers *ws, const char *name, int64_t now)
{
	struct wentry *e = workers_get(ws, name, now);
	if (e && now > e->last_seen)
		e->last_seen = now;
}

void workers_reset_leases(struct workers *ws)
{
	for (size_t i = 0; i < WORKERS_BUCKETS; i++)
		for (struct wentry *e = ws->bucket[i]; e; e = e->next) {
			e->leases = 0;
			e->lease_id = 0;
		}
}

void workers_holds(struct workers *ws, const char *name, int64_t lease_id, int64_t granted_at)
{
	struct wentry *e = workers_get(ws, name, granted_at);
	if (!e)
		return;
	e->leases++;
	if (!e->lease_id || granted_at >= e->lease_granted) {
		e->lease_id = lease_id;
		e->lease_granted = granted_at;
	}
}

void workers_each(const struct workers *ws, int (*each)(void *ctx, const struct worker_info *w),
		  void *ctx)
{
	for (size_t i = 0; i < WORKERS_BUCKETS; i++)
		for (const struct wentry *e = ws->bucket[i]; e; e = e->next) {
			struct worker_info w = { e->name, e->first_seen, e->last_seen, e->leases,
						 e->lease_id };
			if (each(ctx, &w))
				return;
		}
}

