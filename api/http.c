/* libmicrohttpd glue: routing, capped bodies, JSON replies, parked (long-poll) requests and
 * replies held for group commit. One event-loop thread of ours runs MHD's passes (epoll, never
 * blocking inside MHD: 0.9.75's own blocking loop stalls when 128 events come back at once) and
 * commits after each. A timer thread only resumes parked connections; it never runs handlers. */
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "http.h"
#include "timefmt.h"

#define HTTP_PARAMS_MAX 2
#define HTTP_SEGMENT_MAX 128
#define HTTP_HEADERS_MAX 4
#define HTTP_CONN_TIMEOUT_S 300 /* MHD's idle timeout; parked requests are exempt */
#define HTTP_CONN_LIMIT 4000
#define HTTP_REQUEST_TIMEOUT_S 30
#define HTTP_SWEEP_MS 500 /* how often connections are checked against the request deadline */
#define HTTP_STALL_MS 2000 /* a pass this much later than due means the loop was held up */
#define HTTP_STOP_MS 200 /* how long a stopping server goes on answering */
#define HTTP_CONN_MEMORY (6 * 1024) /* MHD's per-connection pool: headers; bodies are ours */

/* One TCP connection, watched so that a client sending a request slowly (or not at all) cannot
 * hold it for ever: MHD's own timeout restarts with every byte. */
struct conn {
	int fd;
	int64_t since; /* when it began waiting for a request (opened, or the last one answered) */
	int waiting;   /* 1 until the request's headers and body are in; 0 while it is handled */
	struct conn *prev, *next;
};

struct req {
	struct http *h;
	struct conn *c;
	struct MHD_Connection *conn;
	const struct http_route *route;
	int checked; /* the body's size and type have been checked */
	char params[HTTP_PARAMS_MAX][HTTP_SEGMENT_MAX];
	struct buf body;
	int too_big;
	int64_t started;
	int64_t started_us;
	/* the reply */
	unsigned status;
	struct MHD_Response *resp;
	char *hdr_name[HTTP_HEADERS_MAX];
	char *hdr_value[HTTP_HEADERS_MAX];
	size_t nhdr;
	/* parking */
	int park;
	int held;             /* 1: waiting for the pass's commit; 2: committed, send the reply */
	struct req *next_held;
	int64_t park_until;
	unsigned park_on;        /* the events that wake it (a mask of the API's choosing) */
	uint64_t wake_gen;       /* h->wake_gen when the handler last started */
	struct req *prev, *next; /* in h->parked while parked */
	int in_list;
	void *state;
	void (*state_free)(void *);
};

struct http {
	struct MHD_Daemon *d;
	const struct http_route *routes;
	size_t nroutes;
	void *app;
	struct http_hooks hooks;
	uint16_t port;
	int epoll_fd;             /* MHD's, which the loop waits on */
	struct req *held;         /* the loop's own: replies waiting for the pass's commit */
	int pass_failed;          /* a commit earlier in this pass failed */
	struct conn *conns;       /* the loop's own: every open connection */
	uint64_t nconns;
	struct http_route_stats *stats; /* the loop's own: nroutes + 1 */
	struct http_latency commit_latency;
	int64_t request_timeout_ms;
	int64_t next_sweep;
	pthread_t loop;
	int loop_started;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	pthread_t timer;
	int timer_started;
	int stopping;
	int64_t wake_at;   /* monotonic ms; 0: none */
	unsigned wake_at_on; /* the events wake_at stands for */
	uint64_t wake_gen; /* counts wake-everyone events, so that a running handler sees them */
	struct req *parked;
};

/* Unlinks r from the parked list; lock held. */
static void park_unlink(struct http *h, struct req *r)
{
	if (!r->in_list)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		h->parked = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->in_list = 0;
}

/* Resumes the parked requests waiting for any event in `wake` (a mask; 0: none) and those past
 * their deadline; lock held. Returns the earliest deadline left, or INT64_MAX. */
static int64_t park_resume(struct http *h, unsigned wake, int64_t now)
{
	int64_t next = INT64_MAX;
	struct req *r = h->parked, *n;

	if (wake)
		h->wake_gen++;
	for (; r; r = n) {
		n = r->next;
		if ((r->park_on & wake) || r->park_until <= now) {
			park_unlink(h, r);
			MHD_resume_connection(r->conn);
		} else if (r->park_until < next) {
			next = r->park_until;
		}
	}
	return next;
}

