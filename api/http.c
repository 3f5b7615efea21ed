/* libmicrohttpd glue: routing, capped bodies, JSON replies, parking requests and holding replies
 * for the group commit, and telling the watch on connections (connwatch.h) their phases. The
 * event loop (evloop.c) runs MHD's passes through http_io(): epoll, never blocking inside MHD
 * (0.9.75's own blocking loop stalls when 128 events come back at once). */
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "connwatch.h"
#include "http.h"
#include "park.h"
#include "route.h"
#include "timefmt.h"
#include "utf8.h"

#define HTTP_HEADERS_MAX 4
#define HTTP_CONN_TIMEOUT_S 300 /* MHD's idle timeout, a backstop: connwatch.h cuts sooner */
#define HTTP_REQUEST_TIMEOUT_S 30
#define HTTP_CONN_MEMORY (6 * 1024) /* MHD's per-connection pool: headers; bodies are ours */

struct req {
	struct http *h;
	struct conn *c;
	struct MHD_Connection *conn;
	const struct http_route *route;
	int checked; /* the body's size and type have been checked */
	char params[ROUTE_PARAMS_MAX][ROUTE_SEGMENT_MAX];
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
	/* parking, and holding for the commit */
	int park;             /* the handler asked to park */
	int64_t park_until;
	unsigned park_on;     /* the events that wake it (a mask of the API's choosing) */
	struct park_entry pe; /* in h->park while parked */
	int held;             /* 1: waiting for the pass's commit; 2: committed, send the reply */
	struct req *next_held;
	struct http_caller who; /* filled by the authorize hook */
	void *state;
	void (*state_free)(void *);
};

struct http {
	struct MHD_Daemon *d;
	const struct http_route *routes;
	size_t nroutes;
	void *app;
	http_authorize authorize;
	struct evloop *loop;      /* borrowed */
	uint16_t port;
	int epoll_fd;             /* MHD's, which the loop waits on */
	int stopping;             /* the loop is stopping: nothing parks any more */
	struct req *held;         /* replies waiting for the pass's commit */
	struct connwatch conns;   /* every open connection */
	struct http_route_stats *stats; /* nroutes + 1 */
	struct park park; /* the only member other threads touch (http_wake) */
};

/* Resumes a parked request's connection: its handler runs again in the next pass. Park's lock
 * held. */
static void http_resume(struct park_entry *e, void *ctx)
{
	struct req *r = (struct req *)((char *)e - offsetof(struct req, pe));
	(void)ctx;
	MHD_resume_connection(r->conn);
}

void http_wake(struct http *h, unsigned events)
{
	park_wake(&h->park, events);
}

void http_wake_at(struct http *h, int64_t at_ms, unsigned events)
{
	/* Lease expiries are wall-clock times; parking runs on the monotonic clock. */
	if (park_wake_at(&h->park, timefmt_mono_at(at_ms), events))
		evloop_wake(h->loop); /* earlier than the loop may be waiting for */
}

const char *req_param(const struct req *r, size_t i)
{
	return i < ROUTE_PARAMS_MAX ? r->params[i] : "";
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

const struct http_caller *req_caller(const struct req *r)
{
	return &r->who;
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
	return r->h->stopping || (r->park_until && timefmt_mono_ms() >= r->park_until);
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

/* Drops r's reply and its headers. */
static void reply_clear(struct req *r)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	r->resp = NULL;
	for (size_t i = 0; i < r->nhdr; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	r->nhdr = 0;
}

/* Replaces a held reply with a 503: the commit behind it failed, so nothing it reported
 * happened. */
static void reply_unsaved(struct req *r)
{
	reply_clear(r);
	reply_error(r, 503, "unavailable", "storage failure: the change was not saved; retry later");
}

void reply_park(struct req *r, int64_t until_ms, unsigned wake_on)
{
	r->park = 1;
	r->park_until = until_ms;
	r->park_on = wake_on;
}

/* Finds the route for method and path; when there is none, replies 404 or 405 and returns NULL. */
static const struct http_route *http_route(struct req *r, const char *method, const char *path)
{
	char allow[64];
	const struct http_route *route =
		route_find(r->h->routes, r->h->nroutes, method, path, r->params, allow, sizeof allow);

	if (route)
		return route;
	if (*allow) {
		reply_header(r, "Allow", allow);
		reply_error(r, 405, "method_not_allowed", "%s is not allowed on %.200s (allowed: %s)",
			    method, path, allow);
	} else {
		reply_error(r, 404, "not_found", "no route %.200s", path);
	}
	return NULL;
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

void req_stats(const struct req *r, struct http_stats *out)
{
	struct http *h = r->h;
	out->routes = h->routes;
	out->nroutes = h->nroutes;
	out->per_route = h->stats;
	out->commit = *evloop_commit_latency(h->loop);
	out->connections = h->conns.n;
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
	if (ret == MHD_YES)
		connwatch_phase(r->c, CONN_WRITING, timefmt_mono_ms()); /* the client's turn */
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
		/* the body gets the whole request timeout */
		connwatch_phase(r->c, CONN_READING, r->started);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > HTTP_BODY_MAX) {
			reply_error(r, 413, "body_too_large", "body: over %d bytes", HTTP_BODY_MAX);
			return reply_send(r);
		}
		/* Route and credentials are known from the headers: refuse before any body is
		 * read, so that nobody without a token can make the server buffer one. */
		r->route = http_route(r, method, url);
		if (!r->route)
			return reply_send(r);
		if (h->authorize && h->authorize(r, h->app, r->route->role, &r->who))
			return reply_send(r);
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_big && buf_add(&r->body, upload_data, *upload_size))
			r->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->c && r->c->phase == CONN_READING)
		connwatch_phase(r->c, CONN_SERVING, timefmt_mono_ms()); /* the whole request is in */
	if (r->held == 2)
		return reply_send(r); /* resumed after its pass was committed */
	if (!r->checked) {
		r->checked = 1;
		if (r->too_big) {
			reply_error(r, 413, "body_too_large", "body: over %d bytes", HTTP_BODY_MAX);
			return reply_send(r);
		}
		if (r->body.len && !route_is_json(req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE))) {
			reply_error(r, 415, "unsupported_media_type",
				    "Content-Type: must be application/json");
			return reply_send(r);
		}
	}
	r->park = 0;
	park_begin(&h->park, &r->pe);
	/* Handlers and commits both run on the event loop's thread: a commit never falls between a
	 * change and the registration of the reply that reports it. */
	uint64_t before = evloop_changes(h->loop);
	r->route->fn(r, h->app);
	int hold = evloop_changes(h->loop) != before;
	if (r->park && !r->resp) {
		if (h->stopping) {
			reply_error(r, 503, "unavailable", "the server is stopping");
			return reply_send(r);
		}
		/* Writes it made (a reap, say) are committed at the end of the pass. */
		MHD_suspend_connection(conn);
		/* A wake came while the handler ran (it may be what the handler itself caused): run
		 * it again rather than sleep through it. */
		if (park_add(&h->park, &r->pe, r->park_until, r->park_on))
			MHD_resume_connection(conn);
		return MHD_YES;
	}
	if (!r->resp)
		reply_error(r, 500, "internal", "the handler gave no reply");
	if (hold && !h->stopping) {
		/* What this reply says is not durable until the pass's changes are committed. */
		MHD_suspend_connection(conn);
		r->held = 1;
		r->next_held = h->held;
		h->held = r;
		return MHD_YES;
	}
	/* Stopping: this may be the loop's last pass, so commit here. */
	if (hold && evloop_commit(h->loop))
		reply_unsaved(r);
	return reply_send(r);
}

