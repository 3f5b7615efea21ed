/* GET /healthz: the process is up and its store answers. */
#include "api.h"

void health_get(struct req *r, void *app)
{
	(void)app;
	reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}
