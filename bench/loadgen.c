/* tally-loadgen: load on the coordinator from one thread, with epoll, non-blocking sockets and a
 * minimal HTTP/1.1 client (keep-alive, Content-Length bodies only; no libcurl).
 *
 *   tally-loadgen cycle --port P [--workers 256] [--seconds 10] [--samples 1e9] [--acked FILE]
 *     Submits one count job with batch_size 1, then runs --workers simulated workers, each on its
 *     own keep-alive connection, looping lease (max_batches 1) -> complete. A cycle is one
 *     lease+complete pair; its latency runs from sending the lease request to the complete's
 *     reply. After a warm-up (--warmup, 1 s) cycles are counted for --seconds; then no new lease
 *     is asked for and the leases still held are completed (the drain), so that the job's
 *     batches.done ends equal to "acked" (every accepted complete: warm-up + counted + drain);
 *     if the drain times out, batches.done may exceed it by up to "completes_in_flight".
 *     Prints {"mode":"cycle","workers","seconds","cycles","rate","p50_ms","p99_ms","max_ms",
 *     "errors",...}; --acked FILE gets every acknowledged lease id, one per line.
 *
 *   tally-loadgen idle --port P [--workers 2000] [--seconds 20] [--wait 30]
 *     Parks --workers long polls (POST /v1/leases with wait_s) on an empty queue, re-polling on
 *     each 204, and meanwhile times GET /healthz on its own connection every 100 ms. Prints
 *     {"mode":"idle","workers","connected","polls_answered","healthz_p50_ms","healthz_max_ms",
 *     "errors",...}; "connected" is how many polls are parked (sent, unanswered) at the end.
 *
 * Every reply is read into a capped buffer (64 KiB per connection); a connection the server
 * closes is reopened and counted. Exit: 0 after a run (errors are in the JSON), 1 when the run
 * could not start, 2 bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include "buf.h"
#include "num.h"
#include "opt.h"

#define IN_CAP (64 * 1024)      /* per-connection reply buffer */
#define READ_CHUNK 16384
#define OUT_MAX 512             /* our requests are small and ours */
#define ERRORS_SHOWN 5
#define DRAIN_US 10000000LL     /* cycle: how long the drain may take */
#define RAMP_US 60000000LL      /* how long opening all connections may take */
#define CONNECT_GAP_US 20000LL  /* pause between two batches of connects */
#define HEALTHZ_EVERY_US 100000LL
#define RECONNECT_US 50000LL
#define CONNECT_RETRY_US 100000LL
#define SETUP_TIMEOUT_S 30

enum mode { M_CYCLE, M_IDLE };
enum kind { K_NONE, K_LEASE, K_COMPLETE, K_POLL, K_FAIL, K_HEALTHZ };

static const char *const kind_names[] = { "nothing", "POST /v1/leases", "complete",
					  "POST /v1/leases (long poll)", "fail", "GET /healthz" };

struct conn {
	int fd;          /* -1 while closed */
	int idx;         /* worker number; -1 for the healthz connection */
	int connecting;  /* a non-blocking connect is in progress */
	int out_armed;   /* EPOLLOUT is registered */
	enum kind kind;  /* the request in flight */
	char out[OUT_MAX];
	size_t outlen, outoff;
	struct buf in;   /* what the server sent, not yet parsed */
	int64_t t_req;   /* us: when the request in flight was queued */
	int64_t t_cycle; /* us: when this cycle's lease request was queued */
	int64_t wake_at; /* us: when a delayed connection acts (reopens or sends) */
	int delayed;     /* in g.delayed */
	int have_lease;  /* a granted lease not yet completed (cycle) or given back (idle) */
	char lease_id[32];
	uint64_t lease_samples, lease_batches;
};

/* Latencies in us, growable. */
struct lat {
	int64_t *v;
	size_t n, cap;
};

