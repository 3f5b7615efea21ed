/* The chained hash table of htab.h: power-of-two buckets, chains through the nodes. */
#include <stdlib.h>
#include "alloc.h"
#include "htab.h"

#define HTAB_BUCKETS_MIN 16

void htab_init(struct htab *t)
{
	t->bucket = NULL;
	t->nbuckets = t->n = 0;
}

void htab_release(struct htab *t)
{
	free(t->bucket);
	htab_init(t);
}

void htab_clear(struct htab *t)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		t->bucket[i] = NULL;
	t->n = 0;
}

static size_t slot(const struct htab *t, uint64_t hash)
{
	return (size_t)(hash & (t->nbuckets - 1));
}

enum tally_err htab_reserve(struct htab *t, size_t n)
{
	size_t nb = t->nbuckets ? t->nbuckets : HTAB_BUCKETS_MIN;
	struct htab_node **b;

	if (n <= t->nbuckets)
		return TALLY_OK;
	while (nb < n)
		nb *= 2;
	if (!(b = t_calloc(nb, sizeof *b)))
		return TALLY_ENOMEM;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct htab_node *e, *next;
		for (e = t->bucket[i]; e; e = next) {
			size_t k = (size_t)(e->hash & (nb - 1));
			next = e->next;
			e->next = b[k];
			b[k] = e;
		}
	}
	free(t->bucket);
	t->bucket = b;
	t->nbuckets = nb;
	return TALLY_OK;
}

void htab_insert(struct htab *t, struct htab_node *node, uint64_t hash)
{
	struct htab_node **head = &t->bucket[slot(t, hash)];
	node->hash = hash;
	node->next = *head;
	*head = node;
	t->n++;
}

void htab_remove(struct htab *t, struct htab_node *node)
{
	struct htab_node **p = &t->bucket[slot(t, node->hash)];
	while (*p && *p != node)
		p = &(*p)->next;
	if (*p) {
		*p = node->next;
		node->next = NULL;
		t->n--;
	}
}

struct htab_node *htab_first(const struct htab *t, uint64_t hash)
{
	struct htab_node *e = t->nbuckets ? t->bucket[slot(t, hash)] : NULL;
	while (e && e->hash != hash)
		e = e->next;
	return e;
}

struct htab_node *htab_next(const struct htab_node *node)
{
	struct htab_node *e = node->next;
	while (e && e->hash != node->hash)
		e = e->next;
	return e;
}
