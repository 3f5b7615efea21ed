/* Kernel exec: a batch is one run of a program the job names, allowed by the worker's operator.
 * The program learns its batch from TALLY_* environment variables and prints one JSON object of
 * counts on stdout. No shell; a cleared environment; its own process group, killed whole on a
 * timeout or a stop. */
#ifndef TALLY_EXEC_H
#define TALLY_EXEC_H

#include <stdint.h>
#include <sys/types.h>
#include "execspec.h"
#include "kernel.h"

#define EXEC_ALLOW_MAX 32      /* allowlist entries */
#define EXEC_ENV_MAX 32        /* variables passed through */
#define EXEC_ENV_NAME_MAX 255  /* bytes of a passed variable's name */
#define EXEC_ENV_VALUE_MAX 65536 /* bytes of its value (exec takes up to 128 KiB a variable) */
#define EXEC_STDOUT_MAX 65536  /* bytes of a program's stdout: more fails the batch */
#define EXEC_STDERR_TAIL 512   /* bytes of its stderr kept for the failure's reason */

/* What the worker's operator allows; owned by the caller, read by every compute thread. */
struct exec_policy {
	char *allow[EXEC_ALLOW_MAX]; /* canonical paths: programs, or directories (no trailing /) */
	size_t nallow;
	/* Variables passed through, "NAME=value" as the worker's environment had them when
	 * exec_policy_env() read it (a name it lacked is left out). Never TALLY_*: those are the
	 * batch's own, and exec_batch() leaves out any that got here. */
	char *env[EXEC_ENV_MAX];
	size_t nenv;
};

/* Adds entries to the allowlist: path is one path, or several joined by ':'. Returns 0, or -1
 * with a message in err (a path that does not exist, too many). */
int exec_policy_allow(struct exec_policy *p, const char *path, char *err, size_t errlen);
/* Adds variables to pass through (one name, or several joined by ':'), read now from the
 * worker's environment. Returns 0, or -1 with a message in err: not a variable name, a TALLY_*
 * name (the batch's own), a value over EXEC_ENV_VALUE_MAX bytes, too many. */
int exec_policy_env(struct exec_policy *p, const char *names, char *err, size_t errlen);
void exec_policy_free(struct exec_policy *p);

/* A job's program, resolved against the policy. */
struct exec_job {
	const struct exec_policy *policy;
	struct exec_spec spec;
	char path[4096]; /* argv[0] resolved: what is executed */
	char job_id[24];
};

/* Reads params (JSON text) and resolves argv[0] (through the worker's PATH when it has no '/')
 * inside the allowlist. Returns 0; -1 with a message in err when the params are wrong (the
 * job's fault); -2 when the program is not on this worker, or not allowed here. */
int exec_job_open(struct exec_job *j, const struct exec_policy *p, const char *params,
		  const char *job_id, char *err, size_t errlen);

/* The tail of a program's stderr: its last EXEC_STDERR_TAIL bytes, in a ring. */
struct exec_tail {
	char buf[EXEC_STDERR_TAIL];
	size_t len, start;
};
void exec_tail_add(struct exec_tail *t, const char *s, size_t n);
/* Writes the tail, control characters as spaces, trimmed, into out. */
void exec_tail_text(const struct exec_tail *t, char *out, size_t outlen);

/* Fills envp with vars (nvars of them, "NAME=value") and then the policy's variables, never a
 * TALLY_* one over them; NULL-terminated. envp has room for nvars + EXEC_ENV_MAX + 1. */
void exec_envp(const struct exec_job *j, char *const *vars, size_t nvars, char **envp);

/* The child's side of fork(), async-signal-safe: its own process group, default signals, in, out
 * and errfd as 0, 1 and 2 and nothing else open, killed when the thread that forked it ends or
 * the worker (parent, its pid) dies; then j's program. Never returns. */
void exec_child(const struct exec_job *j, char **envp, int in, int out, int errfd,
		pid_t parent) __attribute__((noreturn));

/* Says how a program ended, from its wait status, into why: killed by a signal, could not be
 * executed (127), or exited with its status (0 too). Returns 1 when it failed, 0 for status 0. */
int exec_ended(int status, char *why, size_t whylen);

/* Reads a program's answer (text, len bytes) as counts under keys' names (adding those keys
 * lacks) into got, and checks that they can be added to counts. Returns 0; 1 when it is not one
 * JSON object (why: the parser's message); 2 when its counts are wrong (why says how). */
int exec_answer(const char *text, size_t len, struct count_keys *keys, const uint64_t *counts,
		uint64_t *got, char *why, size_t whylen);

/* Runs one batch: adds the program's counts to counts[], in the order of keys, adding names
 * keys does not have yet. Returns 0, or -1 with a message in err (the exit status or signal, a
 * timeout, bad or oversized output; with the tail of stderr). *stop set: kills the program and
 * returns -1. Thread-safe. */
int exec_batch(const struct exec_job *j, uint64_t seed, uint64_t batch, uint64_t first,
	       uint64_t n, const int *stop, struct count_keys *keys, uint64_t *counts, char *err,
	       size_t errlen);

#endif
