/* The tally-worker program: reads its options and runs the pull loop until SIGTERM or SIGINT.
 * worker/main.c calls it; so does the test double tests/doubles/liar.c, with a tamper hook. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "client.h"
#include "exec.h"
#include "job.h"
#include "kernel.h"
#include "log.h"
#include "loop.h"
#include "opt.h"
#include "token.h"
#include "worker.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

int worker_main(int argc, char **argv, const struct loop_tamper *tamper)
{
	const char *server = "http://127.0.0.1:8080", *name = NULL, *level = "info", *format = "logfmt";
	const char *token_file = "", *cacert = "", *kernel_dir = "";
	struct opt_list allow = { 0 }, env = { 0 };
	struct exec_policy policy = { 0 };
	int64_t threads = sysconf(_SC_NPROCESSORS_ONLN), wait_s = 30, idle_exit_s = 0;
	int64_t exec_idle_s = 30, exec_max_rss = 0;
	const struct opt opts[] = {
		{ "server", "TALLY_SERVER", OPT_STR, &server, 0, 0, "coordinator URL" },
		{ "threads", "TALLY_THREADS", OPT_INT, &threads, 1, 1024,
		  "compute threads (default: online CPUs)" },
		{ "name", "TALLY_WORKER_NAME", OPT_STR, &name, 0, 0,
		  "worker name (default: hostname-pid)" },
		{ "wait", "TALLY_WAIT", OPT_INT, &wait_s, 1, 60, "long-poll seconds per request" },
		{ "idle-exit", "TALLY_IDLE_EXIT", OPT_INT, &idle_exit_s, 0, 31536000,
		  "exit (0) after this many seconds without a lease, counted from the start or "
		  "the last lease's end; 0: never" },
		{ "token-file", "TALLY_WORKER_TOKEN_FILE", OPT_STR, &token_file, 0, 0,
		  "file holding the worker token; or set TALLY_WORKER_TOKEN" },
		{ "cacert", "TALLY_CACERT", OPT_STR, &cacert, 0, 0,
		  "PEM file of the CA to trust for an https:// --server" },
		{ "kernel-dir", "TALLY_KERNEL_DIR", OPT_STR, &kernel_dir, 0, 0,
		  "directory of kernel plug-ins (*.so) to load and offer" },
		{ "allow-exec", "TALLY_ALLOW_EXEC", OPT_LIST, &allow, 0, 0,
		  "a program, or a directory of programs, that kernel exec may run (repeatable; "
		  "':' joins several); none: exec is off" },
		{ "exec-env", "TALLY_EXEC_ENV", OPT_LIST, &env, 0, 0,
		  "a variable passed on to exec's programs, as set at start; not TALLY_* "
		  "(repeatable; ':' joins several)" },
		{ "exec-idle", "TALLY_EXEC_IDLE", OPT_INT, &exec_idle_s, 0, 31536000,
		  "stop a resident exec program after this many seconds without a batch; 0: "
		  "never (default 30)" },
		{ "exec-max-rss", "TALLY_EXEC_MAX_RSS", OPT_INT, &exec_max_rss, 0, 16777216,
		  "restart a resident exec program whose resident set passes this many MiB "
		  "(default: no limit)" },
		{ "log-level", "TALLY_LOG_LEVEL", OPT_STR, &level, 0, 0,
		  "debug, info, warn or error" },
		{ "log-format", "TALLY_LOG_FORMAT", OPT_STR, &format, 0, 0,
		  "logfmt or json (one object per line)" },
	};
	struct sigaction sa;
	char host[64], defname[96], token[TOKEN_MAX], err[512];
	int rc;

	if (threads < 1)
		threads = 1;
	rc = opt_parse(opts, sizeof opts / sizeof opts[0], argc, argv, "tally-worker",
		       "A tally worker: pulls leases of batches from a tally-server, computes them "
		       "on --threads threads and posts the counts back.");
	if (rc)
		return rc == 1 ? 0 : 2;
	if (log_configure("tally-worker", level, format))
		return 2;
	if (!name) {
		if (gethostname(host, sizeof host))
			snprintf(host, sizeof host, "worker");
		host[40] = '\0'; /* leaves room for "-pid" within the 64 allowed */
		snprintf(defname, sizeof defname, "%s-%ld", host, (long)getpid());
		name = defname;
	}
	if (!*name || strlen(name) >= WORKER_NAME_MAX ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-") !=
		    strlen(name)) {
		fprintf(stderr, "tally-worker: --name: 1 to %d of letters, digits and ._:@-, not '%s'\n",
			WORKER_NAME_MAX - 1, name);
		return 2;
	}
	if (*kernel_dir && kernel_load_dir(kernel_dir, err, sizeof err)) {
		fprintf(stderr, "tally-worker: --kernel-dir: %s\n", err);
		return 2;
	}
	for (size_t i = 0; i < allow.n; i++) {
		if (exec_policy_allow(&policy, allow.v[i], err, sizeof err)) {
			fprintf(stderr, "tally-worker: %s\n", err);
			exec_policy_free(&policy);
			return 2;
		}
	}
	for (size_t i = 0; i < env.n; i++) {
		if (exec_policy_env(&policy, env.v[i], err, sizeof err)) {
			fprintf(stderr, "tally-worker: %s\n", err);
			exec_policy_free(&policy);
			return 2;
		}
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (client_global_init()) {
		fprintf(stderr, "tally-worker: cannot initialise the HTTP client\n");
		return 1;
	}
	if (token_load(getenv("TALLY_WORKER_TOKEN"), token_file, token, err, sizeof err)) {
		fprintf(stderr, "tally-worker: %s\n", err);
		return 2;
	}
	struct loop_config cfg = { .server = server, .name = name, .threads = (int)threads,
				   .wait_s = (int)wait_s, .idle_exit_s = idle_exit_s,
				   .token = token, .cacert = cacert,
				   .exec = &policy, .exec_idle_s = exec_idle_s,
				   .exec_max_rss_mib = exec_max_rss, .tamper = tamper };
	rc = loop_run(&cfg, &stop_flag);
	exec_policy_free(&policy);
	client_global_cleanup();
	return rc;
}
