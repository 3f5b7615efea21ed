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
	uint64_t counts[KERNEL_MAX_KEYS];
};

struct compute {
	const struct kernel *k;
	uint64_t seed, samples, batch_size, first, count;
	atomic_uint_fast64_t next; /* next batch offset to hand out */
	uint64_t grab;             /* batches a thread takes at a time */
	int stop; /* read and written with __atomic builtins; kernels poll it */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running; /* threads not yet done */
	int nthreads;
	struct compute_thread *t;
};

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
			c->k->run(c->seed, b, lo, n, &c->stop, t->counts);
		}
	}
	pthread_mutex_lock(&c->lock);
	if (--c->running == 0)
		pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct compute *compute_start(const struct kernel *k, uint64_t seed, uint64_t samples,
			      uint64_t batch_size, uint64_t first_batch, uint64_t count,
			      int nthreads)
{
	struct compute *c = calloc(1, sizeof *c);
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
	c->k = k;
	c->seed = seed;
	c->samples = samples;
	c->batch_size = batch_size;
	c->first = first_batch;
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
		compute_finish(c, NULL);
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

void compute_finish(struct compute *c, uint64_t *out)
{
	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->t[i].tid, NULL);
	if (out) {
		memset(out, 0, sizeof(uint64_t) * c->k->nkeys);
		for (int i = 0; i < c->nthreads; i++)
			for (size_t j = 0; j < c->k->nkeys; j++)
				out[j] += c->t[i].counts[j];
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->t);
	free(c);
}
