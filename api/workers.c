/* The workers resource: GET /v1/workers lists every worker the coordinator has heard from since
 * it started, and every worker it has quarantined. */
#include <stdio.h>
#include "api.h"
#include "timefmt.h"

struct workers_list {
	json_t *arr;
	int oom;
};

static enum tally_err list_worker(void *ctx, const struct coord_worker *w)
{
	struct workers_list *l = ctx;
	char seen[32], first[32], lease[24];
	json_t *o;

	timefmt_rfc3339(w->info.last_seen, seen, sizeof seen);
	timefmt_rfc3339(w->info.first_seen, first, sizeof first);
	snprintf(lease, sizeof lease, "%lld", (long long)w->info.lease_id);
	o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:f,s:o}", "name", w->info.name, "state",
		      worker_state_name(w->state), "first_seen", first, "last_seen", seen, "lease",
		      w->info.lease_id ? json_string(lease) : json_null(), "leases",
		      (int)w->info.leases, "rate", w->rate, "quarantine_reason",
		      w->reason ? json_string(w->reason) : json_null());
	if (!o || json_array_append_new(l->arr, o)) {
		l->oom = 1;
		return TALLY_ENOMEM;
	}
	return TALLY_OK;
}

void workers_list(struct req *r, void *app)
{
	static const char *const allowed[] = { NULL };
	struct api *a = app;
	struct workers_list l = { json_array(), 0 };
	const char *unknown = req_query_unknown(r, allowed);
	enum tally_err rc;

	if (unknown) {
		json_decref(l.arr);
		reply_error(r, 400, "invalid_query", "%.64s: unknown query parameter", unknown);
		return;
	}
	if (!l.arr) {
		api_reply_rc(r, a, TALLY_ENOMEM, NULL);
		return;
	}
	rc = coord_workers(a->coord, list_worker, &l);
	if (rc || l.oom) {
		json_decref(l.arr);
		api_reply_rc(r, a, rc ? rc : TALLY_ENOMEM, NULL);
		return;
	}
	reply_json(r, 200, json_pack("{s:o}", "workers", l.arr));
}
