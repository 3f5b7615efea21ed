/* Write-behind: the durability of the coordinator's live state (server/live.h). It reads the
 * state from the store at start, writes what changed into one open transaction and commits it
 * once per pass (wb_flush), and when a write fails, reads the state back from the store, so that
 * memory never runs ahead of what a later flush can commit. Lease ids are reserved in committed
 * blocks (the store's "lease_seq_limit"), so that an id handed out before a crash is never
 * handed out again.
 *
 * Its state, and what moves it:
 *
 *   CLEAN ---wb_sync, wb_commit (writes), wb_begin---> WRITTEN ---wb_flush, wb_commit---> CLEAN
 *   CLEAN, WRITTEN ---wb_lose, a failed wb_sync/wb_commit (reload works)---> LOST
 *   LOST ---wb_flush: rolls back, reloads, TALLY_EDB---> CLEAN
 *   CLEAN, WRITTEN ---wb_flush whose write or commit fails: reloads, TALLY_EDB---> CLEAN
 *   any reload that fails ---> BROKEN (after a flush's failure) or BROKEN_LOST (mid-pass)
 *   BROKEN ---wb_flush, wb_check: the reload works---> CLEAN
 *   BROKEN_LOST ---wb_flush, wb_check: the reload works---> LOST
 *
 * A reply that reports a change must wait for the flush; LOST and BROKEN_LOST make that flush
 * fail, so that every reply of the pass says the change was not made. Not thread-safe: the
 * coordinator's one thread calls it. */
#ifndef TALLY_WB_H
#define TALLY_WB_H

#include <stdint.h>
#include "err.h"

struct db;
struct live;

enum wb_state {
	WB_CLEAN,       /* the store holds every change written so far (memory may hold newer) */
	WB_WRITTEN,     /* changes are written into the open transaction, not yet committed */
	WB_LOST,        /* changes of this pass are gone: the next flush rolls back, reloads, fails */
	WB_BROKEN,      /* a reload failed: memory is empty; a flush already said so */
	WB_BROKEN_LOST, /* a reload failed mid-pass: as BROKEN, and the next flush fails too */
};

/* reloaded: called after memory was read back from the store (lease expiries may have changed).
 * written (may be NULL): called when memory's changes are written, just before the jobs and
 * leases that finished leave memory (live_written), so that what is kept about them elsewhere
 * can go with them. */
struct wb_hooks {
	void (*reloaded)(void *ctx);
	void *ctx;
	void (*written)(void *ctx);
};

struct wb;

/* Returns a new write-behind of live to db (both borrowed until wb_free), or NULL when out of
 * memory. Live leases read at start get at least lease_timeout_ms from then. */
struct wb *wb_new(struct db *db, struct live *live, int64_t lease_timeout_ms,
		  struct wb_hooks hooks);
/* Frees it. Accepts NULL. */
void wb_free(struct wb *wb);
/* Returns the state. */
enum wb_state wb_state(const struct wb *wb);
/* Returns 1 in BROKEN and BROKEN_LOST: memory is empty, and operations must be refused
 * (TALLY_EDB) until a flush or a check reads the store back. */
int wb_broken(const struct wb *wb);
/* Returns 1 unless the state is CLEAN and memory holds no change: a flush has work to do (or a
 * failure to report). */
int wb_dirty(const struct wb *wb);

/* Reads the live state from the store at start (now: the injected clock's time) and reserves
 * lease ids above any stored (a commit of its own). TALLY_EDB, TALLY_ENOMEM: memory is left
 * empty. */
TALLY_WUR enum tally_err wb_load(struct wb *wb, int64_t now);
/* Writes memory's changes into the open transaction, not committing, so that the store's own
 * reads see them: WRITTEN (LOST stays LOST). On failure the transaction is rolled back, memory
 * read back from the store, and the state LOST (BROKEN_LOST when that failed too); TALLY_EDB. */
TALLY_WUR enum tally_err wb_sync(struct wb *wb);
/* Writes memory's changes as wb_sync does and opens the transaction for writes the live state
 * does not hold (deleting finished jobs): WRITTEN, so that the pass's flush commits them. After
 * a failed write of the caller's, call wb_lose. TALLY_EDB in LOST or BROKEN* (a write now would
 * be rolled back), or as wb_sync's. */
TALLY_WUR enum tally_err wb_begin(struct wb *wb);
/* Writes and commits now, mid-pass (more lease ids are needed at once): CLEAN. TALLY_EDB in LOST
 * or BROKEN*, without writing; on failure as wb_sync's. */
TALLY_WUR enum tally_err wb_commit(struct wb *wb);
/* Marks this pass's changes lost (memory half changed, or a read that may have rolled back the
 * open transaction failed): LOST, or BROKEN_LOST from BROKEN. */
void wb_lose(struct wb *wb);
/* A read of the store failed: in WRITTEN, the failure may have rolled back the open
 * transaction, so the changes are lost (wb_lose); in other states nothing was at stake. */
void wb_read_failed(struct wb *wb);

/* Ends a pass: commits every change since the last flush, or none of them. In BROKEN* it reads
 * the store back first (TALLY_EDB when that fails again); in LOST it rolls back, reads back and
 * returns TALLY_EDB; else it writes and commits (a failed commit reads back: TALLY_EDB). Any
 * failure is logged and makes wb_check() report the store unhealthy until a write works. */
TALLY_WUR enum tally_err wb_flush(struct wb *wb);
/* Checks that the store answers a query and, after a failed flush, that it takes a write again
 * (a probe in a transaction of its own, at most once a second by now; only when memory is
 * clean). In BROKEN* it tries a reload first. TALLY_EDB while it does not. */
TALLY_WUR enum tally_err wb_check(struct wb *wb, int64_t now);

#endif
