/* The HTTP client of the worker and the CLI: the only code that includes curl.h.
 * One keep-alive connection to the coordinator, JSON in and out, replies capped at
 * CLIENT_REPLY_MAX bytes. */
#ifndef TALLY_CLIENT_H
#define TALLY_CLIENT_H

#include <signal.h>
#include <jansson.h>
#include "err.h"
#include "wire.h"

#define CLIENT_REPLY_MAX WIRE_REPLY_MAX

struct client;

/* Sets up (and tears down) the transport library for the process: call once, before any other
 * thread starts, and the cleanup once at the end. client_global_init returns TALLY_OK, or
 * TALLY_EIO when it cannot. */
TALLY_WUR enum tally_err client_global_init(void);
void client_global_cleanup(void);

/* Returns a client for the coordinator at base_url ("http://host:port"), or NULL when out of
 * memory. abort, when not NULL, is polled during transfers marked abortable: once it is set,
 * such a transfer ends within about CLIENT_ABORT_GRACE_MS unless its reply has begun. */
struct client *client_new(const char *base_url, const char *token, const char *cacert,
			  volatile sig_atomic_t *abort);
void client_free(struct client *c);

#define CLIENT_ABORT_GRACE_MS 1000 /* an abortable transfer's reply may still come this long */
/* A new connection: the name is looked up again after CLIENT_DNS_CACHE_S (libcurl's default, 60 s,
 * kept workers away from a coordinator recreated at a new address, as a Swarm or compose service
 * is, for a minute), and an address that does not answer is given up after
 * CLIENT_CONNECT_TIMEOUT_MS (name lookup, TCP and TLS handshakes). A kept-alive connection needs
 * neither. */
#define CLIENT_DNS_CACHE_S 1
#define CLIENT_CONNECT_TIMEOUT_MS 2000

/* POSTs body (borrowed; NULL sends no body) to base_url + path and waits up to timeout_ms.
 * On an HTTP reply returns TALLY_OK with *status set and *reply a new reference to the parsed
 * body (NULL when empty or not JSON). TALLY_EIO when no reply came (refused, timed out, aborted);
 * TALLY_ENOMEM. */
TALLY_WUR enum tally_err client_post(struct client *c, const char *path, const json_t *body,
				     long timeout_ms, int abortable, long *status, json_t **reply);
/* GETs base_url + path; as client_post otherwise. */
TALLY_WUR enum tally_err client_get(struct client *c, const char *path, long timeout_ms,
				    long *status, json_t **reply);
/* DELETEs base_url + path; as client_post otherwise (*reply NULL for an empty reply, a 204). */
TALLY_WUR enum tally_err client_delete(struct client *c, const char *path, long timeout_ms,
				       long *status, json_t **reply);
/* Returns the last transport error, borrowed. */
const char *client_errmsg(const struct client *c);

#endif