static struct {
	/* options */
	enum mode mode;
	struct sockaddr_in addr;
	char hostport[80];
	int64_t workers, seconds, wait_s, warmup_s, connect_batch;
	uint64_t samples;
	FILE *acked_file;
	char job_id[32];
	/* the loop */
	int ep;
	struct conn *conns;
	struct conn health;
	struct conn **delayed;
	size_t ndelayed;
	int64_t opened;      /* workers opened so far (the ramp) */
	int64_t nconnecting; /* connects in progress */
	int64_t inflight;    /* connections with a request in flight */
	int64_t holding;     /* leases granted and not yet completed or given back */
	int64_t ramp_next, start, t0, warm_end, end, hz_next;
	int stopping, ramp_timeout;
	/* counters */
	int64_t errors, reconnects, server_closes, connect_errors;
	int64_t warmup_cycles, cycles, drain_cycles, acked, batches_acked, duplicates, no_work;
	int64_t polls_answered, leases_unwanted, hz_skipped, lat_dropped;
	struct lat cyc, hz;
} g;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_error(const char *fmt, ...)
{
	va_list ap;

	g.errors++;
	if (g.errors > ERRORS_SHOWN) {
		if (g.errors == ERRORS_SHOWN + 1)
			fprintf(stderr, "tally-loadgen: (further errors are only counted)\n");
		return;
	}
	fprintf(stderr, "tally-loadgen: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void lat_add(struct lat *l, int64_t v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		int64_t *nv = realloc(l->v, cap * sizeof *nv);
		if (!nv) {
			g.lat_dropped++;
			return;
		}
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void lat_sort(struct lat *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, cmp_i64);
}

/* The q-quantile (nearest rank) of a sorted list, in ms; 0 when empty. */
static double lat_ms(const struct lat *l, double q)
{
	size_t i;
	if (!l->n)
		return 0;
	i = (size_t)(q * (double)l->n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > l->n)
		i = l->n;
	return (double)l->v[i - 1] / 1000.0;
}

/* Drops the first n bytes of b (the capped buffer only grows; this is the reader's side). */
static void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

/* ---- HTTP/1.1 replies ---- */

struct resp {
	int status;
	size_t hdr_len;  /* status line + headers + the blank line */
	size_t body_len; /* Content-Length */
	int close;       /* the server will close the connection after this reply */
};

static int header_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && !strncasecmp(name, want, len);
}

/* Does the comma-separated value hold the token "close"? */
static int has_close_token(const char *v, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t s, e;
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == 5 && !strncasecmp(v + s, "close", 5))
			return 1;
	}
	return 0;
}

/* The length of p's first line (up to CR or LF), at most max, within len bytes. */
static size_t strcspn_n(const char *p, size_t len, size_t max)
{
	size_t n = 0;
	while (n < len && n < max && p[n] != '\r' && p[n] != '\n')
		n++;
	return n;
}

/* Looks for one whole reply at the start of p[0..len). Returns 1 with r filled, 0 when more bytes
 * are needed, -1 (why set) when it is not a reply this client can read. */
static int parse_response(const char *p, size_t len, struct resp *r, char *why, size_t whylen)
{
	size_t end = 0, line, cl = 0;
	int has_cl = 0;

	memset(r, 0, sizeof *r);
	for (size_t i = 0; i + 3 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
			end = i + 2; /* just past the last header line's CRLF */
			break;
		}
	if (!end) {
		if (len >= 5 && memcmp(p, "HTTP/", 5)) {
			snprintf(why, whylen, "reply does not start with HTTP/");
			return -1;
		}
		return 0;
	}
	/* "HTTP/1.1 200 OK\r\n" */
	if (end < 14 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (p[12] != ' ' && p[12] != '\r')) {
		snprintf(why, whylen, "bad status line '%.*s'", (int)strcspn_n(p, end, 40), p);
		return -1;
	}
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->close = p[7] == '0'; /* HTTP/1.0: closes unless it says keep-alive */
	line = (size_t)((const char *)memchr(p, '\n', end) - p) + 1;
	while (line < end) {
		const char *ls = p + line, *le = memchr(ls, '\n', end - line), *colon, *v, *ve;
		if (!le || le == ls || le[-1] != '\r') {
			snprintf(why, whylen, "header line not ended by CRLF");
			return -1;
		}
		line = (size_t)(le - p) + 1;
		ve = le - 1; /* the \r */
		colon = memchr(ls, ':', (size_t)(ve - ls));
		if (!colon) {
			snprintf(why, whylen, "header line without a colon");
			return -1;
		}
		v = colon + 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t nlen = (size_t)(colon - ls), vlen = (size_t)(ve - v);
		if (header_is(ls, nlen, "Content-Length")) {
			char num[24];
			uint64_t n;
			if (vlen == 0 || vlen >= sizeof num) {
				snprintf(why, whylen, "bad Content-Length");
				return -1;
			}
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			if (num_parse_u64(num, 0, UINT64_MAX, &n) || (has_cl && n != cl)) {
				snprintf(why, whylen, "bad Content-Length '%s'", num);
				return -1;
			}
			if (n > IN_CAP) {
				snprintf(why, whylen, "body of %" PRIu64 " bytes is over the %d-byte cap",
					 n, IN_CAP);
				return -1;
			}
			cl = (size_t)n;
			has_cl = 1;
		} else if (header_is(ls, nlen, "Transfer-Encoding")) {
			snprintf(why, whylen, "Transfer-Encoding '%.*s' is not supported",
				 (int)(vlen > 40 ? 40 : vlen), v);
			return -1;
		} else if (header_is(ls, nlen, "Connection")) {
			if (has_close_token(v, vlen))
				r->close = 1;
			else if (vlen == 10 && !strncasecmp(v, "keep-alive", 10))
				r->close = 0;
		}
	}
	if (!has_cl) {
		if (r->status / 100 != 1 && r->status != 204 && r->status != 304) {
			snprintf(why, whylen, "%d reply without Content-Length", r->status);
			return -1;
		}
		cl = 0;
	}
	r->hdr_len = end + 2;
	if (len - r->hdr_len < cl)
		return 0;
	r->body_len = cl;
	return 1;
}

