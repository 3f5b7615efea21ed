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
 *   tally-loadgen fleet --port P [--workers 10000] [--seconds 30] [--min-rate 1e6] [--max-rate 1e9]
 *                           [--batch-size 1e5] [--samples N] [--wait 30]
 *     Submits one count job of --samples (default: the fleet's total speed x --seconds) and runs
 *     --workers simulated workers with speeds log-uniform over [--min-rate, --max-rate], each on
 *     its own connection: a lease by long poll, a timer of lease samples / speed (heartbeats
 *     every third of ttl_s meanwhile), the complete; until the job's samples are all
 *     acknowledged (or 3 x --seconds + 60 s). Prints {"mode":"fleet","leases_per_s",
 *     "first_p50_ms","from2_p50_ms","from3_p50_ms","from3_p99_ms","samples","done","errors",...}:
 *     the simulated lease durations of each worker's first lease, of those from its second on,
 *     and from its third on (loadgen_fleet.c).
 *
 * Every reply is read into a capped buffer (64 KiB per connection); a connection the server
 * closes is reopened and counted. Exit: 0 after a run (errors are in the JSON), 1 when the run
 * could not start, 2 bad usage.
 *
 * This file holds the options, the setup (the job), the event loop and the report;
 * loadgen_conn.c the connections, loadgen_fleet.c the fleet mode, loadgen_http.c the reply
 * parser (loadgen.h walks them). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include "buf.h"
#include "loadgen.h"
#include "opt.h"

#define ERRORS_SHOWN 5
#define DRAIN_US 10000000LL     /* cycle: how long the drain may take */
#define RAMP_US 60000000LL      /* how long opening all connections may take */
#define HEALTHZ_EVERY_US 100000LL
#define SETUP_TIMEOUT_S 30
#define FLEET_TIMEOUT_S(planned) (3 * (planned) + 60) /* fleet: the job not done by then */

struct loadgen g;

int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void note_error(const char *fmt, ...)
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

void lat_add(struct lat *l, int64_t v)
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

void lat_sort(struct lat *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, cmp_i64);
}

double lat_ms(const struct lat *l, double q)
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

