/* tally-loadgen's connections: each is one simulated worker on its own keep-alive connection
 * (or the /healthz prober), driven by epoll events; this file decides what it sends next, reads
 * the replies into the run's counters, and reopens it when it breaks. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "loadgen.h"

#define CONNECT_GAP_US 20000LL  /* pause between two batches of connects */
#define RECONNECT_US 50000LL
#define CONNECT_RETRY_US 100000LL

static const char *const kind_names[] = { "nothing", "POST /v1/leases", "complete",
					  "POST /v1/leases (long poll)", "fail", "GET /healthz",
					  "heartbeat" };

static void set_kind(struct conn *c, enum kind k)
{
	if (c->kind == K_NONE && k != K_NONE)
		g.inflight++;
	else if (c->kind != K_NONE && k == K_NONE)
		g.inflight--;
	c->kind = k;
}

static int delay_less(const void *a, const void *b)
{
	return ((const struct conn *)a)->wake_at < ((const struct conn *)b)->wake_at;
}

static void delay_setpos(void *item, size_t pos)
{
	((struct conn *)item)->heap_pos = pos;
}

int delay_init(size_t n)
{
	heap_init(&g.delayed, delay_less, delay_setpos);
	return heap_reserve(&g.delayed, n) ? -1 : 0;
}

static void delay_conn(struct conn *c, int64_t at)
{
	c->wake_at = at;
	if (c->heap_pos != HEAP_NONE)
		heap_fix(&g.delayed, c->heap_pos);
	else if (heap_push(&g.delayed, c)) /* room was made for every connection */
		note_error("delay: out of memory");
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

void conn_close(struct conn *c)
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

void conn_open(struct conn *c)
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

void conn_send(struct conn *c, enum kind k, const char *method, const char *path,
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
	char path[160], body[192];

	if (c->fd < 0 || c->connecting || c->kind != K_NONE || c == &g.health)
		return;
	if (g.mode == M_FLEET) {
		fleet_next(c, now_us());
		return;
	}
	if (c->have_lease) {
		if (g.mode == M_CYCLE) {
			snprintf(path, sizeof path, "/v1/leases/%s/complete?worker=lg-%d",
				 c->lease_id, c->idx);
			snprintf(body, sizeof body, "{\"counts\":{\"samples\":%" PRIu64 "}}",
				 c->lease_samples);
			conn_send(c, K_COMPLETE, "POST", path, body);
		} else {
			snprintf(path, sizeof path, "/v1/leases/%s/fail?worker=idle-%d",
				 c->lease_id, c->idx);
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
	double ttl = 30;
	int rc = -1;

	if (j && !json_unpack(j, "{s:s,s:I,s:I,s:I,s:I,s?F}", "id", &id, "first_batch", &fb,
			      "batch_count", &bc, "batch_size", &bs, "samples", &samples,
			      "ttl_s", &ttl) &&
	    strlen(id) < sizeof c->lease_id && fb >= 0 && bc >= 1 && bs >= 1 && samples >= 1) {
		uint64_t first = (uint64_t)fb * (uint64_t)bs;
		uint64_t last = ((uint64_t)fb + (uint64_t)bc) * (uint64_t)bs;
		if (last > (uint64_t)samples)
			last = (uint64_t)samples;
		if (first < last) {
			snprintf(c->lease_id, sizeof c->lease_id, "%s", id);
			c->lease_samples = last - first;
			c->lease_batches = (uint64_t)bc;
			c->lease_ttl_s = ttl;
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
			return g.mode == M_FLEET ? fleet_took_lease(c, now) : 0;
		}
		if (status == 204)
			g.no_work++;
		if (status == 204 && g.mode == M_FLEET)
			return 0; /* a long poll that ended without work: ask again */
		note_error("worker lg-%d: POST /v1/leases: %d %.*s", c->idx, status, SNIP(len),
			   body);
		return backoff;
	case K_COMPLETE:
		if (status == 200 && accepted(body, len, &dup)) {
			if (g.mode == M_FLEET)
				fleet_completed(c, dup, now);
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
	case K_HEARTBEAT:
		if (status == 200)
			return fleet_heartbeat(c, status, now);
		note_error("worker fleet-%d: heartbeat of lease %s: %d %.*s", c->idx, c->lease_id,
			   status, SNIP(len), body);
		g.lost++;
		drop_lease(c);
		return 0;
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

void conn_event(struct conn *c, uint32_t ev, int64_t now)
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

void run_delayed(int64_t now)
{
	struct conn *c;
	while ((c = heap_peek(&g.delayed)) && c->wake_at <= now) {
		heap_remove(&g.delayed, 0);
		if (g.mode == M_FLEET)
			lat_add(&g.lag, now - c->wake_at);
		if (c->fd >= 0)
			conn_next(c);
		else if (!g.stopping || c->have_lease)
			conn_open(c);
	}
}

void ramp(int64_t now)
{
	if (g.opened >= g.workers || g.nconnecting > 0 || now < g.ramp_next)
		return;
	for (int64_t k = 0; k < g.connect_batch && g.opened < g.workers; k++)
		conn_open(&g.conns[g.opened++]);
}

int64_t next_wake(void)
{
	const struct conn *c = heap_peek(&g.delayed);
	return c ? c->wake_at : INT64_MAX;
}

int64_t count_kind(enum kind k)
{
	int64_t n = 0;
	for (int64_t i = 0; i < g.workers; i++)
		n += g.conns[i].fd >= 0 && g.conns[i].kind == k;
	return n;
}

int64_t parked(void)
{
	int64_t n = 0;
	for (int64_t i = 0; i < g.workers; i++) {
		const struct conn *c = &g.conns[i];
		n += c->fd >= 0 && c->kind == K_POLL && c->outoff == c->outlen;
	}
	return n;
}
