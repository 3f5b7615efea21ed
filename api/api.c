/* The route table with each route's role, the caller's user and role from its bearer token,
 * and the replies every handler shares. */
#include <stdio.h>
#include <strings.h>
#include "api.h"
#include "log.h"

const struct http_route api_routes[] = {
	{ "POST", "/v1/jobs", jobs_create, API_ROLE_CLIENT },
	{ "GET", "/v1/jobs", jobs_list, API_ROLE_CLIENT },
	{ "GET", "/v1/jobs/{}", jobs_get, API_ROLE_CLIENT },
	{ "DELETE", "/v1/jobs/{}", jobs_delete, API_ROLE_CLIENT },
	{ "GET", "/v1/jobs/{}/history", jobs_history, API_ROLE_CLIENT },
	{ "POST", "/v1/jobs/{}/cancel", jobs_cancel, API_ROLE_CLIENT },
	{ "POST", "/v1/jobs/{}/extend", jobs_extend, API_ROLE_CLIENT },
	{ "POST", "/v1/leases", leases_create, API_ROLE_WORKER },
	{ "POST", "/v1/leases/{}/heartbeat", leases_heartbeat, API_ROLE_WORKER },
	{ "POST", "/v1/leases/{}/complete", leases_complete, API_ROLE_WORKER },
	{ "POST", "/v1/leases/{}/fail", leases_fail, API_ROLE_WORKER },
	{ "GET", "/v1/workers", workers_list, API_ROLE_ADMIN },
	{ "GET", "/healthz", health_get, API_ROLE_OPEN },
	{ "GET", "/metrics", metrics_get, API_ROLE_OPEN },
	{ "GET", "/", dashboard_get, API_ROLE_OPEN },
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];

static void reply_unauthorized(struct req *r, const char *why)
{
	reply_header(r, "WWW-Authenticate", "Bearer");
	reply_error(r, 401, "unauthorized", "Authorization: %s", why);
}

/* Returns the users table, after taking a new one handed over. On the loop's thread. */
static const struct users *api_users(struct api *a)
{
	struct users *u;
	if (atomic_load_explicit(&a->next, memory_order_relaxed) &&
	    (u = atomic_exchange(&a->next, NULL))) {
		users_free(a->users);
		a->users = u;
	}
	return a->users;
}

/* Returns 1 when a user of role user may call a route of role route. */
static int api_allows(unsigned route, enum user_role user)
{
	switch (route) {
	case API_ROLE_CLIENT:
		return user == USER_ADMIN || user == USER_USER;
	case API_ROLE_WORKER:
		return user == USER_WORKER;
	case API_ROLE_ADMIN:
		return user == USER_ADMIN;
	}
	return 0;
}

int api_authorize(struct req *r, void *app, unsigned role, struct http_caller *who)
{
	static const char *const what[] = {
		[API_ROLE_CLIENT] = "the jobs API (it needs an admin or user token)",
		[API_ROLE_WORKER] = "the lease API (it needs a worker token)",
		[API_ROLE_ADMIN] = "this route (it needs an admin token)",
	};
	struct api *a = app;
	const struct users *users = api_users(a);
	const char *h = req_header(r, "Authorization"), *given;
	const struct user *u;

	if (role == API_ROLE_OPEN)
		return 0;
	if (a->open) {
		who->role = USER_ADMIN; /* nobody in particular, who may do everything */
		return 0;
	}
	if (!h || strncasecmp(h, "Bearer ", 7)) {
		reply_unauthorized(r, "a bearer token is required (Authorization: Bearer <token>)");
		return -1;
	}
	for (given = h + 7; *given == ' '; given++)
		;
	if (!(u = users_find(users, given))) {
		reply_unauthorized(r, "invalid token");
		return -1;
	}
	snprintf(who->name, sizeof who->name, "%s", u->name);
	who->role = u->role;
	if (api_allows(role, u->role))
		return 0;
	reply_error(r, 403, "forbidden", "%s's token (role %s) cannot use %s", u->name,
		    user_role_name(u->role), role < sizeof what / sizeof what[0] && what[role]
		    ? what[role] : "this route");
	return -1;
}

void api_users_offer(struct api *a, struct users *users)
{
	users_free(atomic_exchange(&a->next, users));
}

void api_release(struct api *a)
{
	users_free(atomic_exchange(&a->next, NULL));
	users_free(a->users);
	a->users = NULL;
}

struct coord_scope api_scope(const struct req *r)
{
	const struct http_caller *who = req_caller(r);
	return (struct coord_scope){ who->role == USER_ADMIN ? NULL : who->name };
}

const char *api_owner(const struct req *r)
{
	return req_caller(r)->name;
}

void api_reply_rc(struct req *r, struct api *a, enum tally_err rc, const char *msg)
{
	switch (rc) {
	case TALLY_OK:
		reply_error(r, 500, "internal", "no error to report");
		return;
	case TALLY_EINVAL:
		reply_error(r, 400, "invalid_field", "%s", msg ? msg : "invalid request");
		return;
	case TALLY_ENOTFOUND:
		reply_error(r, 404, "not_found", "%s", msg ? msg : "not found");
		return;
	case TALLY_ECONFLICT:
		reply_error(r, 409, "conflict", "%s", msg ? msg : "conflict");
		return;
	case TALLY_ELOST:
		reply_error(r, 409, "lease_lost", "%s",
			    msg ? msg : "the lease expired and was reclaimed, or its job ended");
		return;
	case TALLY_ECOUNTS:
		reply_error(r, 422, "invalid_counts", "%s", msg ? msg : "invalid counts");
		return;
	case TALLY_ETOOBIG:
		reply_error(r, 413, "body_too_large", "%s", msg ? msg : "too large");
		return;
	case TALLY_EDB:
		log_error("msg=\"storage failure\" error=\"%s\"", coord_errmsg(a->coord));
		reply_error(r, 503, "unavailable", "storage failure: %s; retry later",
			    coord_errmsg(a->coord));
		return;
	case TALLY_EFORBIDDEN:
		reply_error(r, 403, "forbidden", "%s", msg ? msg : "forbidden");
		return;
	case TALLY_EQUOTA:
	case TALLY_EFULL:
		reply_header(r, "Retry-After", API_QUOTA_RETRY_S);
		reply_error(r, 429, rc == TALLY_EQUOTA ? "quota_exceeded" : "server_full", "%s",
			    msg ? msg : tally_strerror(rc));
		return;
	case TALLY_ENOMEM:
	case TALLY_EIO:
		reply_error(r, 503, "unavailable", "%s; retry later", tally_strerror(rc));
		return;
	}
	reply_error(r, 500, "internal", "unexpected error %d", (int)rc);
}

void api_reply_decode(struct req *r, const struct decode_error *e)
{
	reply_error(r, 400, e->code, "%s", e->message);
}

int api_body(struct req *r, json_t **out)
{
	const struct buf *b = req_body(r);
	struct decode_error e;

	*out = NULL;
	if (!b->len)
		return 0;
	*out = decode_json(buf_str(b), b->len, &e);
	if (!*out) {
		api_reply_decode(r, &e);
		return -1;
	}
	return 0;
}

int api_empty_body(struct req *r)
{
	struct decode_error e;
	json_t *body;
	enum tally_err rc;

	if (api_body(r, &body))
		return -1;
	rc = decode_empty(body, &e);
	json_decref(body);
	if (rc) {
		api_reply_decode(r, &e);
		return -1;
	}
	return 0;
}
