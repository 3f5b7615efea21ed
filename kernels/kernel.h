/* Kernels: the computations tally maps over batches. A kernel is a table entry (name, version,
 * count keys) with pure functions: run one batch, check counts against a lease, derive a result.
 * Built-in kernels and plug-ins (include/tally/kernel.h, loaded by kernel_load_dir) look alike
 * from here. No I/O in a kernel; the server and the worker both link this registry. */
#ifndef TALLY_KERNEL_H
#define TALLY_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"
#include "job.h"
#include "tally/kernel.h"

#define KERNEL_PLUGINS_MAX 64  /* plug-ins one process loads */

/* A kernel in this process. Built-in kernels (pi, count) have run; plug-ins have abi (their
 * table, include/tally/kernel.h); exec runs programs and lives in the worker (worker/exec.c);
 * a kernel known only by name (a plug-in the coordinator lacks, named by a job) has neither. */
struct kernel {
	const char *name;
	unsigned version;    /* 0: unknown here (a kernel known by name only) */
	size_t nkeys;        /* 0 when open */
	const char *const *keys; /* count names, in the order of every counts array */
	int open;            /* batches name their own counts: exec, and kernels known by name only */
	int params;          /* takes params (exec, and plug-ins with open()) */
	/* Built-in kernels: adds the counts of one batch (samples [first, first + n) of the job) to
	 * out[nkeys]. Pure: depends on nothing but its arguments. stop may be NULL; when *stop
	 * becomes non-zero the kernel may return early, leaving out meaningless (the caller
	 * discards it): a batch can be as large as a job, and a worker must still answer a lost
	 * lease or SIGTERM. */
	void (*run)(uint64_t seed, uint64_t batch, uint64_t first, uint64_t n, const int *stop,
		    uint64_t *out);
	/* Checks counts summed over a lease of `samples` samples. Returns NULL when they can be
	 * right, else a static message naming the problem. NULL: no check. */
	const char *(*check)(const uint64_t *counts, uint64_t samples);
	/* Built-in kernels: returns a new reference to the result object for the given job
	 * counts, or NULL when none can be derived yet (or out of memory). */
	json_t *(*result)(const uint64_t *counts);
	/* Built-in kernels with an estimate: sets *out to the standard error of the result of the
	 * given job counts and returns 0, or returns -1 when there is none yet. NULL: none. */
	int (*stderr_of)(const uint64_t *counts, double *out);
	const struct tally_kernel *abi; /* a plug-in's table; NULL otherwise */
	char path[512];                 /* a plug-in's file; "" otherwise */
};

/* The built-in kernels: kernels/pi.c, kernels/count.c and kernels/execspec.c. */
extern const struct kernel kernel_pi;
extern const struct kernel kernel_count;
extern const struct kernel kernel_exec;

/* Returns the kernel called name that has code here (built in or a loaded plug-in; exec too),
 * or NULL. Kernels are never freed: the pointer stays valid. */
const struct kernel *kernel_find(const char *name);
/* Kernels known by name only (a job for workers' plug-ins the coordinator lacks: open keys,
 * version 0) live while held: whoever keeps one (a job in the coordinator's memory; its leases
 * borrow its kernel) holds it, and the last drop frees it. So the names of refused, finished
 * and deleted jobs leave nothing behind, and there are never more names than jobs in memory.
 * Thread-safe.
 *
 * Returns the kernel called name: one with code here, else one known by name only, made on
 * first use, with a hold the caller drops. NULL when the name is not a kernel name, or out of
 * memory. */
const struct kernel *kernel_named(const char *name);
/* Returns the kernel called name that has code here or is held now, or NULL; takes no hold. */
const struct kernel *kernel_known(const char *name);
/* Takes one more hold on k, or drops one (freeing it with the last). No-ops for a kernel with
 * code here, the placeholder and NULL. */
void kernel_hold(const struct kernel *k);
void kernel_drop(const struct kernel *k);
/* Returns how many kernels known by name only are held. */
size_t kernel_named_count(void);
/* Returns the kernel a stored job or lease names: kernel_known(name), else the placeholder (a
 * name that is no kernel now), without a hold: reading the store never makes names. NULL when
 * name is not a kernel name. */
const struct kernel *kernel_stored(const char *name);
/* Returns a stand-in for a kernel with no code here: a submitted job's before it is in memory,
 * or a stored job's whose name is no kernel now. Its name is the spec's kernel_name. */