/* ---- connections ---- */

static void set_kind(struct conn *c, enum kind k)
{
	if (c->kind == K_NONE && k != K_NONE)
		g.inflight++;
	else if (c->kind != K_NONE && k == K_NONE)
		g.inflight--;
	c->kind = k;
}

static void delay_conn(struct conn *c, int64_t at)
{
	c->wake_at = at;
	if (!c->delayed) {
		c->delayed = 1;
		g.delayed[g.ndelayed++] = c;
	}
}

static void conn_arm(struct conn *c, int want_out)
{
	struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0u) };
	if (c->out_armed == want_out)
		return;
	ev.data.ptr = c;
	if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev))
		note_error("epoll_ctl: %s", strerror(errno));
	c->out_armed = want_out;
}

static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	if (c->connecting) {
		c->connecting = 0;
		g.nconnecting--;
	}
	set_kind(c, K_NONE);
	buf_release(&c->in);
	c->outlen = c->outoff = 0;
	c->out_armed = 0;
}

static void conn_open(struct conn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };

	if (fd < 0) {
		note_error("socket: %s", strerror(errno));
		delay_conn(c, now_us() + 1000000);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (const struct sockaddr *)&g.addr, sizeof g.addr) && errno != EINPROGRESS) {
		g.connect_errors++;
		note_error("connect: %s", strerror(errno));
		close(fd);
		delay_conn(c, now_us() + CONNECT_RETRY_US);
		return;
	}
	ev.data.ptr = c;
	if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev)) {
		note_error("epoll_ctl: %s", strerror(errno));
		close(fd);
		delay_conn(c, now_us() + 1000000);
		return;
	}
	c->fd = fd;
	c->connecting = 1;
	c->out_armed = 1;
	g.nconnecting++;
}

/* The connection broke (closed, reset, unreadable reply): reopen it a little later. A lease
 * being completed is completed again on the new connection (a repeat is acknowledged). */
static void conn_lost(struct conn *c, const char *why)
{
	if (c->kind != K_NONE)
		note_error("connection %d: %s with %s in flight; reconnecting", c->idx, why,
			   kind_names[c->kind]);
	g.reconnects++;
	conn_close(c);
	delay_conn(c, now_us() + RECONNECT_US);
}

static void conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_arm(c, 1);
				return;
			}
			conn_lost(c, strerror(errno));
			return;
		}
		c->outoff += (size_t)w;
	}
	conn_arm(c, 0);
}

static void conn_send(struct conn *c, enum kind k, const char *method, const char *path,
		      const char *body)
{
	int n;
	if (body)
		n = snprintf(c->out, sizeof c->out,
			     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
			     "Content-Length: %zu\r\n\r\n%s",
			     method, path, g.hostport, strlen(body), body);
	else
		n = snprintf(c->out, sizeof c->out, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method,
			     path, g.hostport);
	if (n < 0 || (size_t)n >= sizeof c->out) {
		note_error("request for %s too long", path);
		return;
	}
	c->outlen = (size_t)n;
	c->outoff = 0;
	c->t_req = now_us();
	set_kind(c, k);
	conn_flush(c);
}

/* Sends what this connection does next, if anything. */
static void conn_next(struct conn *c)
{
	char path[96], body[192];

	if (c->fd < 0 || c->connecting || c->kind != K_NONE || c == &g.health)
		return;
	if (c->have_lease) {
		if (g.mode == M_CYCLE) {
			snprintf(path, sizeof path, "/v1/leases/%s/complete", c->lease_id);
			snprintf(body, sizeof body, "{\"counts\":{\"samples\":%" PRIu64 "}}",
				 c->lease_samples);
			conn_send(c, K_COMPLETE, "POST", path, body);
		} else {
			snprintf(path, sizeof path, "/v1/leases/%s/fail", c->lease_id);
			conn_send(c, K_FAIL, "POST", path,
				  "{\"error\":\"tally-loadgen idle: not computing\"}");
		}
		return;
	}
	if (g.stopping)
		return;
	if (g.mode == M_CYCLE) {
		snprintf(body, sizeof body,
			 "{\"worker\":\"lg-%d\",\"kernels\":[\"count\"],\"max_batches\":1}", c->idx);
		c->t_cycle = now_us();
		conn_send(c, K_LEASE, "POST", "/v1/leases", body);
	} else {
		snprintf(body, sizeof body,
			 "{\"worker\":\"idle-%d\",\"kernels\":[\"count\"],\"wait_s\":%" PRId64 "}",
			 c->idx, g.wait_s);
		conn_send(c, K_POLL, "POST", "/v1/leases", body);
	}
}

