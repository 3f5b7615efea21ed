/* An embedded coordinator and worker for `tally run` on one machine. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "local.h"
#include "loop.h"
#include "service.h"

struct local {
	struct service *srv;
	pthread_t worker;
	int worker_started;
	volatile sig_atomic_t stop;
	struct loop_config cfg;
	char dir[64];
	char db[96];
	char url[64];
};

static void *local_worker(void *ctx)
{
	struct local *l = ctx;
	loop_run(&l->cfg, &l->stop);
	return NULL;
}

/* Removes the store's files and the directory (the WAL and shared-memory files too). */
static void local_cleanup(struct local *l)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char path[128];
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		snprintf(path, sizeof path, "%s%s", l->db, suffixes[i]);
		unlink(path);
	}
	rmdir(l->dir);
}

struct local *local_start(int threads, const char **url, char *err, size_t errlen)
{
	struct local *l = calloc(1, sizeof *l);
	const char *tmp = getenv("TMPDIR");
	struct service_config cfg = {
		.host = "127.0.0.1",
		.port = 0,
		.coord = { .lease_timeout_ms = 30000, .lease_target_ms = 1000, .max_failures = 3 },
		.http = { .request_timeout_s = 30, .max_connections = 64 },
		.users = NULL, /* open: only this process reaches it */
	};

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(l->dir, sizeof l->dir, "%.40s/tally-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(l->dir)) {
		snprintf(err, errlen, "making a temporary directory in %.40s: %m",
			 tmp && *tmp ? tmp : "/tmp");
		free(l);
		return NULL;
	}
	snprintf(l->db, sizeof l->db, "%s/tally.db", l->dir);
	cfg.dbpath = l->db;
	if (service_start(&cfg, &l->srv, err, errlen))
		goto fail;
	snprintf(l->url, sizeof l->url, "http://127.0.0.1:%u", service_port(l->srv));
	l->cfg = (struct loop_config){ .server = l->url, .name = "local", .threads = threads,
				       .wait_s = 5, .token = "", .cacert = "" };
	if (pthread_create(&l->worker, NULL, local_worker, l)) {
		snprintf(err, errlen, "cannot start the worker thread");
		goto fail;
	}
	l->worker_started = 1;
	*url = l->url;
	return l;
fail:
	local_stop(l);
	return NULL;
}

void local_stop(struct local *l)
{
	if (!l)
		return;
	l->stop = 1;
	/* The coordinator first: stopping answers the worker's parked lease request at once,
	 * where curl would notice the stop flag only at its next progress call (up to a second). */
	service_stop(l->srv);
	if (l->worker_started)
		pthread_join(l->worker, NULL);
	local_cleanup(l);
	free(l);
}