static void *timer_main(void *arg)
{
	struct http *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		int64_t now = timefmt_mono_ms();
		int64_t next;
		if (h->wake_at && h->wake_at <= now) {
			h->wake_at = 0;
			next = park_resume(h, h->wake_at_on, now);
		} else {
			next = park_resume(h, 0, now);
		}
		if (h->wake_at && h->wake_at < next)
			next = h->wake_at;
		if (next == INT64_MAX) {
			pthread_cond_wait(&h->cond, &h->lock);
		} else {
			struct timespec ts = { .tv_sec = next / 1000,
					       .tv_nsec = (long)(next % 1000) * 1000000L };
			pthread_cond_timedwait(&h->cond, &h->lock, &ts);
		}
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void http_wake(struct http *h, unsigned events)
{
	pthread_mutex_lock(&h->lock);
	park_resume(h, events, INT64_MIN);
	pthread_mutex_unlock(&h->lock);
}

void http_wake_at(struct http *h, int64_t at_ms, unsigned events)
{
	/* Lease expiries are wall-clock times; parking runs on the monotonic clock. The two clocks
	 * are read at different instants, so wake 2 ms late rather than before the expiry. */
	int64_t mono = at_ms ? timefmt_mono_ms() + (at_ms - timefmt_now_ms()) + 2 : 0;
	int64_t was;
	pthread_mutex_lock(&h->lock);
	was = h->wake_at;
	h->wake_at = at_ms ? (mono > 0 ? mono : 1) : 0;
	h->wake_at_on = events;
	/* The timer sleeps until the old time at the latest; only an earlier time (the common
	 * case is a later one: every grant and heartbeat moves it) needs to wake it now. */
	if (h->wake_at && (!was || h->wake_at < was))
		pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

const char *req_param(const struct req *r, size_t i)
{
	return i < HTTP_PARAMS_MAX ? r->params[i] : "";
}

const char *req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *req_query(struct req *r, const char *name)
{
	const char *v = NULL;
	if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
					  NULL) != MHD_YES)
		return NULL;
	return v ? v : ""; /* "?limit" is present, with an empty value */
}

/* Paths and query strings are not percent-decoded: every id, name and number in this API is
 * plain ASCII, so an escape can only hide a '/' or a NUL from the router. Keeping the raw text
 * makes such requests fail validation instead. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* Makes s valid UTF-8 in place: each byte of a malformed or truncated sequence becomes '?'. */
static void utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
						: (*p & 0xF8) == 0xF0 ? 4 : 0;
		size_t i = 1;
		while (n > 1 && i < n && (p[i] & 0xC0) == 0x80)
			i++;
		/* Overlong forms, surrogates and code points past U+10FFFF are malformed too. */
		if (n == 0 || i < n || (n == 2 && *p < 0xC2) ||
		    (n == 3 && *p == 0xE0 && p[1] < 0xA0) || (n == 3 && *p == 0xED && p[1] >= 0xA0) ||
		    (n == 4 && *p == 0xF0 && p[1] < 0x90) || (n == 4 && (*p > 0xF4 ||
		    (*p == 0xF4 && p[1] >= 0x90)))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

struct query_check {
	const char *const *allowed;
	const char *unknown;
};

static enum MHD_Result query_check_one(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	struct query_check *q = cls;
	(void)kind;
	(void)value;
	for (size_t i = 0; q->allowed[i]; i++)
		if (!strcmp(q->allowed[i], key))
			return MHD_YES;
	q->unknown = key;
	return MHD_NO;
}

const char *req_query_unknown(struct req *r, const char *const *allowed)
{
	struct query_check q = { allowed, NULL };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_check_one, &q);
	return q.unknown;
}

const struct buf *req_body(const struct req *r)
{
	return &r->body;
}

void **req_state(struct req *r, void (**free_fn)(void *))
{
	if (free_fn)
		r->state_free = *free_fn;
	return &r->state;
}

int64_t req_started(const struct req *r)
{
	return r->started;
}

