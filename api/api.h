/* The API: the route table and one handler file per resource (jobs.c, leases.c, workers.c,
 * health.c).
 * Handlers decode with decode.c, ask the coordinator, and encode the answer. */
#ifndef TALLY_API_H
#define TALLY_API_H

#include <stddef.h>
#include "coord.h"
#include "decode.h"
#include "http.h"
#include "token.h"

struct api {
	struct coord *coord; /* borrowed */
	char client_token[TOKEN_MAX]; /* the jobs API's; "" (with worker_token "") when open */
	char worker_token[TOKEN_MAX]; /* the lease API's */
};

/* Route roles: who may call it (struct http_route's role). */
#define API_ROLE_OPEN 0u
#define API_ROLE_CLIENT 1u
#define API_ROLE_WORKER 2u

/* What parked requests wait for (http_wake's events). */
#define API_WAKE_WORK 1u /* work may be leasable: a job submitted, a lease failed or expired */
#define API_WAKE_JOBS 2u /* a job finished or was cancelled */
#define API_WAIT_MAX_S WIRE_WAIT_MAX_S

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

/* The authorize hook: with tokens set, a route of a role needs "Authorization: Bearer <that
 * role's token>": 401 without a valid token, 403 with the other role's. Returns 0, or -1 after
 * replying. */
int api_authorize(struct req *r, void *app, unsigned role);
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
