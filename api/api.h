/* The API: the route table and one handler file per resource (jobs.c, leases.c, workers.c,
 * health.c).
 * Handlers decode with decode.c, ask the coordinator, and encode the answer. */
#ifndef TALLY_API_H
#define TALLY_API_H

#include <stdatomic.h>
#include <stddef.h>
#include "coord.h"
#include "decode.h"
#include "http.h"
#include "ratelimit.h"
#include "users.h"

/* Who may call: with `open`, everyone may do everything (no tokens and no users: a loopback
 * coordinator, or the CLI's local one); otherwise a caller is the user whose bearer token it
 * sends (common/users.h). The table is read on the event loop's thread only; another thread
 * hands a new one over through `next` (api_users_offer), which the loop takes at its next
 * request, freeing the old one then: so no table is freed while the loop may read it. */
struct api {
	struct coord *coord; /* borrowed */
	int open;
	struct users *users;            /* the loop's (owned) */
	_Atomic(struct users *) next;   /* handed over, not yet taken (owned) */
	/* The lease routes' 404s by user and worker name (leases.c): API_LEASE_MISSES at once,
	 * then one per API_LEASE_MISS_MS; past that, 429s. Set up by whoever makes the API. */
	struct ratelimit lease_misses;
};

/* Route roles: who may call it (struct http_route's role). */
#define API_ROLE_OPEN 0u   /* anyone, with or without a token */
#define API_ROLE_CLIENT 1u /* the jobs API: admin and user (a user sees its own jobs only) */
#define API_ROLE_WORKER 2u /* the lease API: worker */
#define API_ROLE_ADMIN 3u  /* admin only */

/* What parked requests wait for (http_wake's events). */
#define API_WAKE_WORK 1u /* work may be leasable: a job submitted, a lease failed or expired */
#define API_WAKE_JOBS 2u /* a job finished or was cancelled */
#define API_WAIT_MAX_S WIRE_WAIT_MAX_S
/* Retry-After of a 429 (quota_exceeded, server_full), in seconds: a slot frees only when one of
 * the jobs finishes or is cancelled, so sooner is mostly wasted; later would leave a freed slot
 * idle for long. */
#define API_QUOTA_RETRY_S "30"
/* A worker that names leases it has not got (404) API_LEASE_MISSES times at once, then more than
 * once per API_LEASE_MISS_MS, gets 429s on the lease routes until it slows down. A worker that
 * only loses a grant to a coordinator's crash now and then never comes near. */
#define API_LEASE_MISSES 10
#define API_LEASE_MISS_MS 1000

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

/* The authorize hook: unless the API is open, a route needs "Authorization: Bearer <token>" of
 * a user whose role may call it: 401 without a user's token, 403 with one of another role.
 * Fills *who with the user's name and role (enum user_role); an open API's caller is an admin
 * named "". Returns 0, or -1 after replying. */
int api_authorize(struct req *r, void *app, unsigned role, struct http_caller *who);
/* Hands a new users table (stolen) to the API; it replaces the current one at the next request.
 * Thread-safe (the main thread calls it on SIGHUP). A table offered and not yet taken is
 * freed. */
void api_users_offer(struct api *a, struct users *users);
/* Frees the users tables, once no request can run any more. */
void api_release(struct api *a);
/* The jobs the caller of r may see and act on: every job for an admin (and an open API),
 * only its own for anyone else. Borrows r's caller. */
struct coord_scope api_scope(const struct req *r);
/* The owner of the jobs the caller of r submits: its name ("" for an open API's). Borrowed. */
const char *api_owner(const struct req *r);
/* Replies with the status and error code for rc; msg names the problem (may be NULL). */
void api_reply_rc(struct req *r, struct api *a, enum tally_err rc, const char *msg);
/* Replies 400 with e's code and message. */
void api_reply_decode(struct req *r, const struct decode_error *e);
/* Parses the request body into *out (new reference; NULL when the body is empty). Returns 0, or
 * -1 after replying 400. */
int api_body(struct req *r, json_t **out);
/* Checks that the body is empty or {} (heartbeat, cancel). Returns 0, or -1 after replying 400. */
int api_empty_body(struct req *r);

void jobs_create(struct req *r, void *app);
void jobs_list(struct req *r, void *app);
void jobs_get(struct req *r, void *app);
void jobs_cancel(struct req *r, void *app);
void jobs_delete(struct req *r, void *app);
void jobs_extend(struct req *r, void *app);
void leases_create(struct req *r, void *app);
void leases_heartbeat(struct req *r, void *app);
void leases_complete(struct req *r, void *app);
void leases_fail(struct req *r, void *app);
void workers_list(struct req *r, void *app);
void health_get(struct req *r, void *app);
void metrics_get(struct req *r, void *app);
void jobs_history(struct req *r, void *app);
void dashboard_get(struct req *r, void *app);

#endif