int req_gone(const struct req *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	char c;
	if (!ci)
		return 0;
	/* EOF (0) means the peer closed; data or EAGAIN means it is still there. */
	return recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int req_expired(const struct req *r)
{
	int stopping;
	pthread_mutex_lock(&r->h->lock);
	stopping = r->h->stopping;
	pthread_mutex_unlock(&r->h->lock);
	return stopping || (r->park_until && timefmt_mono_ms() >= r->park_until);
}

/* Sets the reply; the first one wins. */
static void reply_set(struct req *r, unsigned status, struct MHD_Response *resp)
{
	if (r->resp) {
		MHD_destroy_response(resp);
		return;
	}
	r->status = status;
	r->resp = resp;
}

void reply_json(struct req *r, unsigned status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *resp;

	json_decref(body);
	if (!text) {
		static const char oom[] =
			"{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}";
		status = 503;
		resp = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	}
	if (!resp) {
		free(text);
		return; /* r->resp stays NULL: the connection is closed */
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	reply_set(r, status, resp);
}

void reply_text(struct req *r, unsigned status, const char *content_type, char *text)
{
	struct MHD_Response *resp =
		text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
		     : NULL;
	if (!resp) {
		free(text);
		reply_error(r, 503, "unavailable", "out of memory");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	reply_set(r, status, resp);
}

void reply_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	utf8_scrub(msg); /* messages echo input, which may be cut mid-character or not UTF-8 */
	reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void reply_empty(struct req *r, unsigned status)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp)
		reply_set(r, status, resp);
}

void reply_header(struct req *r, const char *name, const char *value)
{
	if (r->nhdr == HTTP_HEADERS_MAX)
		return;
	r->hdr_name[r->nhdr] = strdup(name);
	r->hdr_value[r->nhdr] = strdup(value);
	r->nhdr++;
}

/* Replaces a held reply with a 503: the commit behind it failed, so nothing it reported
 * happened. */
static void reply_unsaved(struct req *r)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	r->resp = NULL;
	for (size_t i = 0; i < r->nhdr; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	r->nhdr = 0;
	reply_error(r, 503, "unavailable", "storage failure: the change was not saved; retry later");
}

void reply_park(struct req *r, int64_t until_ms, unsigned wake_on)
{
	r->park = 1;
	r->park_until = until_ms;
	r->park_on = wake_on;
}

/* Matches path against pattern, filling r->params. Returns 1 on a match. */
static int route_match(struct req *r, const char *pattern, const char *path)
{
	size_t np = 0;

	while (*pattern && *path) {
		if (*pattern != '/' || *path != '/')
			return 0;
		pattern++;
		path++;
		size_t plen = strcspn(pattern, "/");
		size_t slen = strcspn(path, "/");
		if (plen == 2 && !strncmp(pattern, "{}", 2)) {
			if (!slen || slen >= HTTP_SEGMENT_MAX || np == HTTP_PARAMS_MAX)
				return 0;
			memcpy(r->params[np], path, slen);
			r->params[np][slen] = '\0';
			np++;
		} else if (plen != slen || strncmp(pattern, path, plen)) {
			return 0;
		}
		pattern += plen;
		path += slen;
	}
	return !*pattern && !*path;
}

/* Finds the handler for method and path; on failure replies 404 or 405 and returns NULL. */
static const struct http_route *route_find(struct req *r, const char *method, const char *path)
{
	char allow[64] = "";
	struct http *h = r->h;

	for (size_t i = 0; i < h->nroutes; i++) {
		if (!route_match(r, h->routes[i].pattern, path))
			continue;
		if (!strcmp(h->routes[i].method, method))
			return &h->routes[i];
		if (strlen(allow) + strlen(h->routes[i].method) + 3 < sizeof allow) {
			if (*allow)
				strcat(allow, ", ");
			strcat(allow, h->routes[i].method);
		}
	}
	if (*allow) {
		reply_header(r, "Allow", allow);
		reply_error(r, 405, "method_not_allowed", "%s is not allowed on %.200s (allowed: %s)",
			    method, path, allow);
	} else {
		reply_error(r, 404, "not_found", "no route %.200s", path);
	}
	return NULL;
}

/* Returns 1 when the request's Content-Type is application/json (parameters allowed). */
static int is_json(struct req *r)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n = sizeof "application/json" - 1;
	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	return !strncasecmp(ct, "application/json", n) &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

const double http_latency_le[HTTP_LATENCY_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, INFINITY
};

static void latency_add(struct http_latency *l, int64_t us)
{
	double s = (double)us / 1e6;
	size_t i = 0;
	while (i + 1 < HTTP_LATENCY_BUCKETS && s > http_latency_le[i])
		i++;
	l->bucket[i]++;
	l->count++;
	l->sum_s += s;
}

/* Counts r's reply (status 0: none, the connection is closed) under its route. */
static void stats_count(struct req *r, unsigned status)
{
	struct http *h = r->h;
	size_t i = r->route ? (size_t)(r->route - h->routes) : h->nroutes;
	if (!h->stats)
		return;
	h->stats[i].status[status >= 100 && status < 600 ? status / 100 : 0]++;
	latency_add(&h->stats[i].latency, timefmt_mono_us() - r->started_us);
}

/* Calls the flush() hook, timing it. */
static int http_flush(struct http *h)
{
	int64_t t0 = timefmt_mono_us();
	int rc = h->hooks.flush(h->app);
	latency_add(&h->commit_latency, timefmt_mono_us() - t0);
	return rc;
}

void req_stats(const struct req *r, struct http_stats *out)
{
	struct http *h = r->h;
	out->routes = h->routes;
	out->nroutes = h->nroutes;
	out->per_route = h->stats;
	out->commit = h->commit_latency;
	out->connections = h->nconns;
}

static enum MHD_Result reply_send(struct req *r)
{
	enum MHD_Result ret;

	stats_count(r, r->resp ? r->status : 0);
	if (!r->resp)
		return MHD_NO;
	for (size_t i = 0; i < r->nhdr; i++)
		if (r->hdr_name[i] && r->hdr_value[i])
			MHD_add_response_header(r->resp, r->hdr_name[i], r->hdr_value[i]);
	ret = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	(void)version;

	if (!r) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		const char *cl;
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->h = h;
		r->conn = conn;
		r->c = ci ? ci->socket_context : NULL;
		r->started = timefmt_mono_ms();
		r->started_us = timefmt_mono_us();
		buf_init(&r->body, HTTP_BODY_MAX);
		*con_cls = r;
		if (r->c)
			r->c->since = r->started; /* the body gets the whole request timeout */
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > HTTP_BODY_MAX) {
			reply_error(r, 413, "body_too_large", "body: over %d bytes", HTTP_BODY_MAX);
			return reply_send(r);
		}
		/* Route and credentials are known from the headers: refuse before any body is
		 * read, so that nobody without a token can make the server buffer one. */
		r->route = route_find(r, method, url);
		if (!r->route)
			return reply_send(r);
		if (h->hooks.authorize && h->hooks.authorize(r, h->app, r->route->role))
			return reply_send(r);
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_big && buf_add(&r->body, upload_data, *upload_size))
			r->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->c)
		r->c->waiting = 0; /* the whole request is in */
	if (r->held == 2)
		return reply_send(r); /* resumed after its pass was committed */
	if (!r->checked) {
		r->checked = 1;
		if (r->too_big) {
			reply_error(r, 413, "body_too_large", "body: over %d bytes", HTTP_BODY_MAX);
			return reply_send(r);
		}
		if (r->body.len && !is_json(r)) {
			reply_error(r, 415, "unsupported_media_type",
				    "Content-Type: must be application/json");
			return reply_send(r);
		}
	}
	r->park = 0;
	pthread_mutex_lock(&h->lock);
	r->wake_gen = h->wake_gen;
	pthread_mutex_unlock(&h->lock);
	/* Handlers and commits both run on the event loop's thread: a commit never falls between a
	 * change and the registration of the reply that reports it. */
	uint64_t before = h->hooks.changes ? h->hooks.changes(h->app) : 0;
	r->route->fn(r, h->app);
	int hold = h->hooks.changes && h->hooks.changes(h->app) != before;
	pthread_mutex_lock(&h->lock);
	int stopping = h->stopping;
	if (r->park && !r->resp) {
		if (stopping) {
			pthread_mutex_unlock(&h->lock);
			reply_error(r, 503, "unavailable", "the server is stopping");
			return reply_send(r);
		}
		/* Writes it made (a reap, say) are committed at the end of the pass. */
		MHD_suspend_connection(conn);
		if (r->wake_gen != h->wake_gen) {
			/* A wake came while the handler ran (it may be what the handler itself
			 * caused): run it again rather than sleep through it. */
			MHD_resume_connection(conn);
		} else {
			r->next = h->parked;
			r->prev = NULL;
			if (h->parked)
				h->parked->prev = r;
			h->parked = r;
			r->in_list = 1;
			pthread_cond_signal(&h->cond);
		}
		pthread_mutex_unlock(&h->lock);
		return MHD_YES;
	}
	pthread_mutex_unlock(&h->lock);
	if (!r->resp)
		reply_error(r, 500, "internal", "the handler gave no reply");
	if (hold && !stopping) {
		/* What this reply says is not durable until the pass's changes are committed. */
		MHD_suspend_connection(conn);
		r->held = 1;
		r->next_held = h->held;
		h->held = r;
		return MHD_YES;
	}
	/* Stopping: this may be the loop's last pass, so commit here. */
	if (hold && http_flush(h)) {
		h->pass_failed = 1; /* what the pass holds was in that commit too */
		reply_unsaved(r);
	}
	return reply_send(r);
}

