/* The CLI's commands, over a coordinator's jobs API. Each returns the process exit status:
 * 0 done (for run and wait: the job succeeded), 1 the job failed or was cancelled, or the
 * coordinator refused or could not be reached, 2 bad usage. */
#ifndef TALLY_COMMANDS_H
#define TALLY_COMMANDS_H

#include <signal.h>
#include "client.h"

struct cli {
	struct client *client;
	int json;                        /* print the coordinator's JSON, one object per line */
	int tty;                         /* stdout is a terminal: draw the progress bar */
	volatile sig_atomic_t *interrupt; /* set by SIGINT */
};

/* What `run` and `submit` send, as given on the command line (NULL: not given). */
struct cli_spec {
	const char *kernel;
	const char *samples;
	const char *batch_size;
	const char *seed;
	const char *verify;
	const char *params;        /* a JSON object */
	const char *target_stderr;
	const char *priority;      /* an integer, WIRE_PRIORITY_MIN..WIRE_PRIORITY_MAX */
};

int cmd_submit(struct cli *c, const struct cli_spec *spec, int wait);
int cmd_status(struct cli *c, const char *id);
int cmd_wait(struct cli *c, const char *id);
/* Lists jobs, newest first: only those in state and of owner when they are not NULL. */
int cmd_list(struct cli *c, const char *state, const char *limit, const char *owner);
int cmd_cancel(struct cli *c, const char *id);
/* DELETEs a finished job: 0 on 204, 1 with the server's message otherwise, 2 for a bad id. */
int cmd_delete(struct cli *c, const char *id);
int cmd_extend(struct cli *c, const char *id, const char *samples);

#endif
