/* A running coordinator service: the store, the coordinator, the event loop and the HTTP layer
 * wired together and serving. tally-server starts one and waits for a signal; the CLI's local
 * mode (`tally run` without TALLY_SERVER) starts one on a temporary file. The service owns all
 * of them. */
#ifndef TALLY_SERVICE_H
#define TALLY_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include "coord.h"
#include "err.h"
#include "http.h"

struct service_config {
	const char *host;    /* address to listen on */
	uint16_t port;       /* 0: any free port (see service_port) */
	const char *dbpath;  /* SQLite file, created if need be */
	struct coord_config coord;
	struct http_options http;
	const char *client_token; /* "" (both): no tokens */
	const char *worker_token;
};

struct service;

/* Opens the store, loads its state and starts serving. On failure writes why into err and
 * returns TALLY_EDB (the store), TALLY_EIO (listening, or the event loop) or TALLY_ENOMEM. */
TALLY_WUR enum tally_err service_start(const struct service_config *cfg, struct service **out,
				       char *err, size_t errlen);
/* Returns the port actually bound. */
uint16_t service_port(const struct service *s);
/* Answers what is in flight, stops serving, closes the store and frees s. Accepts NULL. */
void service_stop(struct service *s);

#endif