/* Commits the writes of the pass that just ran and lets its held replies go (or turns them into
 * 503s when the commit failed: nothing they reported happened). On the event loop's thread.
 * Returns the number of replies let go. */
static int http_commit_pass(struct http *h)
{
	struct req *r, *n;
	int ok = 1, released = 0;

	r = h->held;
	h->held = NULL;
	if (h->hooks.dirty && h->hooks.dirty(h->app))
		ok = !h->hooks.flush || !http_flush(h);
	if (h->pass_failed)
		ok = 0;
	h->pass_failed = 0;
	for (; r; r = n) {
		n = r->next_held;
		r->next_held = NULL;
		if (!ok)
			reply_unsaved(r);
		r->held = 2;
		MHD_resume_connection(r->conn);
		released++;
	}
	return released;
}

/* Shuts down connections that have been waiting for a whole request longer than the request
 * timeout: MHD then sees them closed and cleans up. On the event loop's thread. */
static void http_sweep(struct http *h)
{
	int64_t now = timefmt_mono_ms();
	if (now < h->next_sweep)
		return;
	h->next_sweep = now + HTTP_SWEEP_MS;
	for (struct conn *c = h->conns; c; c = c->next) {
		if (c->waiting && now - c->since > h->request_timeout_ms) {
			shutdown(c->fd, SHUT_RDWR);
			c->since = now; /* once is enough */
		}
	}
}

