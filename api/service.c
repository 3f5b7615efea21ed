/* Wiring a coordinator service: the store, the coordinator, the event loop and the HTTP layer,
 * and the hooks between them. Group commit: the changes of one pass of the loop are written in
 * one transaction, and the replies that report them go out only once it is committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "api.h"
#include "db.h"
#include "log.h"
#include "service.h"
#include "timefmt.h"

#define SERVICE_REAP_RETRY_MS 1000 /* a reap that could not end an expired lease (out of memory) */
#define SERVICE_RETAIN_MS 1000      /* retention looks for expired jobs this often */
#define SERVICE_RETAIN_BUSY_MS 20   /* ... and this soon again after a full batch */

struct service {
	struct db *db;
	struct coord *coord;
	struct evloop *loop;
	struct http *http; /* NULL until http_start() returns; the hooks check */
	struct api api;
	int64_t retention_ms; /* 0: finished jobs are kept */
	/* The loop's one timer serves both of these (monotonic ms; 0: none): service_timer(). */
	int64_t expiry_at; /* the earliest lease expiry: reap then */
	int64_t retain_at; /* the next retention pass */
};

static int64_t wall_clock(void *ctx)
{
	(void)ctx;
	return timefmt_now_ms();
}

/* The coordinator's hooks. They run on the loop's thread, or on the starting thread before the
 * loop runs. */
static void hook_work(void *ctx)
{
	struct service *s = ctx;
	if (s->http)
		http_wake(s->http, API_WAKE_WORK);
}

static void hook_jobs(void *ctx)
{
	struct service *s = ctx;
	if (s->http)
		http_wake(s->http, API_WAKE_JOBS);
}

/* Sets the loop's timer to the earlier of its two uses. On the loop's thread, or on the starting
 * thread before the loop runs. */
static void service_timer(struct service *s)
{
	int64_t at = s->expiry_at;
	if (s->retain_at && (!at || s->retain_at < at))
		at = s->retain_at;
	evloop_timer_at(s->loop, at);
}

/* The earliest lease expiry (0: none): then the loop's timer reaps it (on_timer), and parked
 * lease requests wake to take what it gave back. */
static void hook_expiry(void *ctx, int64_t at)
{
	struct service *s = ctx;
	s->expiry_at = timefmt_mono_at(at);
	service_timer(s);
	if (s->http)
		http_wake_at(s->http, at, API_WAKE_WORK);
}

/* The event loop's hooks. */
static uint64_t on_changes(void *app)
{
	return coord_changes(((struct service *)app)->coord);
}

static int on_dirty(void *app)
{
	return coord_dirty(((struct service *)app)->coord);
}

static int on_flush(void *app)
{
	return coord_flush(((struct service *)app)->coord) ? -1 : 0;
}

static void on_stalled(void *app, int64_t ms)
{
	coord_stalled(((struct service *)app)->coord, ms);
}

/* A lease has expired: reclaim it now rather than when the next lease request comes, so that
 * /metrics and the job show it gone; the pass's commit writes that. The timer is spent, so it
 * is set again for the next expiry (the reap sets it too, when it ends a lease). */
static void service_reap(struct service *s)
{
	int64_t at = 0, now = coord_now(s->coord);

	if (coord_reap(s->coord) || coord_next_expiry(s->coord, &at) || (at && at <= now))
		at = now + SERVICE_REAP_RETRY_MS; /* it could not end that lease (out of memory) */
	s->expiry_at = timefmt_mono_at(at);
}

/* Retention: one bounded batch of expired jobs into the pass's transaction; the next batch
 * soon when there is more, so that many old jobs never hold the loop for long. */
static void service_retain(struct service *s, int64_t mono)
{
	size_t deleted = 0;
	int more = 0;

	if (coord_retain(s->coord, s->retention_ms, COORD_RETAIN_BATCH, &deleted, &more))
		log_warn("msg=\"retention pass failed; tried again\" error=\"%s\"",
			 coord_errmsg(s->coord));
	s->retain_at = mono + (more ? SERVICE_RETAIN_BUSY_MS : SERVICE_RETAIN_MS);
}

static void on_timer(void *app)
{
	struct service *s = app;
	int64_t mono = timefmt_mono_ms();

	if (s->expiry_at && s->expiry_at <= mono)
		service_reap(s);
	if (s->retain_at && s->retain_at <= mono)
		service_retain(s, mono);
	service_timer(s);
}

enum tally_err service_start(const struct service_config *cfg, struct service **out, char *err,
			     size_t errlen)
{
	struct service *s = calloc(1, sizeof *s);
	struct evloop_io io;
	int64_t first_expiry = 0;
	uint8_t key[SIPHASH_KEY_SIZE];
	enum tally_err rc;

	if (!s) {
		users_free(cfg->users);
		return TALLY_ENOMEM;
	}
	s->retention_ms = cfg->retention_ms;
	s->api.open = !cfg->users;
	s->api.users = cfg->users;
	atomic_init(&s->api.next, NULL);
	if (getrandom(key, sizeof key, 0) != sizeof key) {
		rc = TALLY_EIO;
		snprintf(err, errlen, "cannot read random bytes");
		goto fail;
	}
	ratelimit_init(&s->api.lease_misses, key, API_LEASE_MISSES, API_LEASE_MISS_MS);
	if ((rc = evloop_new(&(struct evloop_hooks){ on_changes, on_dirty, on_flush, on_stalled,
						     on_timer, s },
			     &s->loop))) {
		snprintf(err, errlen, "cannot start the event loop");
		goto fail;
	}
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
	s->http = http_start(cfg->host, cfg->port, api_routes, api_nroutes, &s->api, api_authorize,
			     s->loop, &cfg->http, err, errlen);
	if (!s->http) {
		rc = TALLY_EIO;
		goto fail;
	}
	if (s->retention_ms)
		s->retain_at = timefmt_mono_ms(); /* a first pass at once */
	hook_expiry(s, first_expiry); /* leases from before a restart expire too, and retention */
	io = http_io(s->http);
	if ((rc = evloop_start(s->loop, &io))) {
		snprintf(err, errlen, "cannot start the event loop");
		goto fail;
	}
	log_info("msg=listening address=%s port=%u db=%s", cfg->host, http_port(s->http),
		 cfg->dbpath);
	*out = s;
	return TALLY_OK;
fail:
	service_stop(s);
	return rc;
}

void service_users(struct service *s, struct users *users)
{
	if (users)
		api_users_offer(&s->api, users);
}

uint16_t service_port(const struct service *s)
{
	return http_port(s->http);
}

void service_stop(struct service *s)
{
	if (!s)
		return;
	evloop_stop(s->loop); /* answers what is in flight, then commits what is left */
	http_stop(s->http);
	evloop_free(s->loop);
	coord_free(s->coord);
	db_close(s->db);
	api_release(&s->api);
	free(s);
}
