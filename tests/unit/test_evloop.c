/* The event loop against a fake io (a pipe: each byte is a handler that writes) and fake hooks:
 * one commit per pass however many handlers wrote, held replies let go after it (as failed when
 * it failed), the timer hook on the loop's thread, and the final commit when stopping. The test
 * waits for what the loop reports, never for a fixed time. */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "evloop.h"
#include "timefmt.h"

#define WAIT_S 30 /* a safety net only: every wait ends when its condition holds */

struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fds[2];
	/* the application */
	uint64_t changes;
	int dirty, fail_next, flushes, timers;
	pthread_t timer_thread;
	/* the io */
	int held, runs, stopping_runs;
	int releases; /* that let something go */
	int last_released, last_committed;
};

static void fake_signal(struct fake *f)
{
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static uint64_t fake_changes(void *app)
{
	return ((struct fake *)app)->changes; /* read on the loop's thread only */
}

static int fake_dirty(void *app)
{
	return ((struct fake *)app)->dirty;
}

static int fake_flush(void *app)
{
	struct fake *f = app;
	int rc;
	pthread_mutex_lock(&f->lock);
	f->flushes++;
	rc = f->fail_next ? -1 : 0;
	f->fail_next = 0;
	f->dirty = 0;
	fake_signal(f);
	return rc;
}

static void fake_timer(void *app)
{
	struct fake *f = app;
	pthread_mutex_lock(&f->lock);
	f->timers++;
	f->timer_thread = pthread_self();
	fake_signal(f);
}

static int64_t fake_deadline(void *ctx)
{
	(void)ctx;
	return INT64_MAX;
}

/* A pass: every byte in the pipe is a handler that made a change its reply reports. */
static void fake_run(void *ctx, int stopping)
{
	struct fake *f = ctx;
	char b[64];
	ssize_t n = read(f->fds[0], b, sizeof b);
	pthread_mutex_lock(&f->lock);
	f->runs++;
	f->stopping_runs += stopping;
	for (ssize_t i = 0; i < n; i++) {
		f->changes++;
		f->dirty = 1;
		f->held++;
	}
	fake_signal(f);
}

static int fake_release(void *ctx, int committed)
{
	struct fake *f = ctx;
	int n;
	pthread_mutex_lock(&f->lock);
	n = f->held;
	f->held = 0;
	if (n) {
		f->releases++;
		f->last_released = n;
		f->last_committed = committed;
	}
	fake_signal(f);
	return n;
}

/* Waits until *counter reaches at least want; fails the test after WAIT_S. */
static void wait_for(struct fake *f, const int *counter, int want)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	pthread_mutex_lock(&f->lock);
	while (*counter < want)
		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts)) {
			pthread_mutex_unlock(&f->lock);
			fail_msg("the loop did not get there within %d s", WAIT_S);
		}
	pthread_mutex_unlock(&f->lock);
}

struct fixture {
	struct fake f;
	struct evloop *l;
};

static int setup(void **state)
{
	struct fixture *x = test_calloc(1, sizeof *x);
	struct fake *f = &x->f;
	struct evloop_hooks hooks = { fake_changes, fake_dirty, fake_flush, NULL, fake_timer, f };
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	assert_int_equal(pipe(f->fds), 0);
	assert_int_equal(fcntl(f->fds[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(evloop_new(&hooks, &x->l), TALLY_OK);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	evloop_stop(x->l);
	evloop_free(x->l);
	close(x->f.fds[0]);
	close(x->f.fds[1]);
	pthread_mutex_destroy(&x->f.lock);
	pthread_cond_destroy(&x->f.cond);
	test_free(x);
	return 0;
}

static void start(struct fixture *x)
{
	struct evloop_io io = { x->f.fds[0], fake_deadline, fake_run, fake_release, &x->f };
	assert_int_equal(evloop_start(x->l, &io), TALLY_OK);
}

static void test_one_commit_per_pass(void **state)
{
	struct fixture *x = *state;
	struct fake *f = &x->f;

	start(x);
	/* Three handlers in one pass (one write: the pass reads them together). */
	assert_int_equal(write(f->fds[1], "abc", 3), 3);
	wait_for(f, &f->releases, 1);
	assert_int_equal(f->flushes, 1);
	assert_int_equal(f->last_released, 3);
	assert_int_equal(f->last_committed, 1);
	/* A pass with nothing to commit does not commit. */
	assert_int_equal(evloop_commit_latency(x->l)->count, 1);
}

static void test_failed_commit_fails_held_replies(void **state)
{
	struct fixture *x = *state;
	struct fake *f = &x->f;

	f->fail_next = 1;
	start(x);
	assert_int_equal(write(f->fds[1], "ab", 2), 2);
	wait_for(f, &f->releases, 1);
	assert_int_equal(f->last_released, 2);
	assert_int_equal(f->last_committed, 0); /* 503s */
	assert_int_equal(write(f->fds[1], "c", 1), 1);
	wait_for(f, &f->releases, 2);
	assert_int_equal(f->last_committed, 1); /* the next pass is on its own */
}

static void test_timer_on_the_loop_thread(void **state)
{
	struct fixture *x = *state;
	struct fake *f = &x->f;

	start(x);
	evloop_timer_at(x->l, timefmt_mono_ms() + 20);
	wait_for(f, &f->timers, 1);
	assert_false(pthread_equal(f->timer_thread, pthread_self()));
	/* Once per time set; 0 cancels one set. */
	evloop_timer_at(x->l, timefmt_mono_ms() + 600000);
	evloop_timer_at(x->l, 0);
	evloop_timer_at(x->l, 1); /* long past: at once */
	wait_for(f, &f->timers, 2);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->timers, 2);
	pthread_mutex_unlock(&f->lock);
}

static void test_stop_runs_stopping_passes_and_commits(void **state)
{
	struct fixture *x = *state;
	struct fake *f = &x->f;
	int flushes;

	start(x);
	assert_int_equal(write(f->fds[1], "a", 1), 1);
	wait_for(f, &f->releases, 1);
	flushes = f->flushes;
	evloop_stop(x->l); /* returns once the thread has ended */
	assert_true(f->stopping_runs >= 2); /* at least one pass, then the last run */
	assert_int_equal(f->flushes, flushes + 1); /* what is left is committed */
	evloop_stop(x->l); /* a stopped loop: harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_commit_per_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_commit_fails_held_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_on_the_loop_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_runs_stopping_passes_and_commits, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
