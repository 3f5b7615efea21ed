/* The params of kernel exec, which runs a program per batch, or keeps it running and feeds it
 * batches (resident): {"argv": [...], "timeout_s": n, "resident": false}. The coordinator checks
 * them at submit; the worker reads them from each lease. */
#ifndef TALLY_EXECSPEC_H
#define TALLY_EXECSPEC_H

#include <stddef.h>
#include <jansson.h>
#include "err.h"
#include "kernel.h"

#define EXEC_ARGS_MAX 64          /* argv entries */
#define EXEC_TIMEOUT_DEFAULT_S 60.0
#define EXEC_TIMEOUT_MAX_S 86400.0

struct exec_spec {
	size_t argc;
	char *argv[EXEC_ARGS_MAX + 1]; /* NULL-terminated; point into buf */
	double timeout_s; /* per batch */
	int resident;     /* started once per worker thread and fed a line per batch */
	char buf[KERNEL_PARAMS_MAX];
};

/* Reads params into out. Returns TALLY_OK, or TALLY_EINVAL with a message naming the field and,
 * when fault is not NULL, *fault set to KERNEL_PARAMS_UNKNOWN for a member exec does not take
 * (KERNEL_PARAMS_INVALID otherwise). */
TALLY_WUR enum tally_err exec_spec_parse(const json_t *params, struct exec_spec *out,
					 enum kernel_params_fault *fault, char *err,
					 size_t errlen);

#endif
