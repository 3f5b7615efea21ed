/* The route table with each route's role, bearer-token checks, and the replies every handler
 * shares. */
#include <strings.h>
#include "api.h"
#include "log.h"

const struct http_route api_routes[] = {
	{ "POST", "/v1/jobs", jobs_create, API_ROLE_CLIENT },
	{ "GET", "/v1/jobs", jobs_list, API_ROLE_CLIENT },
	{ "GET", "/v1/jobs/{}", jobs_get, API_ROLE_CLIENT },
	{ "GET", "/v1/jobs/{}/history", jobs_history, API_ROLE_CLIENT },
	{ "POST", "/v1/jobs/{}/cancel", jobs_cancel, API_ROLE_CLIENT },
	{ "POST", "/v1/jobs/{}/extend", jobs_extend, API_ROLE_CLIENT },
	{ "POST", "/v1/leases", leases_create, API_ROLE_WORKER },
	{ "POST", "/v1/leases/{}/heartbeat", leases_heartbeat, API_ROLE_WORKER },
	{ "POST", "/v1/leases/{}/complete", leases_complete, API_ROLE_WORKER },
	{ "POST", "/v1/leases/{}/fail", leases_fail, API_ROLE_WORKER },
	{ "GET", "/v1/workers", workers_list, API_ROLE_CLIENT },
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

int api_authorize(struct req *r, void *app, unsigned role)
{
	struct api *a = app;
	const char *h = req_header(r, "Authorization"), *given;
	int client, worker;

	if (role == API_ROLE_OPEN || (!a->client_token[0] && !a->worker_token[0]))
		return 0;
	if (!h || strncasecmp(h, "Bearer ", 7)) {
		reply_unauthorized(r, "a bearer token is required (Authorization: Bearer <token>)");
		return -1;
	}
	for (given = h + 7; *given == ' '; given++)
		;
	/* Both compared, always: the time taken says nothing about which one matched. */
	client = token_equal(given, a->client_token);
	worker = token_equal(given, a->worker_token);
	if ((role == API_ROLE_CLIENT && client) || (role == API_ROLE_WORKER && worker))
		return 0;
	if (client || worker) {
		reply_error(r, 403, "forbidden", "this %s token cannot use the %s API",
			    client ? "client" : "worker", role == API_ROLE_CLIENT ? "jobs" : "lease");
		return -1;
	}
	reply_unauthorized(r, "invalid token");
	return -1;
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