/* The event loop: wait on MHD's epoll descriptor, run one pass of MHD (read, run handlers,
 * write; every epoll_wait inside it non-blocking, which also keeps clear of 0.9.75's stall when
 * exactly 128 events come back), then commit the pass's writes: one commit per pass, however
 * many requests it served. After http_stop() it goes on for HTTP_STOP_MS to answer what is in
 * flight. */
static void *loop_main(void *arg)
{
	struct http *h = arg;
	int64_t stop_at = 0, due = timefmt_mono_ms(), late;
	int released = 0;

	for (;;) {
		MHD_UNSIGNED_LONG_LONG to = 0;
		struct pollfd p = { h->epoll_fd, POLLIN, 0 };
		int ms = 250, stopping;

		if (MHD_get_timeout(h->d, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)ms)
			ms = (int)to;
		if (!released) /* replies just let go are sent by the next pass, at once */
			poll(&p, 1, ms);
		/* A pass far later than its poll allowed: the process was stopped, or the last
		 * pass took that long. Heartbeats could not be heard meanwhile. */
		late = timefmt_mono_ms() - due - (released ? 0 : ms);
		if (late > HTTP_STALL_MS && h->hooks.stalled)
			h->hooks.stalled(h->app, late);
		due = timefmt_mono_ms(); /* the pass's own time counts towards the next one's delay */
		MHD_run(h->d);
		released = http_commit_pass(h);
		http_sweep(h);
		pthread_mutex_lock(&h->lock);
		stopping = h->stopping;
		pthread_mutex_unlock(&h->lock);
		if (stopping && !stop_at)
			stop_at = timefmt_mono_ms() + HTTP_STOP_MS;
		if (stop_at && timefmt_mono_ms() >= stop_at) {
			MHD_run(h->d); /* sends what the last commit let go */
			break;
		}
	}
	return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	(void)conn;
	(void)toe;

	if (!r)
		return;
	if (r->c) {
		r->c->waiting = 1; /* for the next request on this connection */
		r->c->since = timefmt_mono_ms();
	}
	pthread_mutex_lock(&h->lock);
	park_unlink(h, r);
	pthread_mutex_unlock(&h->lock);
	if (r->state && r->state_free)
		r->state_free(r->state);
	if (r->resp)
		MHD_destroy_response(r->resp);
	for (size_t i = 0; i < r->nhdr; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	buf_release(&r->body);
	free(r);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	struct conn *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || !(c = calloc(1, sizeof *c)))
			return; /* unwatched: MHD's own timeout still applies */
		c->fd = ci->connect_fd;
		c->since = timefmt_mono_ms();
		c->waiting = 1;
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		h->nconns++;
		*socket_context = c;
		return;
	}
	if (!c)
		return;
	h->nconns--;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	*socket_context = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap; /* MHD reports client misbehaviour here; the reply already says it. */
}

