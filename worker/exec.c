/* Kernel exec: running a job's program for a batch, under the worker's allowlist. */
#define _GNU_SOURCE /* pipe2(), realpath() */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "counts.h"
#include "exec.h"
#include "timefmt.h"

#define EXEC_POLL_MS 50 /* how often a running program's worker looks at the stop flag */

/* Steps through a ':'-separated list: sets *part and *len to its next non-empty element and
 * returns 1, or returns 0 at its end. */
static int next_part(const char **list, const char **part, size_t *len)
{
	while (**list == ':')
		(*list)++;
	if (!**list)
		return 0;
	*part = *list;
	*len = strcspn(*list, ":");
	*list += *len;
	return 1;
}

int exec_policy_allow(struct exec_policy *p, const char *path, char *err, size_t errlen)
{
	char one[PATH_MAX], real[PATH_MAX];
	const char *part;
	size_t len;

	while (next_part(&path, &part, &len)) {
		if (len >= sizeof one) {
			snprintf(err, errlen, "--allow-exec: a path longer than %zu bytes",
				 sizeof one - 1);
			return -1;
		}
		memcpy(one, part, len);
		one[len] = '\0';
		if (!realpath(one, real)) {
			snprintf(err, errlen, "--allow-exec %s: %s", one, strerror(errno));
			return -1;
		}
		if (p->nallow == EXEC_ALLOW_MAX || !(p->allow[p->nallow] = strdup(real))) {
			snprintf(err, errlen, "--allow-exec: at most %d paths", EXEC_ALLOW_MAX);
			return -1;
		}
		p->nallow++;
	}
	return 0;
}

int exec_policy_env(struct exec_policy *p, const char *names, char *err, size_t errlen)
{
	char name[EXEC_ENV_NAME_MAX + 1];
	const char *part, *value;
	size_t len;

	while (next_part(&names, &part, &len)) {
		size_t ok = strspn(part, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
		if (ok < len || (part[0] >= '0' && part[0] <= '9') || len > EXEC_ENV_NAME_MAX) {
			snprintf(err, errlen, "--exec-env: '%.*s' is not a variable name (1 to %d of "
				 "A-Z, a-z, 0-9 and _, not a digit first)", (int)(len < 64 ? len : 64),
				 part, EXEC_ENV_NAME_MAX);
			return -1;
		}
		if (len >= 6 && !memcmp(part, "TALLY_", 6)) {
			snprintf(err, errlen, "--exec-env: '%.*s': TALLY_* variables are the batch's own, "
				 "set by the worker for each batch; they cannot be passed through",
				 (int)len, part);
			return -1;
		}
		memcpy(name, part, len);
		name[len] = '\0';
		if (!(value = getenv(name)))
			continue; /* unset: nothing to pass */
		size_t size = len + 1 + strlen(value) + 1; /* "NAME=value" and its NUL */
		if (size - len - 2 > EXEC_ENV_VALUE_MAX) {
			snprintf(err, errlen, "--exec-env: %s: its value is %zu bytes, more than %d",
				 name, size - len - 2, EXEC_ENV_VALUE_MAX);
			return -1;
		}
		if (p->nenv == EXEC_ENV_MAX) {
			snprintf(err, errlen, "--exec-env: at most %d names", EXEC_ENV_MAX);
			return -1;
		}
		if (!(p->env[p->nenv] = malloc(size))) {
			snprintf(err, errlen, "--exec-env: out of memory");
			return -1;
		}
		snprintf(p->env[p->nenv++], size, "%s=%s", name, value);
	}
	return 0;
}

void exec_policy_free(struct exec_policy *p)
{
	for (size_t i = 0; i < p->nallow; i++)
		free(p->allow[i]);
	for (size_t i = 0; i < p->nenv; i++)
		free(p->env[i]);
	memset(p, 0, sizeof *p);
}

/* Returns 1 when the canonical path real is an allowed program or lies in an allowed directory. */
static int exec_allowed(const struct exec_policy *p, const char *real)
{
	for (size_t i = 0; i < p->nallow; i++) {
		size_t len = strlen(p->allow[i]);
		if (!strcmp(real, p->allow[i]))
			return 1;
		if (!strncmp(real, p->allow[i], len) &&
		    (real[len] == '/' || (len == 1 && p->allow[i][0] == '/')))
			return 1;
	}
	return 0;
}

/* Finds a program name through the worker's PATH, into out. Returns 0, or -1. */
static int exec_which(const char *name, char *out, size_t outlen)
{
	const char *path = getenv("PATH"), *dir;
	size_t len;

	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (next_part(&path, &dir, &len))
		if ((size_t)snprintf(out, outlen, "%.*s/%s", (int)len, dir, name) < outlen &&
		    !access(out, X_OK))
			return 0;
	return -1;
}

int exec_job_open(struct exec_job *j, const struct exec_policy *p, const char *params,
		  const char *job_id, char *err, size_t errlen)
{
	char found[PATH_MAX];
	const char *prog;
	json_t *obj = json_loads(params, 0, NULL);
	struct stat st;
	int rc = -1;

	memset(j, 0, sizeof *j);
	j->policy = p;
	snprintf(j->job_id, sizeof j->job_id, "%s", job_id);
	if (exec_spec_parse(obj, &j->spec, NULL, err, errlen))
		goto done;
	rc = -2; /* from here on, the worker's own reasons */
	prog = j->spec.argv[0];
	if (!strchr(prog, '/')) {
		if (exec_which(prog, found, sizeof found)) {
			snprintf(err, errlen, "params.argv[0]: %.200s: not found in the worker's PATH",
				 prog);
			goto done;
		}
		prog = found;
	}
	if (!realpath(prog, j->path) || stat(j->path, &st) || !S_ISREG(st.st_mode) ||
	    access(j->path, X_OK)) {
		snprintf(err, errlen, "params.argv[0]: %.200s: not an executable file on this worker",
			 j->spec.argv[0]);
		goto done;
	}
	if (!exec_allowed(p, j->path)) {
		snprintf(err, errlen, "params.argv[0]: %.200s (%.200s) is not allowed on this worker "
				      "(its --allow-exec)", j->spec.argv[0], j->path);
		goto done;
	}
	rc = 0;
done:
	json_decref(obj);
	return rc;
}

void exec_tail_add(struct exec_tail *t, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (t->len < sizeof t->buf) {
			t->buf[(t->start + t->len++) % sizeof t->buf] = s[i];
		} else {
			t->buf[t->start] = s[i];
			t->start = (t->start + 1) % sizeof t->buf;
		}
	}
}