const struct kernel *kernel_placeholder(void);
/* Returns the name of spec's kernel: kernel_name when set (always for the placeholder),
 * else kernel->name. */
const char *kernel_name_of(const struct job_spec *spec);
/* Returns the i-th kernel with code here (NULL past the end): built-in ones first. exec is not
 * listed: a worker offers it only when allowed to run programs. */
const struct kernel *kernel_at(size_t i);
/* Returns 1 when offer (a worker's "name" or "name@version") is of kernel name, and sets
 * *version to the version it says (0: none). */
int kernel_offer_is(const char *offer, const char *name, unsigned *version);
/* Returns 1 when name is a kernel name: 1 to 31 of [a-z0-9_-]. */
int kernel_name_ok(const char *name);
/* Loads every *.so in dir as a plug-in (in name order). Call before starting threads. Returns
 * 0, or -1 with a message in err (a file that is no plug-in, a wrong ABI, bad keys, a name
 * taken twice...). */
int kernel_load_dir(const char *dir, char *err, size_t errlen);

/* What kernel_params_check() refused params for: the HTTP layer answers unknown_field for a
 * member the kernel does not take, invalid_field for the rest. */
enum kernel_params_fault {
	KERNEL_PARAMS_INVALID, /* not an object, too long, or a value the kernel refuses */
	KERNEL_PARAMS_UNKNOWN, /* a member the kernel does not take */
};
/* Checks a job's params (an object, or NULL for none) for kernel k and writes their compact
 * JSON text into out. A kernel with open() checks them by opening and closing a state (its
 * refusals are KERNEL_PARAMS_INVALID: the ABI does not say which kind they are); exec checks its
 * argv and timeout; a kernel known by name only takes any object. Returns TALLY_OK, TALLY_EINVAL
 * with *fault set and a message naming the field in err, or TALLY_ENOMEM. */
TALLY_WUR enum tally_err kernel_params_check(const struct kernel *k, const json_t *params,
					     char *out, size_t outlen,
					     enum kernel_params_fault *fault, char *err,
					     size_t errlen);
/* Opens a plug-in's per-job state from params text (a no-op for other kernels: *state = NULL).
 * Returns 0, or -1 with a message in err. */
int kernel_open(const struct kernel *k, const char *params, void **state, char *err,
		size_t errlen);
void kernel_close(const struct kernel *k, void *state);
/* Runs one batch of a kernel with code here (not exec), adding to out[nkeys]. Returns 0, or -1
 * with a message in err. */
int kernel_run_batch(const struct kernel *k, void *state, uint64_t seed, uint64_t batch,
		     uint64_t first, uint64_t n, const int *stop, uint64_t *out, char *err,
		     size_t errlen);
/* The check of counts over a lease (named by keys, NULL: in k's order): NULL when they can be
 * right (or k has no check). */
const char *kernel_check(const struct kernel *k, const struct count_keys *keys,
			 const uint64_t *counts, uint64_t samples);
/* Returns a new reference to the result of a job's counts (named by keys, NULL: in k's order),
 * or NULL when k derives none (an open kernel, or no samples yet). A job's names may be in
 * another order than k's when they were learnt from counts before the plug-in was loaded. */
json_t *kernel_result(const struct kernel *k, const struct count_keys *keys,
		      const uint64_t *counts);
/* Sets *out to the standard error of the result of a job's counts (named by keys, NULL: in k's
 * order), the result's "stderr", and returns 0; returns -1 when k derives no result with one
 * here (or none yet). For early stopping: callers get a number, not JSON. */
int kernel_stderr(const struct kernel *k, const struct count_keys *keys, const uint64_t *counts,
		  double *out);
/* Returns 1 when k derives results with a stderr here, for target_stderr: pi, and a plug-in
 * whose result() gives one for some made-up counts (a plug-in cannot say so otherwise); 0 for
 * count (a result, no stderr), exec, a plug-in without result() and a kernel known by name
 * only. Can't fail. */
int kernel_has_stderr(const struct kernel *k);
/* Fills keys with k's fixed count names (none for an open kernel). */
void kernel_keys(const struct kernel *k, struct count_keys *keys);
/* Returns 1 when name is a count name: 1 to 31 of [a-z0-9_], not starting with a digit. */
int kernel_key_ok(const char *name);
/* Parses keys from their stored form (names joined by newlines) into out. Returns 0, or -1. */
int kernel_keys_parse(const char *text, struct count_keys *out);
/* Writes keys in their stored form into out. */
void kernel_keys_format(const struct count_keys *keys, char *out, size_t outlen);

#endif
