/* Local mode: a coordinator on a temporary SQLite file, serving 127.0.0.1 on a free port, and a
 * worker with this machine's cores, both in this process: what `tally run` uses when
 * TALLY_SERVER is not set. The same code computes the same counts as on a cluster. */
#ifndef TALLY_LOCAL_H
#define TALLY_LOCAL_H

#include <stddef.h>

struct local;

/* Starts them; *url is set to the coordinator's address (borrowed until local_stop). Returns
 * NULL and writes why into err on failure. */
struct local *local_start(int threads, const char **url, char *err, size_t errlen);
/* Stops the worker and the coordinator and removes the temporary directory. Accepts NULL. */
void local_stop(struct local *l);

#endif
