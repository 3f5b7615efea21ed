/* What tally-loadgen's four files share: the state of the one run (the global g: the program
 * has one thread and does one run), the connections, and the functions one file calls in another.
 *   loadgen.c       options, setup, the event loop, the report, main (read it first)
 *   loadgen_conn.c  the connections: what each simulated worker sends next, and its replies
 *   loadgen_fleet.c the fleet mode: workers of many speeds computing on timers, and its report
 *   loadgen_http.c  the HTTP/1.1 reply parser (Content-Length bodies only)
 * Nothing here is thread-safe; nothing here exits. */
#ifndef TALLY_LOADGEN_H
#define TALLY_LOADGEN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "buf.h"
#include "heap.h"
#include "wire.h"

#define IN_CAP (64 * 1024)      /* per-connection reply buffer */
#define READ_CHUNK 16384
#define OUT_MAX 512             /* our requests are small and ours */

enum mode { M_CYCLE, M_IDLE, M_FLEET };
enum kind { K_NONE, K_LEASE, K_COMPLETE, K_POLL, K_FAIL, K_HEALTHZ, K_HEARTBEAT };

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
	size_t heap_pos; /* in g.delayed, or HEAP_NONE */
	int have_lease;  /* a granted lease not yet completed (cycle) or given back (idle) */
	char lease_id[WIRE_LEASE_ID_MAX];
	uint64_t lease_samples, lease_batches;
	double lease_ttl_s;
	/* fleet */
	double speed;       /* samples/s this worker "computes" at */
	int64_t compute_end; /* us: when the lease held is computed */
	int64_t hb_at;       /* us: its next heartbeat */
	int64_t leases_done; /* leases completed */
};

/* Latencies in us, growable. */
struct lat {
	int64_t *v;
	size_t n, cap;
};

struct loadgen {
	/* options */
	enum mode mode;
	struct sockaddr_in addr;
	char hostport[80];
	int64_t workers, seconds, wait_s, warmup_s, connect_batch;
	uint64_t samples;
	FILE *acked_file;
	uint64_t batch_size;           /* fleet: the job's */
	double min_rate, max_rate;     /* fleet: the workers' speeds, samples/s */
	char job_id[32];
	/* the loop */
	int ep;
	struct conn *conns;
	struct conn health;
	struct heap delayed; /* connections waiting for a time, soonest first (room for all) */
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
	/* fleet counters */
	uint64_t samples_acked;
	int64_t heartbeats, lost, t_done;
	struct lat dur1, dur2, dur3; /* simulated lease durations (us): first leases, from the
				      * second on, from the third on */
	struct lat lag;              /* how late timers fire (us) */
};

/* The run's options and counters, zeroed at start; main sets the options. */
extern struct loadgen g;

/* loadgen.c */

/* Microseconds on the monotonic clock. Can't fail. */
int64_t now_us(void);
/* Counts an error of the run and prints the first few (ERRORS_SHOWN) to stderr. */
void note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends a latency (us); when memory runs out it is dropped and counted in g.lat_dropped. */
void lat_add(struct lat *l, int64_t v);
/* Sorts l. lat_ms() returns the q-quantile (nearest rank) of a sorted l in ms; 0 when empty. */
void lat_sort(struct lat *l);
double lat_ms(const struct lat *l, double q);

/* Submits the run's count job (g.samples in batches of batch_size) and keeps its id in g.job_id.
 * Returns 0, or -1 after printing why. */
int create_job(uint64_t batch_size);

/* loadgen_fleet.c */

/* Gives each worker its speed: log-uniform over [g.min_rate, g.max_rate], spread evenly. Returns
 * their sum, samples/s. */
double fleet_speeds(void);
/* Sends what fleet worker c does next: its complete once computed, a heartbeat before that, or
 * a long poll for a lease. */
void fleet_next(struct conn *c, int64_t now);
/* c was granted a lease: returns how long (us) until it next acts (heartbeat or complete). */
int64_t fleet_took_lease(struct conn *c, int64_t now);
/* A heartbeat's reply: returns how long until c next acts. */
int64_t fleet_heartbeat(struct conn *c, int status, int64_t now);
/* c's complete was accepted (dup: as a repeat): counts it, and stops the run when the job's
 * samples are all acknowledged. */
void fleet_completed(struct conn *c, int dup, int64_t now);
/* Prints the fleet run's figures as one JSON line. */
void fleet_report(void);

/* loadgen_http.c */

struct resp {
	int status;
	size_t hdr_len;  /* status line + headers + the blank line */
	size_t body_len; /* Content-Length */
	int close;       /* the server will close the connection after this reply */
};

/* Looks for one whole reply at the start of p[0..len). Returns 1 with r filled (the body is
 * p[r->hdr_len..][0..r->body_len)), 0 when more bytes are needed, -1 (why set) when it is not a
 * reply this client can read: chunked, no Content-Length, or a body over IN_CAP. */
int parse_response(const char *p, size_t len, struct resp *r, char *why, size_t whylen);
/* Drops the first n bytes of b (the capped buffer only grows; this is the reader's side). */
void buf_consume(struct buf *b, size_t n);

/* loadgen_conn.c: c is a worker's connection (g.conns[i]) or g.health. */

/* Starts a non-blocking connect of a closed connection; on failure, retries it later. */
void conn_open(struct conn *c);
/* Closes c (if open) and forgets its request in flight and unread bytes; a lease it holds stays. */
void conn_close(struct conn *c);
/* Queues one request on c and sends what the socket takes; k is what the reply will be read as.
 * A request that does not fit OUT_MAX is counted as an error and not sent. */
void conn_send(struct conn *c, enum kind k, const char *method, const char *path,
	       const char *body);
/* Handles the epoll events ev of c: connect done, more to send, replies to read. */
void conn_event(struct conn *c, uint32_t ev, int64_t now);
/* Makes g.delayed, with room for n connections. Returns 0, or -1 when out of memory. */
int delay_init(size_t n);
/* Wakes the delayed connections whose time has come: reopens them or sends what is next. */
void run_delayed(int64_t now);
/* When the next delayed connection wakes (us), or INT64_MAX when none waits. */
int64_t next_wake(void);
/* Opens the next batch of worker connections once the previous batch has connected. */
void ramp(int64_t now);
/* How many open worker connections have a request of kind k in flight. */
int64_t count_kind(enum kind k);
/* How many long polls are parked: sent whole, not yet answered. */
int64_t parked(void);

#endif
