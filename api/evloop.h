/* The event loop and its group commit: the core of the coordinator's design.
 *   1. One thread runs everything: the HTTP layer, every handler, every commit, the timer.
 *   2. Each pass runs the handlers of what arrived since the last one.
 *   3. The pass ends with one COMMIT of all their writes, however many requests it served.
 *   4. Replies that report a change wait for that commit, and turn into 503s if it fails.
 *   5. Grants and heartbeats do not wait: a grant lost with its commit is made again, never
 *      counted twice (server/coord.h, Durability).
 * (Redis shows the same design as ae.c plus beforeSleep.) The loop knows nothing of HTTP: it
 * drives the HTTP layer through struct evloop_io (a descriptor to wait on, a pass to run, the
 * replies to let go) and the application through struct evloop_hooks. */
#ifndef TALLY_EVLOOP_H
#define TALLY_EVLOOP_H

#include <stdint.h>
#include "err.h"
#include "latency.h"

#define EVLOOP_STOP_MS 200  /* how long a stopping loop goes on answering */
#define EVLOOP_STALL_MS 2000 /* a pass this much later than due means the loop was held up */

/* What the loop drives (the HTTP layer). Every function runs on the loop's thread. */
struct evloop_io {
	int fd; /* readable when the io has work for a pass */
	/* Returns the monotonic ms (timefmt_mono_ms) by which the io needs a pass even if fd
	 * stays quiet (INT64_MAX: none). */
	int64_t (*deadline)(void *ctx);
	/* One pass: reads what arrived, runs its handlers, writes what is ready. A handler whose
	 * reply reports a change (evloop_changes moved) holds it for evloop_io.release. stopping:
	 * evloop_stop() was called; the loop ends within EVLOOP_STOP_MS. */
	void (*run)(void *ctx, int stopping);
	/* After the pass's commit: lets the held replies go, each turned into a 503 when
	 * committed is 0. Returns how many it let go. */
	int (*release)(void *ctx, int committed);
	void *ctx;
};

/* The application's hooks; they run on the loop's thread, as the handlers do. Any may be NULL. */
struct evloop_hooks {
	uint64_t (*changes)(void *app); /* moves when a handler made a change its reply reports */
	int (*dirty)(void *app);        /* 1: there is something to commit */
	int (*flush)(void *app);        /* commits; 0 on success */
	void (*stalled)(void *app, int64_t ms); /* the loop itself was held up ms (SIGSTOP, a slow
						 * disk): nothing was heard meanwhile */
	void (*timer)(void *app);       /* the time set with evloop_timer_at() has come */
	void *app;
};

struct evloop;

/* Makes a loop (not running yet) that calls hooks (copied). Sets *out; TALLY_ENOMEM, or
 * TALLY_EIO when the descriptor that wakes it cannot be made. */
TALLY_WUR enum tally_err evloop_new(const struct evloop_hooks *hooks, struct evloop **out);
/* Starts the loop's thread, driving io (copied). TALLY_EIO when the thread cannot start. */
TALLY_WUR enum tally_err evloop_start(struct evloop *l, const struct evloop_io *io);
/* Stops the loop: it goes on answering what is in flight for EVLOOP_STOP_MS, runs the io once
 * more to send what the last commit let go, and ends; then what is left is committed (a change
 * made without a reply that waits, such as a grant). Returns when the thread has ended. Accepts
 * NULL and a loop never started. */
void evloop_stop(struct evloop *l);
/* Frees l, after evloop_stop(). Accepts NULL. */
void evloop_free(struct evloop *l);

/* Sets the timer: at monotonic at_ms (0: never) the loop calls the timer hook, once. A new
 * time replaces the last. Thread-safe. */
void evloop_timer_at(struct evloop *l, int64_t at_ms);
/* Makes a loop that waits look at evloop_io.deadline() again; for other threads (a no-op on the
 * loop's own). Thread-safe. */
void evloop_wake(struct evloop *l);

/* Returns the changes hook's count (0 without the hook). On the loop's thread. */
uint64_t evloop_changes(struct evloop *l);
/* Commits now rather than at the end of the pass (a stopping loop may not have another pass).
 * Returns 0, or -1 when the commit failed: then the replies held in this pass fail too. On the
 * loop's thread. */
TALLY_WUR int evloop_commit(struct evloop *l);
/* Returns the latency of the commits so far (borrowed; on the loop's thread). */
const struct latency *evloop_commit_latency(const struct evloop *l);

#endif
