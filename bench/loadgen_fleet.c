/* tally-loadgen's fleet mode: a fleet of simulated workers, each on its own keep-alive
 * connection, with speeds spread log-uniformly over [--min-rate, --max-rate]. Each takes count
 * leases with long polls, "computes" a lease by waiting lease samples / speed on a timer (the
 * loop's heap of delayed connections: no thread, no CPU), heartbeats every third of the lease's
 * ttl_s meanwhile (as tally-worker does), and completes it. It records what the coordinator's
 * lease sizing gave each worker: the simulated duration of each lease, by the worker's lease
 * number, against --lease-target-ms. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include "loadgen.h"

#define FLEET_GOLDEN 0.6180339887498949 /* spreads speeds evenly, unrelated to the order */

double fleet_speeds(void)
{
	double sum = 0, span = log(g.max_rate / g.min_rate);
	for (int64_t i = 0; i < g.workers; i++) {
		double u = fmod((double)i * FLEET_GOLDEN + 0.5 / (double)g.workers, 1.0);
		g.conns[i].speed = g.min_rate * exp(u * span);
		sum += g.conns[i].speed;
	}
	return sum;
}

/* How long (us) until c next acts on its lease: its complete or its next heartbeat. */
static int64_t fleet_wait(const struct conn *c, int64_t now)
{
	int64_t at = c->compute_end < c->hb_at ? c->compute_end : c->hb_at;
	return at > now ? at - now : 0;
}

static int64_t fleet_hb_every(const struct conn *c)
{
	double us = c->lease_ttl_s * 1e6 / 3.0;
	return us < 100000 ? 100000 : (int64_t)us;
}

int64_t fleet_took_lease(struct conn *c, int64_t now)
{
	c->compute_end = now + (int64_t)((double)c->lease_samples / c->speed * 1e6);
	c->hb_at = now + fleet_hb_every(c);
	return fleet_wait(c, now);
}

int64_t fleet_heartbeat(struct conn *c, int status, int64_t now)
{
	(void)status;
	g.heartbeats++;
	c->hb_at = now + fleet_hb_every(c);
	return fleet_wait(c, now);
}

void fleet_next(struct conn *c, int64_t now)
{
	char path[160], body[192];

	if (c->have_lease) {
		const char *verb = now >= c->compute_end ? "complete" : "heartbeat";
		snprintf(path, sizeof path, "/v1/leases/%s/%s?worker=fleet-%d", c->lease_id, verb,
			 c->idx);
		if (now >= c->compute_end) {
			snprintf(body, sizeof body, "{\"counts\":{\"samples\":%" PRIu64 "}}",
				 c->lease_samples);
			conn_send(c, K_COMPLETE, "POST", path, body);
		} else {
			conn_send(c, K_HEARTBEAT, "POST", path, "{}");
		}
		return;
	}
	if (g.stopping)
		return;
	snprintf(body, sizeof body,
		 "{\"worker\":\"fleet-%d\",\"kernels\":[\"count\"],\"wait_s\":%" PRId64 "}", c->idx,
		 g.wait_s);
	c->t_cycle = now;
	conn_send(c, K_LEASE, "POST", "/v1/leases", body);
}

void fleet_completed(struct conn *c, int dup, int64_t now)
{
	int64_t us = (int64_t)((double)c->lease_samples / c->speed * 1e6);

	if (dup)
		return;
	c->leases_done++;
	lat_add(c->leases_done == 1 ? &g.dur1 : &g.dur2, us);
	if (c->leases_done >= 3)
		lat_add(&g.dur3, us);
	g.samples_acked += c->lease_samples;
	if (g.samples_acked >= g.samples && !g.t_done) {
		g.t_done = now;
		g.stopping = 1;
	}
}

/* The q-quantile of l in ms, sorting it first. */
static double fleet_ms(struct lat *l, double q)
{
	lat_sort(l);
	return lat_ms(l, q);
}

void fleet_report(void)
{
	int64_t end = g.t_done ? g.t_done : now_us(), min_done = INT64_MAX, with3 = 0;
	double secs = (double)(end - g.start) / 1e6;
	int64_t leases = g.warmup_cycles + g.cycles + g.drain_cycles - g.duplicates;

	for (int64_t i = 0; i < g.workers; i++) {
		if (g.conns[i].leases_done < min_done)
			min_done = g.conns[i].leases_done;
		with3 += g.conns[i].leases_done >= 3;
	}
	printf("{\"mode\":\"fleet\",\"workers\":%" PRId64 ",\"job_id\":\"%s\",\"samples\":%" PRIu64
	       ",\"batch_size\":%" PRIu64 ",\"min_rate\":%.3g,\"max_rate\":%.3g,\"done\":%s,"
	       "\"seconds\":%.3f,\"samples_acked\":%" PRIu64 ",\"leases\":%" PRId64
	       ",\"leases_per_s\":%.1f,\"first_p50_ms\":%.1f,\"first_p99_ms\":%.1f,"
	       "\"from2_p50_ms\":%.1f,\"from2_p99_ms\":%.1f,\"from3_n\":%zu,\"from3_p50_ms\":%.1f,"
	       "\"from3_p99_ms\":%.1f,\"from3_max_ms\":%.1f,\"workers_with_3\":%" PRId64
	       ",\"min_leases\":%" PRId64 ",\"heartbeats\":%" PRId64 ",\"lost\":%" PRId64
	       ",\"duplicates\":%" PRId64 ",\"no_work\":%" PRId64 ",\"timer_lag_p50_ms\":%.2f,"
	       "\"timer_lag_p99_ms\":%.2f,\"errors\":%" PRId64 ",\"reconnects\":%" PRId64
	       ",\"server_closes\":%" PRId64 ",\"connect_errors\":%" PRId64 "}\n",
	       g.workers, g.job_id, g.samples, g.batch_size, g.min_rate, g.max_rate,
	       g.t_done ? "true" : "false", secs, g.samples_acked, leases,
	       secs > 0 ? (double)leases / secs : 0, fleet_ms(&g.dur1, 0.5), fleet_ms(&g.dur1, 0.99),
	       fleet_ms(&g.dur2, 0.5), fleet_ms(&g.dur2, 0.99), g.dur3.n, fleet_ms(&g.dur3, 0.5),
	       fleet_ms(&g.dur3, 0.99), fleet_ms(&g.dur3, 1.0), with3,
	       min_done == INT64_MAX ? 0 : min_done, g.heartbeats, g.lost, g.duplicates, g.no_work,
	       fleet_ms(&g.lag, 0.5), fleet_ms(&g.lag, 0.99), g.errors, g.reconnects,
	       g.server_closes, g.connect_errors);
	fflush(stdout);
}