/* Reads a lease reply into c. Returns 0, or -1 when it is not a lease. */
static int take_lease(struct conn *c, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *id = NULL;
	json_int_t fb = -1, bc = -1, bs = -1, samples = -1;
	int rc = -1;

	if (j && !json_unpack(j, "{s:s,s:I,s:I,s:I,s:I}", "id", &id, "first_batch", &fb,
			      "batch_count", &bc, "batch_size", &bs, "samples", &samples) &&
	    strlen(id) < sizeof c->lease_id && fb >= 0 && bc >= 1 && bs >= 1 && samples >= 1) {
		uint64_t first = (uint64_t)fb * (uint64_t)bs;
		uint64_t last = ((uint64_t)fb + (uint64_t)bc) * (uint64_t)bs;
		if (last > (uint64_t)samples)
			last = (uint64_t)samples;
		if (first < last) {
			snprintf(c->lease_id, sizeof c->lease_id, "%s", id);
			c->lease_samples = last - first;
			c->lease_batches = (uint64_t)bc;
			rc = 0;
		}
	}
	json_decref(j);
	return rc;
}

/* Reads {"accepted": true, "duplicate": ...}. Returns 1 when accepted, else 0. */
static int accepted(const char *body, size_t len, int *duplicate)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	int acc = 0, dup = 0;
	if (j && json_unpack(j, "{s:b,s?b}", "accepted", &acc, "duplicate", &dup))
		acc = 0;
	json_decref(j);
	*duplicate = dup;
	return acc;
}

static void drop_lease(struct conn *c)
{
	if (c->have_lease) {
		c->have_lease = 0;
		g.holding--;
	}
}

#define SNIP(len) ((int)((len) > 200 ? 200 : (len)))

/* Handles one reply. Returns how long to wait (us) before this connection goes on; 0 at once. */
static int64_t on_response(struct conn *c, int status, const char *body, size_t len, int64_t now)
{
	enum kind k = c->kind;
	int64_t backoff = g.mode == M_CYCLE ? 10000 : 100000;
	int dup;

	set_kind(c, K_NONE);
	switch (k) {
	case K_LEASE:
		if (status == 200 && !take_lease(c, body, len)) {
			c->have_lease = 1;
			g.holding++;
			return 0;
		}
		if (status == 204)
			g.no_work++;
		note_error("worker lg-%d: POST /v1/leases: %d %.*s", c->idx, status, SNIP(len),
			   body);
		return backoff;
	case K_COMPLETE:
		if (status == 200 && accepted(body, len, &dup)) {
			drop_lease(c);
			g.duplicates += dup;
			g.acked++;
			g.batches_acked += (int64_t)c->lease_batches;
			if (g.acked_file)
				fprintf(g.acked_file, "%s\n", c->lease_id);
			if (!g.t0 || now < g.warm_end) {
				g.warmup_cycles++;
			} else if (now < g.end) {
				g.cycles++;
				lat_add(&g.cyc, now - c->t_cycle);
			} else {
				g.drain_cycles++;
			}
			return 0;
		}
		note_error("worker lg-%d: complete of lease %s: %d %.*s", c->idx, c->lease_id,
			   status, SNIP(len), body);
		drop_lease(c); /* refused for good, or a server failure: either way, move on */
		return backoff;
	case K_POLL:
		if (status == 204) {
			g.polls_answered++;
			return 0;
		}
		if (status == 200 && !take_lease(c, body, len)) {
			g.leases_unwanted++;
			note_error("worker idle-%d: got lease %s from a queue meant to be empty; "
				   "giving it back", c->idx, c->lease_id);
			c->have_lease = 1;
			g.holding++;
			return 0;
		}
		note_error("worker idle-%d: POST /v1/leases: %d %.*s", c->idx, status, SNIP(len),
			   body);
		return backoff;
	case K_FAIL:
		if (status != 200)
			note_error("worker idle-%d: fail of lease %s: %d %.*s", c->idx, c->lease_id,
				   status, SNIP(len), body);
		drop_lease(c);
		return backoff; /* the batches are pending again: do not grab them straight back */
	case K_HEALTHZ:
		if (status != 200)
			note_error("GET /healthz: %d %.*s", status, SNIP(len), body);
		else
			lat_add(&g.hz, now - c->t_req);
		return 0;
	case K_NONE:
		break;
	}
	return 0;
}

