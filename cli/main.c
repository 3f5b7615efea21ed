/* tally: the command line. `tally run pi --samples 1e10` computes on this machine (an embedded
 * coordinator and worker, cli/local.c) unless TALLY_SERVER names a cluster's coordinator, where
 * it submits and waits instead; submit, status, wait, list, cancel, extend and delete talk to
 * TALLY_SERVER.
 * Exit codes: see cli/commands.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "client.h"
#include "commands.h"
#include "local.h"
#include "kernel.h"
#include "log.h"
#include "opt.h"
#include "token.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tally COMMAND [ARG] [OPTIONS]\n"
		"\n"
		"  run KERNEL --samples N    compute a job and wait for it: here when TALLY_SERVER\n"
		"                            is unset, on that coordinator's cluster when it is set\n"
		"  submit KERNEL --samples N submit a job; print its id\n"
		"  status ID                 one job\n"
		"  wait ID                   wait for a job, showing progress\n"
		"  list                      jobs, newest first (--state, --limit, --owner)\n"
		"  cancel ID                 cancel a job\n"
		"  extend ID --samples N     grow a job to N samples\n"
		"  delete ID                 delete a finished job and everything it owned\n"
		"\n"
		"Kernels: pi, count, exec (--params '{\"argv\": [...]}', on workers that allow\n"
		"it), and the plug-ins of the cluster's workers (docs/kernels.md). --target-stderr\n"
		"stops a job early, at the same batch every time. `tally COMMAND --help` lists a\n"
		"command's options.\n"
		"Environment: TALLY_SERVER (coordinator URL), TALLY_TOKEN (its client token).\n");
}

int main(int argc, char **argv)
{
	const char *server = "", *token_file = "", *cacert = "", *state = NULL, *limit = "50";
	const char *owner = NULL;
	const char *cmd, *arg = NULL;
	struct cli_spec spec = { 0 };
	int64_t threads = sysconf(_SC_NPROCESSORS_ONLN);
	int json = 0, run, submit, rc, first = 2;
	char token[TOKEN_MAX], err[512], prog[32];
	struct sigaction sa;
	struct local *local = NULL;
	struct cli c = { 0 };
	const struct opt common_opts[] = {
		{ "server", "TALLY_SERVER", OPT_STR, &server, 0, 0,
		  "coordinator URL (run: unset computes on this machine)" },
		{ "token-file", "TALLY_TOKEN_FILE", OPT_STR, &token_file, 0, 0,
		  "file holding the client token; or set TALLY_TOKEN" },
		{ "cacert", "TALLY_CACERT", OPT_STR, &cacert, 0, 0,
		  "PEM file of the CA to trust for an https:// server" },
		{ "json", NULL, OPT_BOOL, &json, 0, 0, "print the coordinator's JSON" },
		{ "samples", NULL, OPT_STR, &spec.samples, 0, 0, "samples in the job (1e10 is fine)" },
		{ "batch-size", NULL, OPT_STR, &spec.batch_size, 0, 0, "samples per batch" },
		{ "seed", NULL, OPT_STR, &spec.seed, 0, 0, "the job's seed (default: random)" },
		{ "verify", NULL, OPT_STR, &spec.verify, 0, 0,
		  "fraction of leases computed again by another worker" },
		{ "params", NULL, OPT_STR, &spec.params, 0, 0,
		  "the kernel's params, a JSON object" },
		{ "target-stderr", NULL, OPT_STR, &spec.target_stderr, 0, 0,
		  "stop once the result's standard error is this small" },
		{ "priority", NULL, OPT_STR, &spec.priority, 0, 0,
		  "the job's priority, -100 to 100 (default 0)" },
		{ "threads", "TALLY_THREADS", OPT_INT, &threads, 1, 1024,
		  "run without TALLY_SERVER: compute threads (default: online CPUs)" },
		{ "state", NULL, OPT_STR, &state, 0, 0, "list: only jobs in this state" },
		{ "limit", NULL, OPT_STR, &limit, 0, 0, "list: at most this many jobs (default 50)" },
		{ "owner", NULL, OPT_STR, &owner, 0, 0,
		  "list: only this user's jobs (an admin's filter)" },
	};

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("tally %s\n", TALLY_VERSION);
		return 0;
	}
	cmd = argv[1];
	run = !strcmp(cmd, "run");
	submit = !strcmp(cmd, "submit");
	if (!run && !submit && strcmp(cmd, "status") && strcmp(cmd, "wait") &&
	    strcmp(cmd, "list") && strcmp(cmd, "cancel") && strcmp(cmd, "extend") && strcmp(cmd, "delete")) {
		fprintf(stderr, "tally: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	if (argc > 2 && strncmp(argv[2], "--", 2)) { /* the kernel or the job id */
		arg = argv[2];
		first = 3;
	}
	snprintf(prog, sizeof prog, "tally %s", cmd);
	/* opt_parse reads from argv[1]: hand it the options with the command before them. */
	argv[first - 1] = prog;
	rc = opt_parse(common_opts, sizeof common_opts / sizeof common_opts[0], argc - first + 1,
		       argv + first - 1, prog, "The tally command line: run jobs here or on a cluster.");
	if (rc)
		return rc == 1 ? 0 : 2;
	if ((run || submit) && !arg) {
		fprintf(stderr, "%s: which kernel? (pi, count, exec, a plug-in)\n", prog);
		return 2;
	}
	if (!run && !submit && strcmp(cmd, "list") && !arg) {
		fprintf(stderr, "%s: which job? (its id)\n", prog);
		return 2;
	}
	spec.kernel = arg;
	if (token_load(getenv("TALLY_TOKEN"), token_file, token, err, sizeof err)) {
		fprintf(stderr, "tally: %s\n", err);
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (client_global_init()) {
		fprintf(stderr, "%s: cannot initialise the HTTP client\n", prog);
		return 1;
	}
	if (!*server) {
		if (!run) {
			fprintf(stderr, "%s: set TALLY_SERVER (or --server) to the coordinator's URL\n",
				prog);
			client_global_cleanup();
			return 2;
		}
		if (run && (!kernel_find(arg) || !strcmp(arg, "exec"))) {
			/* The embedded worker runs the built-in kernels only. */
			fprintf(stderr, "%s: kernel '%s' runs on a cluster's workers only (set "
					"TALLY_SERVER); here: pi, count\n", prog, arg);
			client_global_cleanup();
			return 2;
		}
		log_set_level(LOG_WARN); /* the embedded coordinator's and worker's chatter */
		if (!(local = local_start((int)threads, &server, err, sizeof err))) {
			fprintf(stderr, "tally: %s\n", err);
			client_global_cleanup();
			return 1;
		}
	}
	c.client = client_new(server, token, cacert, NULL);
	c.json = json;
	c.tty = isatty(STDOUT_FILENO);
	c.interrupt = &interrupted;
	if (!c.client)
		rc = 1;
	else if (run || submit)
		rc = cmd_submit(&c, &spec, run);
	else if (!strcmp(cmd, "status"))
		rc = cmd_status(&c, arg);
	else if (!strcmp(cmd, "wait"))
		rc = cmd_wait(&c, arg);
	else if (!strcmp(cmd, "list"))
		rc = cmd_list(&c, state, limit, owner);
	else if (!strcmp(cmd, "extend"))
		rc = cmd_extend(&c, arg, spec.samples);
	else if (!strcmp(cmd, "delete"))
		rc = cmd_delete(&c, arg);
	else
		rc = cmd_cancel(&c, arg);
	client_free(c.client);
	local_stop(local);
	client_global_cleanup();
	return rc;
}