/* Lets the replies held for the pass's commit go (evloop_io.release), as 503s when it failed:
 * nothing they reported happened. */
static int http_release(void *ctx, int committed)
{
	struct http *h = ctx;
	struct req *r = h->held, *n;
	int released = 0;

	h->held = NULL;
	for (; r; r = n) {
		n = r->next_held;
		r->next_held = NULL;
		if (!committed)
			reply_unsaved(r);
		r->held = 2;
		MHD_resume_connection(r->conn);
		released++;
	}
	return released;
}

/* When the loop must run a pass even if MHD's descriptor stays quiet (evloop_io.deadline):
 * MHD's own timeouts, and the parked requests' deadlines and timed wake. */
static int64_t http_deadline(void *ctx)
{
	struct http *h = ctx;
	MHD_UNSIGNED_LONG_LONG to = 0;
	int64_t now = timefmt_mono_ms(), at = park_next(&h->park);

	if (MHD_get_timeout(h->d, &to) == MHD_YES &&
	    to < (MHD_UNSIGNED_LONG_LONG)(INT64_MAX - now) && now + (int64_t)to < at)
		at = now + (int64_t)to;
	return at;
}

/* One pass (evloop_io.run): resume the parked requests that are due, run MHD (read, run
 * handlers, write; every epoll_wait inside it non-blocking), and cut slow or idle clients. A
 * stopping loop's first pass answers every parked request. */
static void http_run(void *ctx, int stopping)
{
	struct http *h = ctx;

	if (stopping && !h->stopping) {
		h->stopping = 1; /* from now on, a request that would park is answered 503 */
		park_wake_all(&h->park);
	}
	park_tick(&h->park, timefmt_mono_ms());
	MHD_run(h->d);
	(void)connwatch_sweep(&h->conns, timefmt_mono_ms());
}

struct evloop_io http_io(struct http *h)
{
	return (struct evloop_io){ h->epoll_fd, http_deadline, http_run, http_release, h };
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
	/* the reply is all in the socket (or the request ended): the next request's turn */
	connwatch_phase(r->c, CONN_READING, timefmt_mono_ms());
	park_remove(&h->park, &r->pe);
	if (r->state && r->state_free)
		r->state_free(r->state);
	reply_clear(r);
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
		/* NULL: unwatched, MHD's own timeout still applies. From here on, a TLS handshake
		 * is part of reading the first request. */
		*socket_context =
			ci ? connwatch_add(&h->conns, ci->connect_fd, timefmt_mono_ms()) : NULL;
		return;
	}
	connwatch_remove(&h->conns, c);
	*socket_context = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap; /* MHD reports client misbehaviour here; the reply already says it. */
}

struct http *http_start(const char *host, uint16_t port, const struct http_route *routes,
			size_t nroutes, void *app, http_authorize authorize, struct evloop *loop,
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
	h->authorize = authorize;
	h->loop = loop;
	park_init(&h->park, http_resume, NULL);
	if (!opts)
		opts = &defaults;
	tls = opts->tls_cert_pem && opts->tls_key_pem;
	struct MHD_OptionItem tls_opts[] = {
		{ tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)opts->tls_cert_pem },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)opts->tls_key_pem },
		{ MHD_OPTION_END, 0, NULL },
	};
	connwatch_init(&h->conns, 1000LL * (opts->request_timeout_s ? opts->request_timeout_s
								     : HTTP_REQUEST_TIMEOUT_S));
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
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	h->epoll_fd = info ? info->epoll_fd : -1;
	if (h->epoll_fd < 0) {
		snprintf(err, errlen, "cannot start the event loop");
		goto fail;
	}
	return h;
fail:
	if (h->d)
		MHD_stop_daemon(h->d);
	park_release(&h->park);
	free(h->stats);
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
	MHD_stop_daemon(h->d);
	park_release(&h->park);
	free(h->stats);
	free(h);
}
