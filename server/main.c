/* tally-server: reads its options and its users, starts a coordinator service (api/service.c),
 * then waits for signals: SIGHUP reads the users file again, SIGTERM or SIGINT stops. Exit
 * codes: 0 clean stop, 1 cannot start (store or listen), 2 bad usage or configuration (an
 * invalid token or users file, or a users file that group or others may read; a
 * --max-connections the file-descriptor limit cannot fit). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "buf.h"
#include "fdlimit.h"
#include "kernel.h"
#include "log.h"
#include "num.h"
#include "opt.h"
#include "service.h"
#include "spec.h" /* SPEC_LIVE_DEFAULT */
#include "token.h"
#include "users.h"

/* The names of the users that TALLY_TOKEN and TALLY_WORKER_TOKEN stand for. */
#define MAIN_TOKEN_USER "admin"
#define MAIN_WORKER_TOKEN_USER "worker"

/* Returns a new users table: the users file's (none when file is ""), then TALLY_TOKEN's admin
 * and TALLY_WORKER_TOKEN's worker (when set). NULL after writing why into err. */
static struct users *users_read(const char *file, const char *client_token,
				const char *worker_token, char *err, size_t errlen)
{
	struct users *u = users_new();

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((*file && users_load(u, file, err, errlen)) ||
	    (*client_token && users_add(u, MAIN_TOKEN_USER, USER_ADMIN, client_token,
					"TALLY_TOKEN (user " MAIN_TOKEN_USER ")", err, errlen)) ||
	    (*worker_token && users_add(u, MAIN_WORKER_TOKEN_USER, USER_WORKER, worker_token,
					"TALLY_WORKER_TOKEN (user " MAIN_WORKER_TOKEN_USER ")", err,
					errlen))) {
		users_free(u);
		return NULL;
	}
	return u;
}

/* SIGHUP: the users file again. A file that cannot be used leaves the users as they were. */
static void users_reload(struct service *srv, const char *file, const char *client_token,
			 const char *worker_token)
{
	struct users *u;
	char err[512], clean[512];

	if (!*file) {
		log_warn("msg=\"SIGHUP: no users file to read again (--users)\"");
		return;
	}
	if (!(u = users_read(file, client_token, worker_token, err, sizeof err))) {
		log_error("msg=\"users file refused; the users stay as they were\" error=\"%s\"",
			  log_clean(err, clean, sizeof clean));
		return;
	}
	log_info("msg=\"users file read again\" users=%zu", users_count(u));
	service_users(srv, u);
}

