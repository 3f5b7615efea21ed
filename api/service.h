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
	struct users *users; /* stolen: who may call (common/users.h); NULL: the API is open */
	int64_t retention_ms; /* finished jobs older than this are deleted (coord_retain); 0: kept */
};

struct service;

/* Opens the store, loads its state and starts serving (cfg->users is taken, even on failure).
 * On failure writes why into err and returns TALLY_EDB (the store), TALLY_EIO (listening, or
 * the event loop) or TALLY_ENOMEM. */
TALLY_WUR enum tally_err service_start(const struct service_config *cfg, struct service **out,
				       char *err, size_t errlen);
/* Hands s a new users table (stolen; NULL is ignored): it replaces the current one before the
 * next request is authorized, and the old one is freed then. For a service started with users.
 * Thread-safe: tally-server's main thread calls it on SIGHUP. */
void service_users(struct service *s, struct users *users);
/* Returns the port actually bound. */
uint16_t service_port(const struct service *s);
/* Answers what is in flight, stops serving, closes the store and frees s. Accepts NULL. */
void service_stop(struct service *s);

#endif
