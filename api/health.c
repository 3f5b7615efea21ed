/* GET /healthz: the process is up and its store answers. */
#include "api.h"

void health_get(struct req *r, void *app)
{
	struct api *a = app;
	enum tally_err rc = coord_check(a->coord);
	if (rc) {
		api_reply_rc(r, a, rc, NULL);
		return;
	}
	reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}