void exec_tail_text(const struct exec_tail *t, char *out, size_t outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < t->len && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)t->buf[(t->start + i) % sizeof t->buf];
		out[n++] = c < 0x20 || c >= 0x7f ? ' ' : (char)c; /* ASCII: valid JSON text */
	}
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/* What became of a run. */
struct run {
	char *out; /* stdout, NUL-terminated */
	size_t outlen;
	int over;      /* stdout passed EXEC_STDOUT_MAX */
	int timed_out; /* killed at the timeout */
	int stopped;   /* killed because *stop was set */
	int status;    /* waitpid's */
	struct exec_tail err;
};

void exec_envp(const struct exec_job *j, char *const *vars, size_t nvars, char **envp)
{
	size_t ne = 0;

	for (size_t i = 0; i < nvars; i++)
		envp[ne++] = vars[i];
	for (size_t i = 0; i < j->policy->nenv; i++) /* never over the batch's own */
		if (strncmp(j->policy->env[i], "TALLY_", 6))
			envp[ne++] = j->policy->env[i];
	envp[ne] = NULL;
}

void exec_child(const struct exec_job *j, char **envp, int in, int out, int errfd, pid_t parent)
{
	sigset_t none;
	struct sigaction dfl;

	/* Killed with the thread that forked it (resident.c forks from a thread that lasts as
	 * long as the worker), so that a worker killed with -9 leaves no program behind. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(126);
	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the compute threads block every signal */
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL); /* the worker ignores it; exec would keep that */
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(126);
	/* Nothing else of the worker's: its sockets (libcurl's are not close-on-exec) least. */
	if (close_range(3, ~0U, 0))
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	execve(j->path, j->spec.argv, envp);
	_exit(127);
}

/* Runs the program to its end (or kills it), filling *r. Returns 0, or -1 when it could not be
 * started (err says why). */
static int exec_run(const struct exec_job *j, char **envp, const int *stop, struct run *r,
		    char *err, size_t errlen)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, in = -1, rc = -1, open_fds = 2;
	int64_t deadline = timefmt_mono_ms() + (int64_t)(j->spec.timeout_s * 1000.0);
	pid_t pid = -1, parent = getpid();
	char chunk[4096];

	if (!(r->out = malloc(EXEC_STDOUT_MAX + 1)) || pipe2(po, O_CLOEXEC) ||
	    pipe2(pe, O_CLOEXEC) || (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
	    (pid = fork()) < 0) {
		snprintf(err, errlen, "worker: cannot start %.200s: %s", j->path, strerror(errno));
		goto done;
	}
	if (pid == 0)
		exec_child(j, envp, in, po[1], pe[1], parent);
	setpgid(pid, pid); /* as the child does: whichever runs first */
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	while (open_fds) {
		struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		int64_t now = timefmt_mono_ms();
		if (__atomic_load_n(stop, __ATOMIC_RELAXED) || now >= deadline || r->over) {
			r->stopped = __atomic_load_n(stop, __ATOMIC_RELAXED);
			r->timed_out = !r->stopped && !r->over;
			break;
		}
		int wait = deadline - now < EXEC_POLL_MS ? (int)(deadline - now) : EXEC_POLL_MS;
		if (poll(fds, 2, wait) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(fds[i].fd, chunk, sizeof chunk);
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				close(fds[i].fd);
				*(i ? &pe[0] : &po[0]) = -1;
				open_fds--;
			} else if (i == 1) {
				exec_tail_add(&r->err, chunk, (size_t)n);
			} else if (r->outlen + (size_t)n > EXEC_STDOUT_MAX) {
				r->over = 1;
			} else {
				memcpy(r->out + r->outlen, chunk, (size_t)n);
				r->outlen += (size_t)n;
			}
		}
	}
	/* Its output is closed (or it is being killed): wait for it to exit, within the
	 * deadline, leaving it a zombie so that its process group cannot be reused before the
	 * group is killed below (a program's children die with it). */
	while (!r->timed_out && !r->stopped && !r->over) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (!waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == pid)
			break;
		if (__atomic_load_n(stop, __ATOMIC_RELAXED))
			r->stopped = 1;
		else if (timefmt_mono_ms() >= deadline)
			r->timed_out = 1;
		else
			poll(NULL, 0, EXEC_POLL_MS);
	}
	r->out[r->outlen] = '\0';
	rc = 0;