/* Returns 1 for an address only this machine can reach. */
static int is_loopback(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;
	if (!strcmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:8080", *dbpath = "./tally.db", *level = "info", *format = "logfmt";
	const char *token_file = "", *worker_token_file = "", *tls_cert = "", *tls_key = "";
	const char *kernel_dir = "", *users_file = "", *retention = "30d";
	int64_t lease_timeout = 30, lease_target_ms = 1000, max_failures = 3;
	int64_t request_timeout = 30, max_connections = 0;
	int64_t max_unfinished = 1000, max_in_memory = 100000, max_spec = SPEC_LIVE_DEFAULT;
	int64_t retention_ms = 0;
	int insecure = 0;
	const struct opt opts[] = {
		{ "listen", "TALLY_LISTEN", OPT_STR, &listen, 0, 0, "address:port to serve on" },
		{ "db", "TALLY_DB", OPT_STR, &dbpath, 0, 0, "SQLite database file" },
		{ "lease-timeout", "TALLY_LEASE_TIMEOUT", OPT_INT, &lease_timeout, 1, 86400,
		  "seconds a lease lives without a heartbeat" },
		{ "lease-target-ms", "TALLY_LEASE_TARGET_MS", OPT_INT, &lease_target_ms, 1, 600000,
		  "work per lease, in ms of the worker's measured speed" },
		{ "max-failures", "TALLY_MAX_FAILURES", OPT_INT, &max_failures, 0, 1000,
		  "failed leases a batch survives before its job fails (0: no limit)" },
		{ "max-unfinished-jobs", "TALLY_MAX_UNFINISHED_JOBS", OPT_INT, &max_unfinished, 1,
		  100000000, "queued and running jobs each user may have; past it a submit gets 429 "
		  "quota_exceeded" },
		{ "max-jobs-in-memory", "TALLY_MAX_JOBS_IN_MEMORY", OPT_INT, &max_in_memory, 1,
		  100000000, "queued and running jobs of all users together; past it a submit gets "
		  "429 server_full" },
		{ "max-speculative", "TALLY_MAX_SPECULATIVE", OPT_INT, &max_spec, 0, 100000,
		  "speculative copies of the leases jobs wait for last, live at a time (0: none)" },
		{ "token-file", "TALLY_TOKEN_FILE", OPT_STR, &token_file, 0, 0,
		  "file holding the client token (jobs API); or set TALLY_TOKEN" },
		{ "worker-token-file", "TALLY_WORKER_TOKEN_FILE", OPT_STR, &worker_token_file, 0, 0,
		  "file holding the worker token (lease API); or set TALLY_WORKER_TOKEN" },
		{ "users", "TALLY_USERS_FILE", OPT_STR, &users_file, 0, 0,
		  "file of users, one a line: NAME ROLE(admin|user|worker) TOKEN; mode 600; "
		  "SIGHUP reads it again" },
		{ "retention", "TALLY_RETENTION", OPT_STR, &retention, 0, 0,
		  "delete finished jobs that ended longer ago than this (e.g. 90s, 12h, 30d; 0: "
		  "keep them forever)" },
		{ "request-timeout", "TALLY_REQUEST_TIMEOUT", OPT_INT, &request_timeout, 1, 3600,
		  "seconds a client may take to send a request, to take a reply, or to sit idle "
		  "between two" },
		{ "max-connections", "TALLY_MAX_CONNECTIONS", OPT_INT, &max_connections, 0, 1000000,
		  "connections open at once (0: 16384, fewer if the file-descriptor limit, raised "
		  "to its hard limit at start, is short; set, it must fit)" },
		{ "tls-cert", "TALLY_TLS_CERT", OPT_STR, &tls_cert, 0, 0,
		  "PEM certificate (chain) file: serve HTTPS" },
		{ "tls-key", "TALLY_TLS_KEY", OPT_STR, &tls_key, 0, 0,
		  "PEM private key file for --tls-cert" },
		{ "insecure", "TALLY_INSECURE", OPT_BOOL, &insecure, 0, 0,
		  "serve a non-loopback address without tokens" },
		{ "kernel-dir", "TALLY_KERNEL_DIR", OPT_STR, &kernel_dir, 0, 0,
		  "directory of kernel plug-ins (*.so): their params are checked at submit, their "
		  "counts checked and their results derived" },
		{ "log-level", "TALLY_LOG_LEVEL", OPT_STR, &level, 0, 0,
		  "debug, info, warn or error" },
		{ "log-format", "TALLY_LOG_FORMAT", OPT_STR, &format, 0, 0,
		  "logfmt or json (one object per line)" },
	};
	struct service *srv = NULL;
	struct users *users = NULL;
	char client_token[TOKEN_MAX], worker_token[TOKEN_MAX];
	struct buf cert, key; /* PEM; freed at exit */
	char err[512], host[256];
	const char *colon;
	uint64_t port;
	sigset_t sigs;
	int sig, rc;

	buf_init(&cert, 1 << 20);
	buf_init(&key, 1 << 20);
	rc = opt_parse(opts, sizeof opts / sizeof opts[0], argc, argv, "tally-server",
		       "The tally coordinator: accepts map jobs over REST and leases their batches "
		       "to tally-worker processes.");
	if (rc)
		return rc == 1 ? 0 : 2;
	if (log_configure("tally-server", level, format))
		return 2;
	if (*kernel_dir && kernel_load_dir(kernel_dir, err, sizeof err)) {
		fprintf(stderr, "tally-server: --kernel-dir: %s\n", err);
		return 2;
	}
	if (num_parse_duration(retention, &retention_ms)) {
		fprintf(stderr, "tally-server: --retention: expected a duration such as 90s, 12h or 30d "
				"(or 0: keep jobs forever), not '%s'\n", retention);
		return 2;
	}
	colon = strrchr(listen, ':');
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host ||
	    num_parse_u64(colon + 1, 0, 65535, &port)) {
		fprintf(stderr, "tally-server: --listen: expected host:port, not '%s'\n", listen);
		return 2;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:8080 */
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (token_load(getenv("TALLY_TOKEN"), token_file, client_token, err, sizeof err) ||
	    token_load(getenv("TALLY_WORKER_TOKEN"), worker_token_file, worker_token, err,
		       sizeof err)) {
		fprintf(stderr, "tally-server: %s\n", err);
		return 2;
	}
	if (!*users_file && !client_token[0] != !worker_token[0]) {
		fprintf(stderr, "tally-server: set both tokens (TALLY_TOKEN and TALLY_WORKER_TOKEN, or "
				"--token-file and --worker-token-file), or neither\n");
		return 2;
	}
	if (client_token[0] && !strcmp(client_token, worker_token)) {
		fprintf(stderr, "tally-server: the client and worker tokens must differ\n");
		return 2;
	}
	if (!*tls_cert != !*tls_key) {
		fprintf(stderr, "tally-server: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (*tls_cert && (buf_add_file(&cert, tls_cert) || buf_add_file(&key, tls_key))) {
		fprintf(stderr, "tally-server: reading %s: %s\n", cert.len ? tls_key : tls_cert,
			errno ? strerror(errno) : "over 1 MiB");
		return 2;
	}
	if ((*users_file || client_token[0] || worker_token[0]) &&
	    !(users = users_read(users_file, client_token, worker_token, err, sizeof err))) {
		fprintf(stderr, "tally-server: %s\n", err);
		return 2;
	}
	if (users && !users_count(users))
		log_warn("msg=\"no users: every request to the jobs and lease API gets 401\"");
	if (!users && !insecure && !is_loopback(host)) {
		fprintf(stderr, "tally-server: refusing to serve %s without tokens: anyone who can "
				"reach it could submit jobs and counts. Set --users, or TALLY_TOKEN and "
				"TALLY_WORKER_TOKEN (or the --token-file flags), or pass --insecure\n",
			host);
		return 2;
	}

	/* Keep freed memory: a request's allocations are reused by the next, not handed back to
	 * the kernel and faulted in again. */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 16 << 20);

	/* Every idle worker holds a connection open: allow as many descriptors as they need. */
	unsigned connections;
	if (fdlimit_raise((unsigned)max_connections, &connections, err, sizeof err)) {
		fprintf(stderr, "tally-server: %s\n", err);
		return 2;
	}

	/* Signals are taken by sigwait() below; every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	const struct service_config cfg = {
		.host = host,
		.port = (uint16_t)port,
		.dbpath = dbpath,
		.coord = { .lease_timeout_ms = lease_timeout * 1000,
			   .lease_target_ms = lease_target_ms,
			   .max_failures = (unsigned)max_failures,
			   .max_unfinished_jobs = (uint64_t)max_unfinished,
			   .max_jobs_in_memory = (uint64_t)max_in_memory,
			   .max_speculative = (uint64_t)max_spec },
		.http = { (unsigned)request_timeout, connections,
			  *tls_cert ? buf_str(&cert) : NULL, *tls_key ? buf_str(&key) : NULL },
		.users = users,
		.retention_ms = retention_ms,
	};
	if (service_start(&cfg, &srv, err, sizeof err)) {
		fprintf(stderr, "tally-server: %s\n", err);
		return 1;
	}
	/* The port line is what tests and scripts read to find a server started on port 0. */
	printf("listening on %s:%u\n", host, service_port(srv));
	fflush(stdout);

	while (!sigwait(&sigs, &sig) && sig == SIGHUP)
		users_reload(srv, users_file, client_token, worker_token);
	log_info("msg=stopping signal=%d", sig);
	service_stop(srv);
	buf_release(&cert);
	buf_release(&key);
	return 0;
}
