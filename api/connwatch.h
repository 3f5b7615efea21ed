/* The watch on connections: every phase of a connection in which it is the client's turn to act
 * (sending a request, sitting idle before the next one, taking a reply) must end within the
 * request timeout, so that a client that sends slowly, sits idle or does not read its replies
 * cannot hold a connection; MHD's own timeout restarts with every byte. The phase in which the
 * server holds the request (its handler, a parked long poll, a reply held for the commit) has no
 * deadline here. Times are monotonic ms passed in: the module reads no clock. Not thread-safe:
 * the event loop's thread only. */
#ifndef TALLY_CONNWATCH_H
#define TALLY_CONNWATCH_H

#include <stdint.h>

#define CONNWATCH_SWEEP_MS 500 /* how often connections are checked against their deadline */

enum conn_phase {
	CONN_READING, /* reading a request (headers, then body), or idle before the next one */
	CONN_SERVING, /* the server holds the request: no deadline */
	CONN_WRITING, /* its reply is queued: the client must take it all within the timeout */
};

/* One TCP connection, owned by its connwatch. */
struct conn {
	int fd;               /* borrowed: MHD closes it */
	enum conn_phase phase;
	int64_t since;        /* when the phase began (or was restarted) */
	struct conn *prev, *next;
};

/* The open connections. Embedded; connwatch_init() sets it up, and every conn must be removed
 * before it goes. */
struct connwatch {
	struct conn *list;
	uint64_t n;         /* connections in the list */
	int64_t timeout_ms; /* the request timeout */
	int64_t next_sweep;
};

/* Sets up an empty watch whose phases must end within timeout_ms. Can't fail. */
void connwatch_init(struct connwatch *w, int64_t timeout_ms);
/* Watches the connection on fd from now, reading its first request. Returns the new conn, owned
 * by w until connwatch_remove(), or NULL when out of memory (the connection is then unwatched). */
struct conn *connwatch_add(struct connwatch *w, int fd, int64_t now);
/* Stops watching c and frees it. Accepts NULL. */
void connwatch_remove(struct connwatch *w, struct conn *c);
/* Moves c into phase, whose deadline counts from now (setting the phase it is in restarts it).
 * Accepts NULL (an unwatched connection). */
void connwatch_phase(struct conn *c, enum conn_phase phase, int64_t now);
/* At most every CONNWATCH_SWEEP_MS: shuts down every connection whose phase began more than the
 * timeout before now and is not CONN_SERVING (MHD then sees it closed and cleans up), with a
 * reset when replies are still unsent. Returns how many it shut down. Can't fail. */
int connwatch_sweep(struct connwatch *w, int64_t now);

#endif