struct http *http_start(const char *host, uint16_t port, const struct http_route *routes,
			size_t nroutes, void *app, const struct http_hooks *hooks,
			const struct http_options *opts, char *err, size_t errlen)
{
	static const struct http_options defaults = { 0 };
	int tls;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char portstr[8];
	struct http *h = calloc(1, sizeof *h);
	const union MHD_DaemonInfo *info;
	int gai;

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->routes = routes;
	h->nroutes = nroutes;
	if (!(h->stats = calloc(nroutes + 1, sizeof *h->stats))) {
		snprintf(err, errlen, "out of memory");
		free(h);
		return NULL;
	}
	h->app = app;
	if (hooks)
		h->hooks = *hooks;
	if (!opts)
		opts = &defaults;
	tls = opts->tls_cert_pem && opts->tls_key_pem;
	struct MHD_OptionItem tls_opts[] = {
		{ tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)opts->tls_cert_pem },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)opts->tls_key_pem },
		{ MHD_OPTION_END, 0, NULL },
	};
	h->request_timeout_ms =
		1000LL * (opts->request_timeout_s ? opts->request_timeout_s : HTTP_REQUEST_TIMEOUT_S);
	pthread_condattr_t ca;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(portstr, sizeof portstr, "%u", port);
	gai = getaddrinfo(host, portstr, &hints, &ai);
	if (gai) {
		snprintf(err, errlen, "resolving %s: %s", host, gai_strerror(gai));
		goto fail;
	}
	h->d = MHD_start_daemon(MHD_USE_EPOLL |
					MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG |
					(ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
					(tls ? MHD_USE_TLS : 0),
				port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
				MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)(opts->max_connections ? opts->max_connections
								 : HTTP_CONN_LIMIT),
				MHD_OPTION_ARRAY, tls_opts,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
				MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
				MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s:%u (%s)", host, port,
			 tls ? "address in use or not local, or the TLS certificate or key is not a "
			       "matching PEM pair"
			     : "address in use or not local?");
		goto fail;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : port;
	if (pthread_create(&h->timer, NULL, timer_main, h)) {
		snprintf(err, errlen, "cannot start the timer thread");
		goto fail;
	}
	h->timer_started = 1;
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	h->epoll_fd = info ? info->epoll_fd : -1;
	if (h->epoll_fd < 0 || pthread_create(&h->loop, NULL, loop_main, h)) {
		snprintf(err, errlen, "cannot start the event loop");
		pthread_mutex_lock(&h->lock);
		h->stopping = 1;
		pthread_cond_signal(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->timer, NULL);
		goto fail;
	}
	h->loop_started = 1;
	return h;
fail:
	if (h->d)
		MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
	return NULL;
}

uint16_t http_port(const struct http *h)
{
	return h->port;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	park_resume(h, ~0u, INT64_MAX);
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->timer_started)
		pthread_join(h->timer, NULL);
	/* The loop answers what is in flight for HTTP_STOP_MS, then returns. */
	if (h->loop_started)
		pthread_join(h->loop, NULL);
	MHD_stop_daemon(h->d);
	if (h->hooks.flush) /* writes of requests that arrived while stopping */
		h->hooks.flush(h->app);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h->stats);
	free(h);
}