/* Handles every whole reply in c->in. Returns 1 when the connection was closed meanwhile. */
static int conn_parse(struct conn *c)
{
	for (;;) {
		struct resp r;
		char why[128];
		int rc = parse_response(c->in.data, c->in.len, &r, why, sizeof why);
		int64_t now, wait;

		if (rc == 0)
			return 0;
		if (rc < 0) {
			conn_lost(c, why);
			return 1;
		}
		if (r.status / 100 == 1) { /* interim: never asked for, skip it */
			buf_consume(&c->in, r.hdr_len);
			continue;
		}
		if (c->kind == K_NONE) {
			note_error("connection %d: a %d reply to no request", c->idx, r.status);
			conn_lost(c, "unsolicited reply");
			return 1;
		}
		now = now_us();
		wait = on_response(c, r.status, c->in.data + r.hdr_len, r.body_len, now);
		buf_consume(&c->in, r.hdr_len + r.body_len);
		if (r.close) {
			g.server_closes++;
			g.reconnects++;
			conn_close(c);
			delay_conn(c, now + wait);
			return 1;
		}
		if (wait)
			delay_conn(c, now + wait);
		else
			conn_next(c);
		if (c->fd < 0)
			return 1;
	}
}

static void conn_readable(struct conn *c)
{
	char tmp[READ_CHUNK];
	for (;;) {
		ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
		if (n > 0) {
			if (buf_add(&c->in, tmp, (size_t)n)) {
				conn_lost(c, "reply over the 64 KiB buffer cap");
				return;
			}
			if (conn_parse(c))
				return;
			continue;
		}
		if (n == 0) {
			conn_lost(c, "server closed the connection");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			conn_lost(c, strerror(errno));
		return;
	}
}

static void conn_event(struct conn *c, uint32_t ev, int64_t now)
{
	if (c->fd < 0)
		return;
	if (c->connecting) {
		int err = 0;
		socklen_t elen = sizeof err;
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen))
			err = errno;
		c->connecting = 0;
		if (--g.nconnecting == 0)
			g.ramp_next = now + CONNECT_GAP_US;
		if (err) {
			g.connect_errors++;
			note_error("connect: %s", strerror(err));
			conn_close(c);
			delay_conn(c, now + CONNECT_RETRY_US);
			return;
		}
		conn_arm(c, 0);
		conn_next(c);
		return;
	}
	if ((ev & EPOLLOUT) && c->outoff < c->outlen) {
		conn_flush(c);
		if (c->fd < 0)
			return;
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_readable(c);
}

static void run_delayed(int64_t now)
{
	size_t i = 0;
	while (i < g.ndelayed) {
		struct conn *c = g.delayed[i];
		if (c->wake_at > now) {
			i++;
			continue;
		}
		g.delayed[i] = g.delayed[--g.ndelayed];
		c->delayed = 0;
		if (c->fd >= 0)
			conn_next(c);
		else if (!g.stopping || c->have_lease)
			conn_open(c);
	}
}

/* Opens the next batch of worker connections once the previous batch has connected. */
static void ramp(int64_t now)
{
	if (g.opened >= g.workers || g.nconnecting > 0 || now < g.ramp_next)
		return;
	for (int64_t k = 0; k < g.connect_batch && g.opened < g.workers; k++)
		conn_open(&g.conns[g.opened++]);
}

static int64_t count_kind(enum kind k)
{
	int64_t n = 0;
	for (int64_t i = 0; i < g.workers; i++)
		n += g.conns[i].fd >= 0 && g.conns[i].kind == k;
	return n;
}

static int64_t parked(void)
{
	int64_t n = 0;
	for (int64_t i = 0; i < g.workers; i++) {
		const struct conn *c = &g.conns[i];
		n += c->fd >= 0 && c->kind == K_POLL && c->outoff == c->outlen;
	}
	return n;
}

/* ---- setup: one blocking request ---- */

/* Sends one request on a fresh blocking connection; the reply's body goes into out. Returns the
 * status, or -1 after printing why. */
