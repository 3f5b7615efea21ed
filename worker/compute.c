/* Threads that run kernel batches for one lease. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "compute.h"

#define COMPUTE_THREADS_MAX 1024
#define COMPUTE_GRAB_SAMPLES 65536

struct compute_thread {
	struct compute *c;
	pthread_t tid;
	struct count_keys keys; /* the names of counts: the kernel's, or those its programs gave */
	uint64_t counts[KERNEL_MAX_KEYS];
};

struct compute {
	struct compute_work w;
	uint64_t seed, samples, batch_size, first, count;
	char err[512]; /* the first failure's; guarded by lock */
	int failed;
	atomic_uint_fast64_t next; /* next batch offset to hand out */
	uint64_t grab;             /* batches a thread takes at a time */
	int stop; /* read and written with __atomic builtins; kernels poll it */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running; /* threads not yet done */
	int nthreads;
	struct compute_thread *t;
};

/* Runs batch b (samples [lo, lo + n)) on thread t: by its kernel, by a program run for it, or
 * by the job's resident program in the thread's slot (its index). */
static int compute_batch(struct compute *c, struct compute_thread *t, uint64_t b, uint64_t lo,
			 uint64_t n, char *err, size_t errlen)
{
	if (c->w.resident)
		return resident_batch(c->w.resident, (int)(t - c->t), c->w.exec, c->seed, b, lo, n,
				      &c->stop, &t->keys, t->counts, err, errlen);
	if (c->w.exec)
		return exec_batch(c->w.exec, c->seed, b, lo, n, &c->stop, &t->keys, t->counts,
				  err, errlen);
	return kernel_run_batch(c->w.k, c->w.state, c->seed, b, lo, n, &c->stop, t->counts, err,
				errlen);
}

static void *compute_main(void *arg)
{
	struct compute_thread *t = arg;
	struct compute *c = t->c;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		uint64_t i = atomic_fetch_add(&c->next, c->grab);
		if (i >= c->count)
			break;
		uint64_t end = i + c->grab < c->count ? i + c->grab : c->count;
		for (; i < end; i++) {
			uint64_t b = c->first + i, lo = b * c->batch_size;
			if (lo >= c->samples)
				break;
			uint64_t n = c->samples - lo < c->batch_size ? c->samples - lo
								 : c->batch_size;
			char err[sizeof c->err];
			if (compute_batch(c, t, b, lo, n, err, sizeof err)) {
				pthread_mutex_lock(&c->lock);
				if (!c->failed && !__atomic_load_n(&c->stop, __ATOMIC_RELAXED))
					snprintf(c->err, sizeof c->err, "%s", err);
				c->failed = 1;
				pthread_mutex_unlock(&c->lock);
				__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
				break;
			}
		}
	}
	pthread_mutex_lock(&c->lock);
	if (--c->running == 0)
		pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct compute *compute_start(const struct compute_work *w, int nthreads)
{
	struct compute *c = calloc(1, sizeof *c);
	uint64_t count = w->count, batch_size = w->batch_size;
	sigset_t all, old;

	if (!c)
		return NULL;
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > COMPUTE_THREADS_MAX)
		nthreads = COMPUTE_THREADS_MAX;
	if ((uint64_t)nthreads > count)
		nthreads = (int)count;
	c->t = calloc((size_t)nthreads, sizeof *c->t);
	if (!c->t) {
		free(c);
		return NULL;
	}
	c->w = *w;
	c->seed = w->seed;
	c->samples = w->samples;
	c->batch_size = batch_size;
	c->first = w->first;
	c->count = count;
	atomic_init(&c->next, 0);
	/* Tiny batches are taken a few at a time (about COMPUTE_GRAB_SAMPLES samples), so that the
	 * shared counter is not touched per batch; but never so many that a thread goes idle
	 * while another still has several grabs' worth to do. */
	c->grab = COMPUTE_GRAB_SAMPLES / batch_size;
	if (c->grab > count / ((uint64_t)nthreads * 8))
		c->grab = count / ((uint64_t)nthreads * 8);
	if (c->grab < 1)
		c->grab = 1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	/* Signals stay with the main thread, which polls the stop flag. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < nthreads; i++) {
		c->t[i].c = c;
		if (w->k)
			kernel_keys(w->k, &c->t[i].keys);
		pthread_mutex_lock(&c->lock);
		c->running++;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&c->t[i].tid, NULL, compute_main, &c->t[i])) {
			pthread_mutex_lock(&c->lock);
			c->running--;
			pthread_mutex_unlock(&c->lock);
			break;
		}
		c->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!c->nthreads) {
		compute_finish(c, NULL, NULL, NULL, 0);
		return NULL;
	}
	return c;
}

int compute_wait(struct compute *c, int64_t timeout_ms)
{
	struct timespec ts;
	int done;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (c->running && pthread_cond_timedwait(&c->cond, &c->lock, &ts) != ETIMEDOUT)
		;
	done = !c->running;
	pthread_mutex_unlock(&c->lock);
	return done;
}

void compute_abort(struct compute *c)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
}

int compute_finish(struct compute *c, struct count_keys *keys, uint64_t *out, char *err,
		   size_t errlen)
{
	struct count_keys all = { 0 };
	uint64_t sum[KERNEL_MAX_KEYS] = { 0 };
	int rc = c->failed ? -1 : 0;

	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->t[i].tid, NULL);
	if (rc && err)
		snprintf(err, errlen, "%s", c->err[0] ? c->err : "a batch failed");
	/* Each thread's counts under its names: the same names for a kernel, those its batches
	 * gave for a program (at most KERNEL_MAX_KEYS in all, or the work fails). */
	if (c->w.k)
		kernel_keys(c->w.k, &all);
	for (int i = 0; !rc && i < c->nthreads; i++) {
		const struct compute_thread *t = &c->t[i];
		for (size_t j = 0; !rc && j < t->keys.n; j++) {
			size_t k;
			for (k = 0; k < all.n && strcmp(all.name[k], t->keys.name[j]); k++)
				;
			if (k == KERNEL_MAX_KEYS) {
				if (err)
					snprintf(err, errlen, "counts: more than %d names",
						 KERNEL_MAX_KEYS);
				rc = -1;
			} else if (t->counts[j] > (uint64_t)INT64_MAX - sum[k]) {
				if (err)
					snprintf(err, errlen, "counts.%s: the sum passes 2^63-1",
						 t->keys.name[j]);
				rc = -1;
			} else {
				if (k == all.n)
					memcpy(all.name[all.n++], t->keys.name[j], KERNEL_KEY_MAX);
				sum[k] += t->counts[j];
			}
		}
	}
	if (keys)
		*keys = all;
	if (out)
		memcpy(out, sum, sizeof sum);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->t);
	free(c);
	return rc;
}
