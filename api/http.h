/* The HTTP layer: the only code that includes microhttpd.h. The event loop (evloop.h) runs its
 * passes, in which every handler runs; a handler may park its request (long poll, park.h) until
 * http_wake() or its deadline, and is then called again from the start. A reply reporting a
 * change is held until the end of the pass commits it (evloop.h).
 * Bodies are capped at HTTP_BODY_MAX (413 above it) and must be application/json when present
 * (415 otherwise). */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "buf.h"
#include "wire.h"
#include "evloop.h"
#include "latency.h"

#define HTTP_BODY_MAX WIRE_BODY_MAX
#define HTTP_CONN_LIMIT 16384 /* connections open at once by default: 10,000 long polls and room */

struct http;
struct req;

/* A handler answers with exactly one reply_*() call, or parks the request with reply_park(). */
typedef void (*http_handler)(struct req *r, void *app);

/* Who sent a request, as the authorize hook found it. The request keeps this copy for its
 * whole life (parkings included), so it outlives whatever table the hook found it in. name is ""
 * for nobody in particular; role is the application's. */
struct http_caller {
	char name[WIRE_USER_NAME_MAX];
	unsigned role;
};

/* Runs before a route's handler with the route's role: returns 0 to let it run, having filled
 * *who (zeroed before), or -1 after replying (401, 403). On the event loop's thread. */
typedef int (*http_authorize)(struct req *r, void *app, unsigned role, struct http_caller *who);

struct http_route {
	const char *method;
	const char *pattern; /* "/v1/jobs/{}/cancel": each {} matches one path segment */
	http_handler fn;
	unsigned role; /* passed to authorize(); the application's meaning */
};

/* What the HTTP layer measures, per route (routes[i] is stats[i]; stats[nroutes] counts the
 * requests that matched no route), and the commits of its passes. */
struct http_route_stats {
	uint64_t status[6]; /* replies by class: [1] 1xx .. [5] 5xx; [0] connections closed */
	struct latency latency; /* from the request's first byte to its reply queued */
};
struct http_stats {
	const struct http_route *routes;
	size_t nroutes;
	const struct http_route_stats *per_route; /* nroutes + 1 */
	struct latency commit;                    /* the event loop's commits */
	uint64_t connections;                     /* open now */
};

/* Options; 0 or NULL takes the default. */
struct http_options {
	unsigned request_timeout_s; /* a connection may take this long to send a whole request
				     * (headers and body), to take a reply, or to sit idle
				     * between two: 30 */
	unsigned max_connections;   /* open at once; more wait in the kernel's queue:
				     * HTTP_CONN_LIMIT (each takes a file descriptor: fdlimit.h) */
	const char *tls_cert_pem;   /* with tls_key_pem: serve HTTPS (GnuTLS); NULL: plain HTTP */
	const char *tls_key_pem;
};

/* Listens on host:port (port 0: any free port) for routes, calling each handler with app and
 * authorize (may be NULL) before it; loop (borrowed until http_stop) runs the passes once
 * evloop_start() is given http_io(). opts may be NULL. Returns NULL after writing why into err. */
struct http *http_start(const char *host, uint16_t port, const struct http_route *routes,
			size_t nroutes, void *app, http_authorize authorize, struct evloop *loop,
			const struct http_options *opts, char *err, size_t errlen);
/* Returns what the event loop drives: h's descriptor, pass and held replies. Can't fail. */
struct evloop_io http_io(struct http *h);
/* Returns the port actually bound. */
uint16_t http_port(const struct http *h);
/* Closes every connection and frees h, after evloop_stop() (the loop answered parked requests
 * as it stopped). Accepts NULL. */
void http_stop(struct http *h);
/* Wakes the parked requests waiting for any of `events` (a mask whose bits the API defines);
 * their handlers run again. Thread-safe. */
void http_wake(struct http *h, unsigned events);
/* Does http_wake(h, events) at wall-clock time at_ms as well (0: cancel). Thread-safe.
 * (Parking itself runs on the monotonic clock, so a clock step does not strand requests.) */
void http_wake_at(struct http *h, int64_t at_ms, unsigned events);
/* Replies with text (taken: freed by the layer) of the given Content-Type. */
void reply_text(struct req *r, unsigned status, const char *content_type, char *text);
/* Fills *out with the layer's figures. For handlers (on the event loop's thread). */
void req_stats(const struct req *r, struct http_stats *out);

/* The i-th {} segment of the matched pattern, borrowed for the request's life. */
const char *req_param(const struct req *r, size_t i);
/* Returns request header name (case-insensitive), or NULL when absent. Borrowed. */
const char *req_header(struct req *r, const char *name);
/* A query argument, or NULL. Borrowed. */
const char *req_query(struct req *r, const char *name);
/* Returns the first query argument whose name is not in allowed[] (NULL-terminated), or NULL. */
const char *req_query_unknown(struct req *r, const char *const *allowed);
/* The request body (empty when none), borrowed. */
const struct buf *req_body(const struct req *r);
/* A slot a handler may use across parkings; free is called on it when the request ends. */
void **req_state(struct req *r, void (**free_fn)(void *));
/* Who sent the request, as the authorize hook recorded it (all zero without a hook). Borrowed
 * for the request's life. */
const struct http_caller *req_caller(const struct req *r);
/* Monotonic ms (timefmt_mono_ms) at which the request first reached its handler. */
int64_t req_started(const struct req *r);

/* Replies with status and body (stolen; NULL body means out of memory: 503). */
void reply_json(struct req *r, unsigned status, json_t *body);
/* Replies with {"error": {"code": code, "message": ...}}. */
void reply_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Replies with status and no body. */
void reply_empty(struct req *r, unsigned status);
/* Adds a header to the reply that follows. Both strings are copied. */
void reply_header(struct req *r, const char *name, const char *value);
/* Parks the request until one of the events in wake_on is woken, or monotonic until_ms; then
 * the handler runs again. While stopping, the request is answered 503 instead. */
void reply_park(struct req *r, int64_t until_ms, unsigned wake_on);
/* Returns 1 when the client has closed its end: it died, or gave up on a request that waited
 * (parked, or queued behind a hung server). A client that half-closes after sending its
 * request counts as gone too, as it does for most servers; under TLS a clean close may not be
 * seen (close_notify arrives first). */
int req_gone(const struct req *r);
/* Returns 1 when the request's park deadline has passed (or the server is stopping). */
int req_expired(const struct req *r);

#endif