done:
	if (pid > 0) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
			;
	}
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	if (in >= 0)
		close(in);
	return rc;
}

int exec_ended(int status, char *why, size_t whylen)
{
	if (WIFSIGNALED(status))
		snprintf(why, whylen, "killed by signal %d", WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		snprintf(why, whylen, "could not be executed (exit status 127)");
	else
		snprintf(why, whylen, "exited with status %d", WEXITSTATUS(status));
	return WIFSIGNALED(status) || !WIFEXITED(status) || WEXITSTATUS(status);
}

int exec_answer(const char *text, size_t len, struct count_keys *keys, const uint64_t *counts,
		uint64_t *got, char *why, size_t whylen)
{
	struct counts printed;
	json_error_t je;
	json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	int rc = 0;

	if (!json_is_object(obj)) {
		snprintf(why, whylen, "%s", obj ? "not an object" : je.text);
		rc = 1;
	} else if (counts_decode(obj, &printed) ||
		   counts_match(&printed, kernel_find("exec"), keys, got, why, whylen)) {
		rc = 2;
	} else {
		for (size_t i = 0; i < keys->n; i++) {
			if (got[i] > (uint64_t)INT64_MAX - counts[i]) {
				snprintf(why, whylen, "counts whose sum passes 2^63-1");
				rc = 2;
				break;
			}
		}
	}
	json_decref(obj);
	return rc;
}

int exec_batch(const struct exec_job *j, uint64_t seed, uint64_t batch, uint64_t first,
	       uint64_t n, const int *stop, struct count_keys *keys, uint64_t *counts, char *err,
	       size_t errlen)
{
	char vars[5][64], why[256] = "", detail[200], tail[EXEC_STDERR_TAIL + 1];
	char *names[5], *envp[5 + EXEC_ENV_MAX + 1];
	uint64_t got[KERNEL_MAX_KEYS];
	struct run r;
	int rc = -1;

	memset(&r, 0, sizeof r);
	snprintf(vars[0], sizeof vars[0], "TALLY_JOB_ID=%s", j->job_id);
	snprintf(vars[1], sizeof vars[1], "TALLY_SEED=%llu", (unsigned long long)seed);
	snprintf(vars[2], sizeof vars[2], "TALLY_BATCH=%llu", (unsigned long long)batch);
	snprintf(vars[3], sizeof vars[3], "TALLY_FIRST_SAMPLE=%llu", (unsigned long long)first);
	snprintf(vars[4], sizeof vars[4], "TALLY_SAMPLES=%llu", (unsigned long long)n);
	for (int i = 0; i < 5; i++)
		names[i] = vars[i];
	exec_envp(j, names, 5, envp);

	if (exec_run(j, envp, stop, &r, err, errlen))
		goto done;
	if (r.stopped) {
		snprintf(err, errlen, "worker: stopped");
		goto done;
	}
	if (r.timed_out)
		snprintf(why, sizeof why, "timed out after %gs (its process group was killed)",
			 j->spec.timeout_s);
	else if (r.over)
		snprintf(why, sizeof why, "printed more than %d bytes on stdout", EXEC_STDOUT_MAX);
	else if (!exec_ended(r.status, why, sizeof why)) {
		why[0] = '\0'; /* it exited 0: its output decides */
		switch (exec_answer(r.out, r.outlen, keys, counts, got, detail, sizeof detail)) {
		case 1:
			snprintf(why, sizeof why, "did not print one JSON object of counts on "
						  "stdout: %.120s", detail);
			break;
		case 2:
			snprintf(why, sizeof why, "printed %s", detail);
			break;
		}
	}
	if (why[0]) {
		exec_tail_text(&r.err, tail, sizeof tail);
		snprintf(err, errlen, "exec batch %llu: %.200s %s%s%s", (unsigned long long)batch,
			 j->spec.argv[0], why, tail[0] ? "; stderr: " : "", tail);
		goto done;
	}
	for (size_t i = 0; i < keys->n; i++)
		counts[i] += got[i];
	rc = 0;
done:
	free(r.out);
	return rc;
}
