/* A running coordinator: the store, the coordinator and the HTTP layer wired together and
 * serving. tally-server starts one and waits for a signal; the CLI's local mode (`tally run`
 * without TALLY_SERVER) starts one on a temporary file. The serve owns all three. */
#ifndef TALLY_SERVE_H
#define TALLY_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include "coord.h"
#include "err.h"
#include "http.h"

struct serve_config {
	const char *host;    /* address to listen on */
	uint16_t port;       /* 0: any free port (see serve_port) */
	const char *dbpath;  /* SQLite file, created if need be */
	struct coord_config coord;
	struct http_options http;
	const char *client_token; /* "" (both): no tokens */
	const char *worker_token;
};

struct serve;

/* Opens the store, loads its state and starts serving. On failure writes why into err and
 * returns TALLY_EDB (the store), TALLY_EIO (listening) or TALLY_ENOMEM. */
TALLY_WUR enum tally_err serve_start(const struct serve_config *cfg, struct serve **out,
				     char *err, size_t errlen);
/* Returns the port actually bound. */
uint16_t serve_port(const struct serve *s);
/* Answers what is in flight, stops serving, closes the store and frees s. Accepts NULL. */
void serve_stop(struct serve *s);

#endif
