/* The worker's pull loop: take a lease (long poll), compute it on the pool while heartbeating,
 * deliver the counts until the coordinator acknowledges them, repeat until told to stop. */
#ifndef TALLY_LOOP_H
#define TALLY_LOOP_H

#include <signal.h>
#include <stdint.h>
#include "exec.h"
#include "kernel.h"

/* A test double's hook (tests/doubles/liar.c): changes the counts of each lease before they are
 * delivered. Product code never sets one. */
struct loop_tamper {
	void (*counts)(const struct count_keys *keys, uint64_t *counts);
};

struct loop_config {
	const char *server;  /* "http://host:port" */
	const char *name;    /* this worker's name */
	int threads;
	int wait_s;          /* long-poll seconds per lease request */
	int64_t idle_exit_s; /* return after this long without a lease (0: never); idle.h */
	const char *token;   /* the worker token ("" when the coordinator needs none) */
	const char *cacert;  /* PEM CA file to trust for https:// ("": the system's) */
	const struct exec_policy *exec; /* programs kernel exec may run; none: exec is off */
	int64_t exec_idle_s;     /* a resident program without a batch this long stops (0: never) */
	int64_t exec_max_rss_mib; /* a resident program past this is restarted (0: no limit) */
	const struct loop_tamper *tamper; /* NULL but in test doubles */
};

/* Runs until *stop is set, then finishes (or fails) the lease in hand and returns 0; or until it
 * has held no lease for cfg->idle_exit_s, and returns 0.
 * Returns 1 when it cannot start (out of memory), 3 when the coordinator has quarantined this
 * worker (its counts disagreed with other workers'). */
int loop_run(const struct loop_config *cfg, volatile sig_atomic_t *stop);

#endif
