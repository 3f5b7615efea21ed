/* Wiring a coordinator: store, coordinator, HTTP layer, and the hooks between them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "db.h"
#include "log.h"
#include "serve.h"
#include "timefmt.h"

struct serve {
	struct db *db;
	struct coord *coord;
	struct http *http; /* set once http_start() returns; the hooks read it */
	struct api api;
};

static int64_t wall_clock(void *ctx)
{
	(void)ctx;
	return timefmt_now_ms();
}

/* The hooks reach the HTTP layer through a pointer that is set once http_start() returns. */
static struct http *hook_http(void *ctx)
{
	return __atomic_load_n(&((struct serve *)ctx)->http, __ATOMIC_ACQUIRE);
}

static void hook_work(void *ctx)
{
	struct http *h = hook_http(ctx);
	if (h)
		http_wake(h, API_WAKE_WORK);
}

static void hook_jobs(void *ctx)
{
	struct http *h = hook_http(ctx);
	if (h)
		http_wake(h, API_WAKE_JOBS);
}

static void hook_expiry(void *ctx, int64_t at)
{
	struct http *h = hook_http(ctx);
	if (h)
		http_wake_at(h, at, API_WAKE_WORK);
}

static uint64_t commit_changes(void *app)
{
	return coord_changes(((struct api *)app)->coord);
}

static int commit_dirty(void *app)
{
	return coord_dirty(((struct api *)app)->coord);
}

static int commit_flush(void *app)
{
	return coord_flush(((struct api *)app)->coord) ? -1 : 0;
}

static void hook_stalled(void *app, int64_t ms)
{
	coord_stalled(((struct api *)app)->coord, ms);
}

enum tally_err serve_start(const struct serve_config *cfg, struct serve **out, char *err,
			   size_t errlen)
{
	/* Group commit: the changes of one pass of the event loop are written behind in one
	 * transaction, and the replies that report them go out only once that is committed. */
	static const struct http_hooks hooks = { commit_changes, commit_dirty, commit_flush,
						 api_authorize, hook_stalled };
	struct serve *s = calloc(1, sizeof *s);
	struct http *started;
	int64_t first_expiry = 0;
	enum tally_err rc;

	if (!s)
		return TALLY_ENOMEM;
	snprintf(s->api.client_token, sizeof s->api.client_token, "%s", cfg->client_token);
	snprintf(s->api.worker_token, sizeof s->api.worker_token, "%s", cfg->worker_token);
	if ((rc = db_open(cfg->dbpath, &s->db, err, errlen)))
		goto fail;
	s->coord = coord_new(s->db, &cfg->coord, (struct coord_clock){ wall_clock, NULL },
			     (struct coord_hooks){ hook_work, hook_expiry, hook_jobs, s });
	s->api.coord = s->coord;
	if (!s->coord) {
		rc = TALLY_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = coord_load(s->coord)) || (rc = coord_next_expiry(s->coord, &first_expiry))) {
		snprintf(err, errlen, "loading %s: %s", cfg->dbpath, coord_errmsg(s->coord));
		goto fail;
	}
	started = http_start(cfg->host, cfg->port, api_routes, api_nroutes, &s->api, &hooks,
			     &cfg->http, err, errlen);
	if (!started) {
		rc = TALLY_EIO;
		goto fail;
	}
	__atomic_store_n(&s->http, started, __ATOMIC_RELEASE);
	http_wake_at(s->http, first_expiry, API_WAKE_WORK);
	log_info("msg=listening address=%s port=%u db=%s", cfg->host, http_port(s->http),
		 cfg->dbpath);
	*out = s;
	return TALLY_OK;
fail:
	serve_stop(s);
	return rc;
}

uint16_t serve_port(const struct serve *s)
{
	return http_port(s->http);
}

void serve_stop(struct serve *s)
{
	if (!s)
		return;
	http_stop(s->http);
	coord_free(s->coord);
	db_close(s->db);
	free(s);
}
