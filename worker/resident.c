/* Resident programs: started once, fed a line per batch, answered a line of counts. */
#define _GNU_SOURCE /* pipe2() */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include "resident.h"
#include "timefmt.h"

#define RESIDENT_POLL_MS 50  /* how often a waiting thread looks at the stop flag */
#define RESIDENT_SPIN_NS 50000 /* how long it reads without sleeping before it polls: a quick
				* program's answer comes sooner than a wakeup from poll() */

/* One program: a job's, on one compute thread. */
struct prog {
	char job_id[24];
	pid_t pid;        /* 0: none; else the leader of its own process group */
	int in, out, err; /* its stdin (written), stdout and stderr (read); non-blocking */
	int err_open;     /* its stderr has not reached its end */
	char *buf;        /* its answer so far: RESIDENT_LINE_MAX bytes, kept across programs */
	size_t len;
	int64_t used_ms;  /* its start, or the end of its last batch */
	int64_t rss_ms;   /* when its resident set was last looked at */
	uint64_t tick;    /* when it last ran a batch, in its slot's ticks (least recently used) */
	int busy;         /* in a batch: its thread's alone until the batch ends */
	struct exec_tail tail;
};

/* A compute thread's programs. The lock guards which programs there are and their busy flags: the
 * thread takes it to pick a program and to give it back, not while the program computes; the
 * main thread (resident_reap, during a lease too) only tries it, and leaves busy programs be. */
struct slot {
	pthread_mutex_t lock;
	struct prog prog[RESIDENT_JOBS_MAX];
	uint64_t tick;
};

/* A request to the thread that forks: programs are forked from one thread that lasts as long as
 * the worker, since a death signal (exec_child) fires when the forking *thread* ends, and compute
 * threads end with each lease. */
struct spawn {
	const struct exec_job *j;
	char **envp;
	int fd[3]; /* the child's stdin, stdout and stderr */
	pid_t pid;
	int errnum;
	int done;
};

struct resident {
	int nslots;
	int64_t idle_ms;
	int64_t max_rss; /* bytes; 0: no limit */
	struct slot *slot;
	pid_t self;
	pthread_t forker;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct spawn *req; /* the request the forker is to take, or NULL */
	int quit;
};

static void *forker_main(void *arg)
{
	struct resident *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->quit && !r->req)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->quit)
			break;
		struct spawn *q = r->req;
		q->pid = fork();
		if (q->pid == 0)
			exec_child(q->j, q->envp, q->fd[0], q->fd[1], q->fd[2], r->self);
		q->errnum = q->pid < 0 ? errno : 0;
		if (q->pid > 0)
			setpgid(q->pid, q->pid); /* as the child does: whichever runs first */
		q->done = 1;
		r->req = NULL;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Has the forker run q. Returns the child's pid, or -1 (errno set). */
static pid_t forker_spawn(struct resident *r, struct spawn *q)
{
	pthread_mutex_lock(&r->lock);
	while (r->req)
		pthread_cond_wait(&r->cond, &r->lock);
	r->req = q;
	pthread_cond_broadcast(&r->cond);
	while (!q->done)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	errno = q->errnum;
	return q->pid;
}

struct resident *resident_new(int nslots, int64_t idle_s, int64_t max_rss_mib)
{
	struct resident *r = calloc(1, sizeof *r);
	sigset_t all, old;
	int rc;

	if (!r || nslots < 1 || !(r->slot = calloc((size_t)nslots, sizeof *r->slot))) {
		free(r);
		return NULL;
	}
	r->nslots = nslots;
	for (int i = 0; i < nslots; i++)
		pthread_mutex_init(&r->slot[i].lock, NULL);
	r->idle_ms = idle_s * 1000;
	r->max_rss = max_rss_mib * 1024 * 1024;
	r->self = getpid();
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	sigfillset(&all); /* signals stay with the main thread */
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&r->forker, NULL, forker_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		for (int i = 0; i < nslots; i++)
			pthread_mutex_destroy(&r->slot[i].lock);
		free(r->slot);
		free(r);
		return NULL;
	}
	return r;
}

