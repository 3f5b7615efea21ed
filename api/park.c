/* Long-poll parking: the parked list, wakes by event mask, deadlines and the one timed wake. The
 * caller brings the time and does the resuming, so this file holds only the bookkeeping. */
#include <stddef.h>
#include "park.h"

void park_init(struct park *p, void (*resume)(struct park_entry *e, void *ctx), void *ctx)
{
	*p = (struct park){ .resume = resume, .ctx = ctx, .next = INT64_MAX };
	pthread_mutex_init(&p->lock, NULL);
}

void park_release(struct park *p)
{
	pthread_mutex_destroy(&p->lock);
}

/* Takes e off the list; lock held. */
static void park_unlink(struct park *p, struct park_entry *e)
{
	if (!e->in_list)
		return;
	if (e->prev)
		e->prev->next = e->next;
	else
		p->list = e->next;
	if (e->next)
		e->next->prev = e->prev;
	e->prev = e->next = NULL;
	e->in_list = 0;
}

/* Resumes the entries waiting for any event in wake (0: none) and those whose deadline is at or
 * before now, and notes the earliest deadline left; lock held. */
static void park_resume(struct park *p, unsigned wake, int64_t now)
{
	int64_t next = INT64_MAX;
	struct park_entry *e, *n;

	if (wake)
		p->gen++; /* a handler running now sees it in park_add() */
	for (e = p->list; e; e = n) {
		n = e->next;
		if ((e->on & wake) || e->until <= now) {
			park_unlink(p, e);
			p->resume(e, p->ctx);
		} else if (e->until < next) {
			next = e->until;
		}
	}
	p->next = next;
}

/* park_next(); lock held. */
static int64_t park_next_locked(const struct park *p)
{
	return p->wake_at && p->wake_at < p->next ? p->wake_at : p->next;
}

void park_begin(struct park *p, struct park_entry *e)
{
	pthread_mutex_lock(&p->lock);
	e->gen = p->gen;
	pthread_mutex_unlock(&p->lock);
}

int park_add(struct park *p, struct park_entry *e, int64_t until_ms, unsigned on)
{
	int again;

	pthread_mutex_lock(&p->lock);
	again = e->gen != p->gen;
	if (!again && !e->in_list) {
		e->until = until_ms;
		e->on = on;
		e->prev = NULL;
		e->next = p->list;
		if (p->list)
			p->list->prev = e;
		p->list = e;
		e->in_list = 1;
		if (until_ms < p->next)
			p->next = until_ms;
	}
	pthread_mutex_unlock(&p->lock);
	return again;
}

void park_remove(struct park *p, struct park_entry *e)
{
	pthread_mutex_lock(&p->lock);
	park_unlink(p, e);
	pthread_mutex_unlock(&p->lock);
}

void park_wake(struct park *p, unsigned events)
{
	pthread_mutex_lock(&p->lock);
	park_resume(p, events, INT64_MIN);
	pthread_mutex_unlock(&p->lock);
}

void park_wake_all(struct park *p)
{
	pthread_mutex_lock(&p->lock);
	park_resume(p, ~0u, INT64_MAX);
	pthread_mutex_unlock(&p->lock);
}

int park_wake_at(struct park *p, int64_t at_ms, unsigned events)
{
	int earlier;

	pthread_mutex_lock(&p->lock);
	earlier = at_ms && (!p->wake_at || at_ms < p->wake_at);
	p->wake_at = at_ms;
	p->wake_at_on = events;
	pthread_mutex_unlock(&p->lock);
	return earlier;
}

int64_t park_tick(struct park *p, int64_t now)
{
	int64_t next;

	pthread_mutex_lock(&p->lock);
	if (p->wake_at && p->wake_at <= now) {
		unsigned events = p->wake_at_on;
		p->wake_at = 0;
		park_resume(p, events, now);
	} else if (p->next <= now) {
		park_resume(p, 0, now);
	}
	next = park_next_locked(p);
	pthread_mutex_unlock(&p->lock);
	return next;
}

int64_t park_next(struct park *p)
{
	int64_t next;

	pthread_mutex_lock(&p->lock);
	next = park_next_locked(p);
	pthread_mutex_unlock(&p->lock);
	return next;
}
