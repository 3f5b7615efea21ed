/* Long-poll parking: requests that wait for an event (a bit in a mask whose meaning the API
 * chooses) or for their deadline, whichever comes first, and one timed wake (http_wake_at).
 * Times are monotonic ms passed in by the caller, so the module reads no clock and never
 * sleeps: the event loop asks park_next() how long it may wait and calls park_tick() then.
 * Resuming is the caller's: park calls its resume function, with park's lock held, for each
 * entry it takes off the list. Thread-safe (one mutex), so that wakes may come from any thread.
 *
 * A handler that parks may race a wake that comes while it runs: park_begin() before the
 * handler and park_add() after it tell them apart (park_add refuses, and the handler runs
 * again rather than sleep through the wake). */
#ifndef TALLY_PARK_H
#define TALLY_PARK_H

#include <pthread.h>
#include <stdint.h>

/* One parked request, embedded in it. All zero is "never parked". */
struct park_entry {
	int64_t until;  /* its deadline, monotonic ms */
	unsigned on;    /* the events that wake it */
	uint64_t gen;   /* the park's wake count when its handler last began */
	struct park_entry *prev, *next;
	int in_list;
};

/* The parked entries. Embedded; park_init() and park_release() bracket its life. */
struct park {
	pthread_mutex_t lock; /* guards everything below */
	void (*resume)(struct park_entry *e, void *ctx);
	void *ctx;
	struct park_entry *list;
	int64_t next;       /* no deadline in the list is earlier (INT64_MAX: none known) */
	uint64_t gen;       /* counts wakes by event */
	int64_t wake_at;    /* the timed wake, monotonic ms; 0: none */
	unsigned wake_at_on;
};

/* Sets up an empty park whose entries are handed to resume(e, ctx) when they wake. Can't fail. */
void park_init(struct park *p, void (*resume)(struct park_entry *e, void *ctx), void *ctx);
/* Releases what park_init set up. Entries still parked are forgotten, not resumed. */
void park_release(struct park *p);

/* Records that e's handler begins now: a wake from now on makes park_add() refuse e. */
void park_begin(struct park *p, struct park_entry *e);
/* Parks e until monotonic until_ms or any event in on. Returns 0 when parked, or 1 when a wake
 * by event came since park_begin(e): then e is not parked, and its handler should run again.
 * Can't fail. */
int park_add(struct park *p, struct park_entry *e, int64_t until_ms, unsigned on);
/* Takes e off the list if it is there (it ended while parked). Can't fail. */
void park_remove(struct park *p, struct park_entry *e);

/* Resumes the entries waiting for any event in events (0: none). Can't fail. */
void park_wake(struct park *p, unsigned events);
/* Resumes every entry, whatever it waits for (stopping). Can't fail. */
void park_wake_all(struct park *p);
/* Sets the timed wake: park_tick() at or after monotonic at_ms does park_wake(p, events).
 * 0 cancels; a new one replaces the last. Returns 1 when it is earlier than the one it
 * replaced (or there was none): a loop waiting for park_next() must then look again. */
int park_wake_at(struct park *p, int64_t at_ms, unsigned events);
/* Runs the timed wake if it is due at now and resumes the entries whose deadline has come.
 * Returns park_next(). Can't fail. */
int64_t park_tick(struct park *p, int64_t now);
/* Returns the earliest time park_tick() has something to do, monotonic ms (INT64_MAX: none;
 * it may be earlier than needed, never later). */
int64_t park_next(struct park *p);

#endif