int create_job(uint64_t batch_size)
{
	struct buf out;
	char body[160];
	json_t *j;
	const char *id;
	int status, rc = -1;

	buf_init(&out, IN_CAP);
	snprintf(body, sizeof body,
		 "{\"kernel\":\"count\",\"samples\":%" PRIu64 ",\"batch_size\":%" PRIu64
		 ",\"seed\":1}", g.samples, batch_size);
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
	if (g.mode == M_FLEET) /* measured from the first lease request; ends with the job */
		g.t0 = g.start;
	for (;;) {
		int64_t now = now_us(), wake;
		int n, timeout_ms = 5;

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
			g.end = g.warm_end + (g.mode == M_FLEET ? FLEET_TIMEOUT_S(g.seconds)
								: g.seconds) * 1000000;
			g.hz_next = g.t0;
		}
		if (g.t0 && now >= g.end && !g.stopping)
			g.stopping = 1;
		if (g.stopping &&
		    (g.mode == M_IDLE || now >= g.end + DRAIN_US ||
		     (g.holding == 0 && (g.mode == M_FLEET || g.inflight == 0))))
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
		wake = next_wake();
		if (wake - now < 5000) /* timers (fleet) fire on time, not on the 5 ms tick */
			timeout_ms = wake <= now ? 0 : (int)((wake - now + 999) / 1000);
		n = epoll_wait(g.ep, evs, (int)(sizeof evs / sizeof evs[0]), timeout_ms);
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

	if (g.mode == M_FLEET) {
		fleet_report();
	} else if (g.mode == M_CYCLE) {
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
	const char *host = "127.0.0.1", *samples = NULL, *acked = NULL, *mode = NULL;
	const char *batch_size = "1e5", *min_rate = "1e6", *max_rate = "1e9";
	uint64_t lo, hi;
	int64_t port = 0;
	const struct opt opts[] = {
		{ "port", NULL, OPT_INT, &port, 1, 65535, "the server's port (required)" },
		{ "host", NULL, OPT_STR, &host, 0, 0, "the server's IPv4 address" },
		{ "workers", NULL, OPT_INT, &g.workers, 1, 1000000,
		  "connections (simulated workers); 0: cycle 256, idle 2000, fleet 10000" },
		{ "seconds", NULL, OPT_INT, &g.seconds, 1, 86400,
		  "measured seconds; 0: cycle 10, idle 20; fleet: the job's planned duration, 30" },
		{ "warmup", NULL, OPT_INT, &g.warmup_s, 0, 3600, "cycle: seconds before counting" },
		{ "samples", NULL, OPT_STR, &samples, 0, 0,
		  "cycle: the job's samples (= batches; 1e9 style accepted; default 1e9); fleet: "
		  "default the fleet's speed x --seconds" },
		{ "batch-size", NULL, OPT_STR, &batch_size, 0, 0, "fleet: the job's batch_size" },
		{ "min-rate", NULL, OPT_STR, &min_rate, 0, 0, "fleet: the slowest worker, samples/s" },
		{ "max-rate", NULL, OPT_STR, &max_rate, 0, 0, "fleet: the fastest worker, samples/s" },
		{ "acked", NULL, OPT_STR, &acked, 0, 0,
		  "cycle: file to write every acknowledged lease id to" },
		{ "wait", NULL, OPT_INT, &g.wait_s, 0, 60, "idle, fleet: wait_s of each long poll" },
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
		"         prints how many stayed parked and the healthz latency as one JSON line.\n"
		"  fleet: submits a count job; --workers simulated workers of speeds log-uniform over\n"
		"         [--min-rate, --max-rate] take leases (long polls), wait samples/speed on a "
		"timer,\n"
		"         heartbeat meanwhile and complete them, until the job is done; prints "
		"leases/s and\n"
		"         the simulated lease durations (first leases, from the 2nd, from the 3rd) as "
		"one JSON line.";
	int rc;

	g.seconds = 0;
	g.workers = 0;
	g.warmup_s = 1;
	g.wait_s = 30;
	g.connect_batch = 200;
	if (argc >= 2 && (!strcmp(argv[1], "cycle") || !strcmp(argv[1], "idle") ||
			  !strcmp(argv[1], "fleet"))) {
		mode = argv[1];
		rc = opt_parse(opts, sizeof opts / sizeof opts[0], argc - 1, argv + 1,
			       "tally-loadgen cycle|idle|fleet", summary);
	} else {
		rc = opt_parse(opts, sizeof opts / sizeof opts[0], argc, argv,
			       "tally-loadgen cycle|idle|fleet", summary);
		if (!rc) {
			fprintf(stderr, "tally-loadgen: the first argument must be the mode, cycle, "
					"idle or fleet (try --help)\n");
			rc = 2;
		}
	}
	if (rc)
		return rc == 1 ? 0 : 2;
	g.mode = !strcmp(mode, "cycle") ? M_CYCLE : !strcmp(mode, "idle") ? M_IDLE : M_FLEET;
	if (!g.workers)
		g.workers = g.mode == M_CYCLE ? 256 : g.mode == M_IDLE ? 2000 : 10000;
	if (!g.seconds)
		g.seconds = g.mode == M_CYCLE ? 10 : g.mode == M_IDLE ? 20 : 30;
	if (!port) {
		fprintf(stderr, "tally-loadgen: --port is required\n");
		return 2;
	}
	if ((samples && parse_count(samples, &g.samples)) ||
	    parse_count(batch_size, &g.batch_size) || parse_count(min_rate, &lo) ||
	    parse_count(max_rate, &hi) || lo > hi) {
		fprintf(stderr, "tally-loadgen: --samples, --batch-size, --min-rate, --max-rate: "
				"expected counts such as 1e9 (min <= max)\n");
		return 2;
	}
	g.min_rate = (double)lo;
	g.max_rate = (double)hi;
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
	if (!g.conns || delay_init((size_t)g.workers + 1)) {
		fprintf(stderr, "tally-loadgen: out of memory\n");
		return 1;
	}
	for (int64_t i = 0; i < g.workers; i++) {
		g.conns[i].fd = -1;
		g.conns[i].idx = (int)i;
		g.conns[i].heap_pos = HEAP_NONE;
		buf_init(&g.conns[i].in, IN_CAP);
	}
	g.health.fd = -1;
	g.health.idx = -1;
	g.health.heap_pos = HEAP_NONE;
	buf_init(&g.health.in, IN_CAP);

	if (g.mode == M_FLEET) {
		double speed = fleet_speeds();
		if (!samples)
			g.samples = (uint64_t)(speed * (double)g.seconds);
		if (create_job(g.batch_size))
			return 1;
		fprintf(stderr, "tally-loadgen: job %s: %" PRIu64 " samples in batches of %" PRIu64
				"; %" PRId64 " workers, %.3g samples/s in all (%.3g..%.3g each)\n",
			g.job_id, g.samples, g.batch_size, g.workers, speed, g.min_rate, g.max_rate);
	}
	if (g.mode == M_CYCLE) {
		if (!samples)
			g.samples = 1000000000;
		if (create_job(1))
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
	heap_release(&g.delayed);
	free(g.dur1.v);
	free(g.dur2.v);
	free(g.dur3.v);
	free(g.lag.v);
	free(g.cyc.v);
	free(g.hz.v);
	return 0;
}