/* Reads what the program's stderr holds now into its tail. */
static void prog_drain_err(struct prog *p)
{
	char chunk[4096];
	ssize_t n;

	while (p->err_open) {
		n = read(p->err, chunk, sizeof chunk);
		if (n > 0)
			exec_tail_add(&p->tail, chunk, (size_t)n);
		else if (n == 0 || errno != EINTR)
			p->err_open = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
		if (n <= 0)
			break;
	}
}

/* Kills the program's process group and reaps it. Returns its wait status. */
static int prog_stop(struct prog *p)
{
	int status = 0;

	if (!p->pid)
		return 0;
	kill(-p->pid, SIGKILL);
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	prog_drain_err(p); /* what it wrote before it died: for the failure's reason */
	close(p->in);
	close(p->out);
	close(p->err);
	p->pid = 0;
	p->len = 0;
	p->job_id[0] = '\0';
	return status;
}

void resident_free(struct resident *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->nslots; i++) {
		for (int k = 0; k < RESIDENT_JOBS_MAX; k++) {
			prog_stop(&r->slot[i].prog[k]);
			free(r->slot[i].prog[k].buf);
		}
		pthread_mutex_destroy(&r->slot[i].lock);
	}
	pthread_mutex_lock(&r->lock);
	r->quit = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->forker, NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r->slot);
	free(r);
}