static int sync_request(const char *method, const char *path, const char *body, struct buf *out)
{
	struct conn c = { .fd = -1, .idx = -1 };
	struct timeval tv = { .tv_sec = SETUP_TIMEOUT_S };
	struct resp r;
	char why[128], tmp[READ_CHUNK];
	int status = -1, n;
	size_t off = 0;

	buf_init(&c.in, IN_CAP);
	if ((c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
	    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ||
	    connect(c.fd, (const struct sockaddr *)&g.addr, sizeof g.addr)) {
		fprintf(stderr, "tally-loadgen: cannot connect to %s: %s\n", g.hostport,
			strerror(errno));
		goto out;
	}
	n = snprintf(c.out, sizeof c.out,
		     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     method, path, g.hostport, strlen(body), body);
	if (n < 0 || (size_t)n >= sizeof c.out)
		goto out;
	while (off < (size_t)n) {
		ssize_t w = send(c.fd, c.out + off, (size_t)n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "tally-loadgen: send: %s\n", strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	for (;;) {
		int rc = parse_response(c.in.data, c.in.len, &r, why, sizeof why);
		ssize_t got;
		if (rc < 0) {
			fprintf(stderr, "tally-loadgen: %s %s: %s\n", method, path, why);
			goto out;
		}
		if (rc > 0 && r.status / 100 == 1) {
			buf_consume(&c.in, r.hdr_len);
			continue;
		}
		if (rc > 0)
			break;
		got = recv(c.fd, tmp, sizeof tmp, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			fprintf(stderr, "tally-loadgen: %s %s: %s\n", method, path,
				got ? strerror(errno) : "connection closed before the reply");
			goto out;
		}
		if (buf_add(&c.in, tmp, (size_t)got)) {
			fprintf(stderr, "tally-loadgen: %s %s: reply over the cap\n", method, path);
			goto out;
		}
	}
	if (buf_add(out, c.in.data + r.hdr_len, r.body_len)) {
		fprintf(stderr, "tally-loadgen: %s %s: reply over the cap\n", method, path);
		goto out;
	}
	status = r.status;
out:
	if (c.fd >= 0)
		close(c.fd);
	buf_release(&c.in);
	return status;
}

static int create_job(void)
{
	struct buf out;
	char body[160];
	json_t *j;
	const char *id;
	int status, rc = -1;

	buf_init(&out, IN_CAP);
	snprintf(body, sizeof body,
		 "{\"kernel\":\"count\",\"samples\":%" PRIu64 ",\"batch_size\":1,\"seed\":1}",
		 g.samples);
	status = sync_request("POST", "/v1/jobs", body, &out);
	if (status < 0)
		goto out;
	if (status != 201) {
		fprintf(stderr, "tally-loadgen: POST /v1/jobs: %d %.200s\n", status, buf_str(&out));
		goto out;
	}
	j = json_loadb(buf_str(&out), out.len, 0, NULL);
	id = j ? json_string_value(json_object_get(j, "id")) : NULL;
	if (id && strlen(id) < sizeof g.job_id) {
		snprintf(g.job_id, sizeof g.job_id, "%s", id);
		rc = 0;
	} else {
		fprintf(stderr, "tally-loadgen: POST /v1/jobs: no id in %.200s\n", buf_str(&out));
	}
	json_decref(j);
out:
	buf_release(&out);
	return rc;
}

/* ---- the run ---- */

static int raise_nofile(void)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)g.workers + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		fprintf(stderr, "tally-loadgen: %" PRId64 " workers need about %llu descriptors; the "
				"limit is %llu (raise the hard limit: ulimit -Hn)\n",
			g.workers, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
		return -1;
	}
	return 0;
}

static void run(void)
{
	struct epoll_event evs[256];

	g.start = now_us();
	if (g.mode == M_IDLE)
		conn_open(&g.health);
	for (;;) {
		int64_t now = now_us();
		int n;

		ramp(now);
		if (!g.t0 && g.opened == g.workers &&
		    (g.mode == M_CYCLE ? g.nconnecting == 0 : parked() == g.workers))
			g.t0 = now;
		if (!g.t0 && now - g.start > RAMP_US) {
			fprintf(stderr, "tally-loadgen: not all connections up after %lld s; going on\n",
				RAMP_US / 1000000);
			g.t0 = now;
			g.ramp_timeout = 1;
		}
		if (g.t0 && !g.warm_end) {
			g.warm_end = g.t0 + (g.mode == M_CYCLE ? g.warmup_s * 1000000 : 0);
			g.end = g.warm_end + g.seconds * 1000000;
			g.hz_next = g.t0;
		}
		if (g.t0 && now >= g.end && !g.stopping)
			g.stopping = 1;
		if (g.stopping && (g.mode == M_IDLE || (g.inflight == 0 && g.holding == 0) ||
				   now >= g.end + DRAIN_US))
			return;
		if (g.mode == M_IDLE && g.t0 && !g.stopping && now >= g.hz_next) {
			struct conn *h = &g.health;
			g.hz_next += HEALTHZ_EVERY_US;
			if (g.hz_next <= now)
				g.hz_next = now + HEALTHZ_EVERY_US;
			if (h->fd >= 0 && !h->connecting && h->kind == K_NONE)
				conn_send(h, K_HEALTHZ, "GET", "/healthz", NULL);
			else
				g.hz_skipped++;
		}
		run_delayed(now);
		n = epoll_wait(g.ep, evs, (int)(sizeof evs / sizeof evs[0]), 5);
		if (n < 0 && errno != EINTR) {
			note_error("epoll_wait: %s", strerror(errno));
			return;
		}
		now = now_us();
		for (int i = 0; i < n; i++)
			conn_event(evs[i].data.ptr, evs[i].events, now);
	}
}

static void report(void)
{
	int64_t now = now_us();

	if (g.mode == M_CYCLE) {
		double rate = g.seconds ? (double)g.cycles / (double)g.seconds : 0;
		lat_sort(&g.cyc);
		printf("{\"mode\":\"cycle\",\"workers\":%" PRId64 ",\"seconds\":%" PRId64
		       ",\"cycles\":%" PRId64 ",\"rate\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
		       "\"max_ms\":%.3f,\"errors\":%" PRId64 ",\"job_id\":\"%s\",\"warmup_cycles\":%"
		       PRId64 ",\"drain_cycles\":%" PRId64 ",\"acked\":%" PRId64
		       ",\"batches_acked\":%" PRId64 ",\"duplicates\":%" PRId64 ",\"no_work\":%" PRId64
		       ",\"unfinished\":%" PRId64 ",\"completes_in_flight\":%" PRId64
		       ",\"reconnects\":%" PRId64 ",\"server_closes\":%"
		       PRId64 ",\"connect_errors\":%" PRId64 "}\n",
		       g.workers, g.seconds, g.cycles, rate, lat_ms(&g.cyc, 0.50), lat_ms(&g.cyc, 0.99),
		       lat_ms(&g.cyc, 1.0), g.errors, g.job_id, g.warmup_cycles, g.drain_cycles,
		       g.acked, g.batches_acked, g.duplicates, g.no_work,
		       g.holding > g.inflight ? g.holding : g.inflight, count_kind(K_COMPLETE),
		       g.reconnects, g.server_closes,
		       g.connect_errors);
	} else {
		double hz_max;
		int unanswered = g.health.kind == K_HEALTHZ;
		lat_sort(&g.hz);
		hz_max = lat_ms(&g.hz, 1.0);
		if (unanswered && (double)(now - g.health.t_req) / 1000.0 > hz_max)
			hz_max = (double)(now - g.health.t_req) / 1000.0;
		printf("{\"mode\":\"idle\",\"workers\":%" PRId64 ",\"seconds\":%" PRId64
		       ",\"wait_s\":%" PRId64 ",\"connected\":%" PRId64 ",\"polls_answered\":%" PRId64
		       ",\"healthz_n\":%zu,\"healthz_p50_ms\":%.3f,\"healthz_p99_ms\":%.3f,"
		       "\"healthz_max_ms\":%.3f,\"healthz_skipped\":%" PRId64
		       ",\"healthz_unanswered\":%d,\"errors\":%" PRId64 ",\"ramp_ms\":%.1f,"
		       "\"ramp_timeout\":%s,\"leases_unwanted\":%" PRId64 ",\"reconnects\":%" PRId64
		       ",\"server_closes\":%" PRId64 ",\"connect_errors\":%" PRId64 "}\n",
		       g.workers, g.seconds, g.wait_s, parked(), g.polls_answered, g.hz.n,
		       lat_ms(&g.hz, 0.50), lat_ms(&g.hz, 0.99), hz_max, g.hz_skipped, unanswered,
		       g.errors, (double)(g.t0 - g.start) / 1000.0, g.ramp_timeout ? "true" : "false",
		       g.leases_unwanted, g.reconnects, g.server_closes, g.connect_errors);
	}
	fflush(stdout);
}

/* Reads 1e9 or 1000000000. Returns 0, or -1. */
static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end || !(d >= 1 && d <= 4.6e18) || d != (double)(uint64_t)d)
		return -1;
	*out = (uint64_t)d;
	return 0;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *samples = "1e9", *acked = NULL, *mode = NULL;
	int64_t port = 0;
	const struct opt opts[] = {
		{ "port", NULL, OPT_INT, &port, 1, 65535, "the server's port (required)" },
		{ "host", NULL, OPT_STR, &host, 0, 0, "the server's IPv4 address" },
		{ "workers", NULL, OPT_INT, &g.workers, 1, 1000000,
		  "connections (simulated workers); 0: cycle 256, idle 2000" },
		{ "seconds", NULL, OPT_INT, &g.seconds, 1, 86400,
		  "measured seconds; 0: cycle 10, idle 20" },
		{ "warmup", NULL, OPT_INT, &g.warmup_s, 0, 3600, "cycle: seconds before counting" },
		{ "samples", NULL, OPT_STR, &samples, 0, 0,
		  "cycle: the job's samples (= batches; 1e9 style accepted)" },
		{ "acked", NULL, OPT_STR, &acked, 0, 0,
		  "cycle: file to write every acknowledged lease id to" },
		{ "wait", NULL, OPT_INT, &g.wait_s, 0, 60, "idle: wait_s of each long poll" },
		{ "connect-batch", NULL, OPT_INT, &g.connect_batch, 1, 100000,
		  "connections opened at a time" },
	};
	const char *summary =
		"Load generator for tally-server (one thread, epoll, keep-alive HTTP/1.1).\n"
		"  cycle: submits a count job (batch_size 1); --workers connections loop lease "
		"(max_batches 1) -> complete;\n"
		"         prints cycles/s and cycle latency percentiles as one JSON line.\n"
		"  idle:  parks --workers long polls on an empty queue and times GET /healthz every "
		"100 ms;\n"
		"         prints how many stayed parked and the healthz latency as one JSON line.";
	int rc;

	g.seconds = 0;
	g.workers = 0;
	g.warmup_s = 1;
	g.wait_s = 30;
	g.connect_batch = 200;
	if (argc >= 2 && (!strcmp(argv[1], "cycle") || !strcmp(argv[1], "idle"))) {
		mode = argv[1];
		rc = opt_parse(opts, sizeof opts / sizeof opts[0], argc - 1, argv + 1,
			       "tally-loadgen cycle|idle", summary);
	} else {
		rc = opt_parse(opts, sizeof opts / sizeof opts[0], argc, argv,
			       "tally-loadgen cycle|idle", summary);
		if (!rc) {
			fprintf(stderr, "tally-loadgen: the first argument must be the mode, cycle or "
					"idle (try --help)\n");
			rc = 2;
		}
	}
	if (rc)
		return rc == 1 ? 0 : 2;
	g.mode = !strcmp(mode, "cycle") ? M_CYCLE : M_IDLE;
	if (!g.workers)
		g.workers = g.mode == M_CYCLE ? 256 : 2000;
	if (!g.seconds)
		g.seconds = g.mode == M_CYCLE ? 10 : 20;
	if (!port) {
		fprintf(stderr, "tally-loadgen: --port is required\n");
		return 2;
	}
	if (parse_count(samples, &g.samples)) {
		fprintf(stderr, "tally-loadgen: --samples: expected a count such as 1e9, not '%s'\n",
			samples);
		return 2;
	}
	g.addr.sin_family = AF_INET;
	g.addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &g.addr.sin_addr) != 1) {
		fprintf(stderr, "tally-loadgen: --host: expected an IPv4 address, not '%s'\n", host);
		return 2;
	}
	snprintf(g.hostport, sizeof g.hostport, "%s:%u", host, (unsigned)port);
	signal(SIGPIPE, SIG_IGN);
	if (raise_nofile())
		return 1;
	if (acked && g.mode == M_CYCLE && !(g.acked_file = fopen(acked, "w"))) {
		fprintf(stderr, "tally-loadgen: --acked %s: %s\n", acked, strerror(errno));
		return 1;
	}
	if ((g.ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		fprintf(stderr, "tally-loadgen: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	g.conns = calloc((size_t)g.workers, sizeof *g.conns);
	g.delayed = calloc((size_t)g.workers + 1, sizeof *g.delayed);
	if (!g.conns || !g.delayed) {
		fprintf(stderr, "tally-loadgen: out of memory\n");
		return 1;
	}
	for (int64_t i = 0; i < g.workers; i++) {
		g.conns[i].fd = -1;
		g.conns[i].idx = (int)i;
		buf_init(&g.conns[i].in, IN_CAP);
	}
	g.health.fd = -1;
	g.health.idx = -1;
	buf_init(&g.health.in, IN_CAP);

	if (g.mode == M_CYCLE) {
		if (create_job())
			return 1;
		fprintf(stderr, "tally-loadgen: job %s: %" PRIu64 " batches; %" PRId64
				" workers, %" PRId64 " s warm-up, %" PRId64 " s measured\n",
			g.job_id, g.samples, g.workers, g.warmup_s, g.seconds);
	}
	run();
	report();
	for (int64_t i = 0; i < g.workers; i++)
		conn_close(&g.conns[i]);
	conn_close(&g.health);
	close(g.ep);
	if (g.acked_file && fclose(g.acked_file)) {
		fprintf(stderr, "tally-loadgen: --acked %s: %s\n", acked, strerror(errno));
		return 1;
	}
	free(g.conns);
	free(g.delayed);
	free(g.cyc.v);
	free(g.hz.v);
	return 0;
}
