/* The event loop: one thread that waits for the HTTP layer's descriptor, runs a pass of it (every
 * handler of what arrived), then commits the pass's writes once and lets go the replies that
 * waited for that commit. It also keeps the application's timer and notices its own stalls. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "evloop.h"
#include "timefmt.h"

#define EVLOOP_IDLE_MS 250 /* the longest wait: stopping is seen within it even without a wake */

struct evloop {
	struct evloop_hooks hooks;
	struct evloop_io io;
	struct latency commit; /* the flush hook's, per commit */
	int pass_failed;       /* a commit earlier in this pass failed */
	int wake_fd;           /* an eventfd other threads write to end the loop's wait */
	pthread_t thread;
	int started;
	pthread_mutex_t lock; /* guards the two below */
	int stopping;
	int64_t timer_at; /* monotonic ms; 0: none */
};

/* The loop whose thread this is (NULL on other threads): evloop_wake() need not write then. */
static _Thread_local struct evloop *evloop_current;

enum tally_err evloop_new(const struct evloop_hooks *hooks, struct evloop **out)
{
	struct evloop *l = calloc(1, sizeof *l);

	if (!l)
		return TALLY_ENOMEM;
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd < 0) {
		free(l);
		return TALLY_EIO;
	}
	if (hooks)
		l->hooks = *hooks;
	pthread_mutex_init(&l->lock, NULL);
	*out = l;
	return TALLY_OK;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	close(l->wake_fd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void evloop_wake(struct evloop *l)
{
	uint64_t one = 1;
	ssize_t n;

	if (evloop_current == l)
		return; /* the loop looks again before its next wait */
	n = write(l->wake_fd, &one, sizeof one); /* EAGAIN: it is awake already */
	(void)n;
}

void evloop_timer_at(struct evloop *l, int64_t at_ms)
{
	int64_t was;

	pthread_mutex_lock(&l->lock);
	was = l->timer_at;
	l->timer_at = at_ms;
	pthread_mutex_unlock(&l->lock);
	/* The loop waits until the old time at the latest: only an earlier one needs a wake. */
	if (at_ms && (!was || at_ms < was))
		evloop_wake(l);
}

uint64_t evloop_changes(struct evloop *l)
{
	return l->hooks.changes ? l->hooks.changes(l->hooks.app) : 0;
}

const struct latency *evloop_commit_latency(const struct evloop *l)
{
	return &l->commit;
}

/* Calls the flush hook, timing it. Returns its result. */
static int evloop_flush(struct evloop *l)
{
	int64_t t0 = timefmt_mono_us();
	int rc = l->hooks.flush(l->hooks.app);
	latency_add(&l->commit, timefmt_mono_us() - t0);
	return rc;
}

int evloop_commit(struct evloop *l)
{
	if (!l->hooks.flush || !evloop_flush(l))
		return 0;
	l->pass_failed = 1; /* what the pass holds was in that commit too */
	return -1;
}

/* The end of a pass: one commit of all its writes, then its held replies go (as 503s when the
 * commit failed: nothing they reported happened). Returns how many replies went. */
static int evloop_commit_pass(struct evloop *l)
{
	int ok = 1;

	if (l->hooks.dirty && l->hooks.dirty(l->hooks.app))
		ok = !l->hooks.flush || !evloop_flush(l);
	if (l->pass_failed)
		ok = 0;
	l->pass_failed = 0;
	return l->io.release(l->io.ctx, ok);
}

/* Returns how long the loop may wait: until the io's deadline or the timer, at most
 * EVLOOP_IDLE_MS. */
static int evloop_timeout(struct evloop *l)
{
	int64_t now = timefmt_mono_ms(), at = l->io.deadline ? l->io.deadline(l->io.ctx) : INT64_MAX;

	pthread_mutex_lock(&l->lock);
	if (l->timer_at && l->timer_at < at)
		at = l->timer_at;
	pthread_mutex_unlock(&l->lock);
	if (at <= now)
		return 0;
	return at - now < EVLOOP_IDLE_MS ? (int)(at - now) : EVLOOP_IDLE_MS;
}

/* Waits up to ms for the io's descriptor or a wake from another thread. */
static void evloop_wait(struct evloop *l, int ms)
{
	struct pollfd p[2] = { { l->io.fd, POLLIN, 0 }, { l->wake_fd, POLLIN, 0 } };
	uint64_t n;

	if (poll(p, 2, ms) > 0 && (p[1].revents & POLLIN))
		while (read(l->wake_fd, &n, sizeof n) < 0 && errno == EINTR)
			;
}

/* Calls the timer hook if its time has come (once per evloop_timer_at). */
static void evloop_timer_run(struct evloop *l, int64_t now)
{
	int due;

	pthread_mutex_lock(&l->lock);
	due = l->timer_at && l->timer_at <= now;
	if (due)
		l->timer_at = 0;
	pthread_mutex_unlock(&l->lock);
	if (due && l->hooks.timer)
		l->hooks.timer(l->hooks.app);
}

/* The loop. A pass: wait (not when the last pass let replies go: the io sends them at once),
 * notice a stall, run the timer if due, run the io, commit. After evloop_stop() it goes on for
 * EVLOOP_STOP_MS to answer what is in flight. */
static void *evloop_main(void *arg)
{
	struct evloop *l = arg;
	int64_t stop_at = 0, due = timefmt_mono_ms(), late;
	int released = 0, stopping;

	evloop_current = l;
	for (;;) {
		int ms = evloop_timeout(l);

		if (!released)
			evloop_wait(l, ms);
		/* A pass far later than its wait allowed: the process was stopped, or the last pass
		 * took that long. Heartbeats could not be heard meanwhile. The hook runs before the
		 * timer, so that leases it extends are not reaped. */
		late = timefmt_mono_ms() - due - (released ? 0 : ms);
		if (late > EVLOOP_STALL_MS && l->hooks.stalled)
			l->hooks.stalled(l->hooks.app, late);
		due = timefmt_mono_ms(); /* the pass's own time counts towards the next one's delay */
		pthread_mutex_lock(&l->lock);
		stopping = l->stopping;
		pthread_mutex_unlock(&l->lock);
		evloop_timer_run(l, due);
		l->io.run(l->io.ctx, stopping);
		released = evloop_commit_pass(l);
		if (stopping && !stop_at)
			stop_at = timefmt_mono_ms() + EVLOOP_STOP_MS;
		if (stop_at && timefmt_mono_ms() >= stop_at) {
			l->io.run(l->io.ctx, 1); /* sends what the last commit let go */
			break;
		}
	}
	evloop_current = NULL;
	return NULL;
}

enum tally_err evloop_start(struct evloop *l, const struct evloop_io *io)
{
	l->io = *io;
	if (pthread_create(&l->thread, NULL, evloop_main, l))
		return TALLY_EIO;
	l->started = 1;
	return TALLY_OK;
}

void evloop_stop(struct evloop *l)
{
	if (!l || !l->started)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = 1;
	pthread_mutex_unlock(&l->lock);
	evloop_wake(l);
	pthread_join(l->thread, NULL);
	l->started = 0;
	if (l->hooks.flush) /* writes of requests that arrived while stopping */
		l->hooks.flush(l->hooks.app);
}