/* Starts j's program as p. Returns 0, or -1 with a message in err. */
static int prog_start(struct resident *r, struct prog *p, const struct exec_job *j, char *err,
		      size_t errlen)
{
	char job[64], resident[] = "TALLY_RESIDENT=1";
	char *vars[2] = { job, resident }, *envp[2 + EXEC_ENV_MAX + 1];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	struct spawn q = { 0 };
	pid_t pid = -1;

	/* Its batch lines quote the job id as it is. */
	if (j->job_id[strspn(j->job_id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
					 "TUVWXYZ._-")]) {
		snprintf(err, errlen, "worker: job id '%.23s' cannot be written in a batch line",
			 j->job_id);
		return -1;
	}
	snprintf(job, sizeof job, "TALLY_JOB_ID=%s", j->job_id);
	exec_envp(j, vars, 2, envp);
	if ((!p->buf && !(p->buf = malloc(RESIDENT_LINE_MAX))) || pipe2(in, O_CLOEXEC) ||
	    pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
		snprintf(err, errlen, "worker: cannot start %.200s: %s", j->path, strerror(errno));
		goto fail;
	}
	q = (struct spawn){ .j = j, .envp = envp, .fd = { in[0], out[1], errp[1] } };
	if ((pid = forker_spawn(r, &q)) < 0) {
		snprintf(err, errlen, "worker: cannot start %.200s: %s", j->path, strerror(errno));
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	memset(&p->tail, 0, sizeof p->tail);
	snprintf(p->job_id, sizeof p->job_id, "%s", j->job_id);
	p->pid = pid;
	p->in = in[1];
	p->out = out[0];
	p->err = errp[0];
	p->err_open = 1;
	p->len = 0;
	p->used_ms = p->rss_ms = timefmt_mono_ms();
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return -1;
}

/* The program's resident set in bytes (0 when it cannot be read). */
static int64_t prog_rss(const struct prog *p)
{
	char path[64], text[128];
	long long size = 0, rss = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/statm", (long)p->pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	if (sscanf(text, "%lld %lld", &size, &rss) != 2)
		return 0;
	return (int64_t)rss * sysconf(_SC_PAGESIZE);
}

/* Slot's program for job_id, or NULL. */
static struct prog *slot_find(struct slot *s, const char *job_id)
{
	for (int k = 0; k < RESIDENT_JOBS_MAX; k++)
		if (s->prog[k].pid && !strcmp(s->prog[k].job_id, job_id))
			return &s->prog[k];
	return NULL;
}

/* A place for a new program in s: a free one, or the least recently used, stopped. */
static struct prog *slot_take(struct slot *s)
{
	struct prog *lru = &s->prog[0];
	for (int k = 0; k < RESIDENT_JOBS_MAX; k++) {
		if (!s->prog[k].pid)
			return &s->prog[k];
		if (s->prog[k].tick < lru->tick)
			lru = &s->prog[k];
	}
	prog_stop(lru);
	return lru;
}

/* Why a batch failed, as the reason's middle part. */
enum fate { FATE_OK, FATE_EXITED, FATE_TIMEOUT, FATE_OVER, FATE_RSS, FATE_STOP, FATE_IO };

/* Waits up to RESIDENT_POLL_MS for fd to be ready for events, reading the program's stderr
 * meanwhile. Returns FATE_OK, or why the batch is over: stopped, its deadline passed, or the
 * program past --exec-max-rss (looked at every RESIDENT_RSS_EVERY_MS). */
static enum fate prog_wait(const struct resident *r, struct prog *p, int fd, short events,
			   int64_t deadline, const int *stop)
{
	struct pollfd fds[2] = { { fd, events, 0 }, { p->err_open ? p->err : -1, POLLIN, 0 } };
	int64_t now = timefmt_mono_ms();

	if (__atomic_load_n(stop, __ATOMIC_RELAXED))
		return FATE_STOP;
	if (now >= deadline)
		return FATE_TIMEOUT;
	if (r->max_rss && now - p->rss_ms >= RESIDENT_RSS_EVERY_MS) {
		p->rss_ms = now;
		if (prog_rss(p) > r->max_rss)
			return FATE_RSS;
	}
	poll(fds, 2, deadline - now < RESIDENT_POLL_MS ? (int)(deadline - now) : RESIDENT_POLL_MS);
	if (fds[1].revents)
		prog_drain_err(p);
	return FATE_OK;
}

/* Writes the batch line (len bytes). Returns FATE_OK or why it could not. */
static enum fate prog_write(const struct resident *r, struct prog *p, const char *line,
			    size_t len, int64_t deadline, const int *stop)
{
	enum fate fate = FATE_OK;

	while (len && fate == FATE_OK) {
		ssize_t n = write(p->in, line, len);
		if (n > 0) {
			line += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return FATE_EXITED; /* EPIPE: it is gone, or has closed its stdin */
		/* Its stdin is full: it does not read what it is sent. */
		fate = prog_wait(r, p, p->in, POLLOUT, deadline, stop);
	}
	return fate;
}

/* Reads until the program's answer is complete (a newline). Sets *end to the newline's offset. */
static enum fate prog_read(const struct resident *r, struct prog *p, int64_t deadline,
			   const int *stop, size_t *end)
{
	struct timespec t0, t;
	enum fate fate = FATE_OK;
	int spinning = 1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (fate == FATE_OK) {
		ssize_t n = read(p->out, p->buf + p->len, RESIDENT_LINE_MAX - p->len);
		if (n > 0) {
			char *nl = memchr(p->buf + p->len, '\n', (size_t)n);
			p->len += (size_t)n;
			if (nl) {
				*end = (size_t)(nl - p->buf);
				return FATE_OK;
			}
			if (p->len == RESIDENT_LINE_MAX)
				return FATE_OVER;
			continue;
		}
		if (n == 0)
			return FATE_EXITED;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return FATE_IO;
		if (spinning) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			spinning = (t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) <
				   RESIDENT_SPIN_NS;
			continue;
		}
		fate = prog_wait(r, p, p->out, POLLIN, deadline, stop);
	}
	return fate;
}

int resident_batch(struct resident *r, int slot, const struct exec_job *j, uint64_t seed,
		   uint64_t batch, uint64_t first, uint64_t n, const int *stop,
		   struct count_keys *keys, uint64_t *counts, char *err, size_t errlen)
{
	struct slot *s = &r->slot[slot];
	struct prog *p;
	uint64_t got[KERNEL_MAX_KEYS];
	char line[256], seedtext[32], why[256] = "", detail[200], tail[EXEC_STDERR_TAIL + 1];
	int64_t now = timefmt_mono_ms(), deadline = now + (int64_t)(j->spec.timeout_s * 1000.0);
	enum fate fate;
	size_t end = 0;
	int len, status;

	pthread_mutex_lock(&s->lock);
	p = slot_find(s, j->job_id);
	/* A program past its limit between batches is restarted; nothing has failed. */
	if (p && r->max_rss && now - p->rss_ms >= RESIDENT_RSS_EVERY_MS) {
		p->rss_ms = now;
		if (prog_rss(p) > r->max_rss)
			prog_stop(p), p = NULL;
	}
	if (!p && (prog_start(r, p = slot_take(s), j, err, errlen))) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	p->tick = ++s->tick;
	p->busy = 1;
	pthread_mutex_unlock(&s->lock);
	/* The seed as the lease gives it: a decimal string above 2^63-1 (seed.h). */
	snprintf(seedtext, sizeof seedtext, seed > (uint64_t)INT64_MAX ? "\"%llu\"" : "%llu",
		 (unsigned long long)seed);
	len = snprintf(line, sizeof line, "{\"job_id\":\"%s\",\"seed\":%s,\"batch\":%llu,"
		       "\"first_sample\":%llu,\"samples\":%llu}\n", j->job_id, seedtext,
		       (unsigned long long)batch, (unsigned long long)first, (unsigned long long)n);
	fate = prog_write(r, p, line, (size_t)len, deadline, stop);
	if (fate == FATE_OK)
		fate = prog_read(r, p, deadline, stop, &end);
	if (fate == FATE_OK) {
		if (end + 1 < p->len)
			snprintf(why, sizeof why, "answered more than one line for a batch");
		else
			switch (exec_answer(p->buf, end, keys, counts, got, detail, sizeof detail)) {
			case 1:
				snprintf(why, sizeof why, "answered a line that is not a JSON object "
							  "of counts: %.120s", detail);
				break;
			case 2:
				snprintf(why, sizeof why, "answered %s", detail);
				break;
			}
		p->len = 0;
	}
	pthread_mutex_lock(&s->lock);
	p->busy = 0;
	if (fate == FATE_OK && !why[0]) {
		for (size_t i = 0; i < keys->n; i++)
			counts[i] += got[i];
		p->used_ms = timefmt_mono_ms();
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	status = prog_stop(p);
	pthread_mutex_unlock(&s->lock);
	if (fate == FATE_STOP) {
		snprintf(err, errlen, "worker: stopped");
		return -1;
	}
	switch (fate) {
	case FATE_EXITED: /* even with status 0: it was to answer */
		(void)exec_ended(status, why, sizeof why);
		break;
	case FATE_TIMEOUT:
		snprintf(why, sizeof why, "timed out after %gs (its process group was killed)",
			 j->spec.timeout_s);
		break;
	case FATE_OVER:
		snprintf(why, sizeof why, "answered more than %d bytes without a newline",
			 RESIDENT_LINE_MAX);
		break;
	case FATE_RSS:
		snprintf(why, sizeof why, "grew past --exec-max-rss %lld MiB",
			 (long long)(r->max_rss / (1024 * 1024)));
		break;
	case FATE_IO:
		snprintf(why, sizeof why, "could not be read (its stdout failed)");
		break;
	default:
		break;
	}
	exec_tail_text(&p->tail, tail, sizeof tail);
	snprintf(err, errlen, "exec batch %llu: %.200s (resident) %s%s%s",
		 (unsigned long long)batch, j->spec.argv[0], why, tail[0] ? "; stderr: " : "",
		 tail);
	return -1;
}

int resident_end_job(struct resident *r, const char *job_id)
{
	int n = 0;

	for (int i = 0; r && i < r->nslots; i++) {
		pthread_mutex_lock(&r->slot[i].lock);
		struct prog *p = slot_find(&r->slot[i], job_id);
		if (p && !p->busy) {
			prog_stop(p);
			n++;
		}
		pthread_mutex_unlock(&r->slot[i].lock);
	}
	return n;
}

int64_t resident_reap(struct resident *r, int64_t now_ms)
{
	int64_t next = -1;

	if (!r || !r->idle_ms)
		return -1;
	for (int i = 0; i < r->nslots; i++) {
		if (pthread_mutex_trylock(&r->slot[i].lock))
			continue; /* its thread is picking a program: not idle */
		for (int k = 0; k < RESIDENT_JOBS_MAX; k++) {
			struct prog *p = &r->slot[i].prog[k];
			if (!p->pid || p->busy)
				continue;
			int64_t left = p->used_ms + r->idle_ms - now_ms;
			if (left <= 0)
				prog_stop(p);
			else if (next < 0 || left < next)
				next = left;
		}
		pthread_mutex_unlock(&r->slot[i].lock);
	}
	return next;
}

pid_t resident_pid(struct resident *r, int slot, const char *job_id)
{
	const struct prog *p = slot_find(&r->slot[slot], job_id);
	return p ? p->pid : 0;
}
