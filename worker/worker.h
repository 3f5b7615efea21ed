/* The tally-worker program, as a function: its options, signals and the pull loop. */
#ifndef TALLY_WORKER_H
#define TALLY_WORKER_H

#include "loop.h"

/* Parses argv (see --help), then runs the pull loop until SIGTERM or SIGINT. tamper is NULL but
 * in test doubles. Returns the exit status: 0 clean stop, 1 cannot start, 2 bad usage, 3 the
 * coordinator quarantined this worker. */
int worker_main(int argc, char **argv, const struct loop_tamper *tamper);

#endif
