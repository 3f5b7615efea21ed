/* Long-poll parking with the time injected: wakes by event mask, deadlines, the timed wake, and
 * a wake that comes while a handler runs. Nothing sleeps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "park.h"

#define NE 4
#define EV_WORK 1u
#define EV_JOBS 2u

/* What the park resumed, in order. */
struct resumed {
	struct park_entry *e[16];
	size_t n;
};

static void on_resume(struct park_entry *e, void *ctx)
{
	struct resumed *r = ctx;
	assert_true(r->n < 16);
	r->e[r->n++] = e;
}

struct fixture {
	struct park p;
	struct resumed r;
	struct park_entry e[NE];
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof *f);
	park_init(&f->p, on_resume, &f->r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	park_release(&f->p);
	test_free(f);
	return 0;
}

/* Parks e as a handler would: begin, then add. Returns park_add's answer. */
static int park(struct fixture *f, struct park_entry *e, int64_t until, unsigned on)
{
	park_begin(&f->p, e);
	return park_add(&f->p, e, until, on);
}

/* Returns 1 when e was resumed. */
static int was_resumed(const struct fixture *f, const struct park_entry *e)
{
	for (size_t i = 0; i < f->r.n; i++)
		if (f->r.e[i] == e)
			return 1;
	return 0;
}

static void test_wake_by_mask(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(park(f, &f->e[0], 5000, EV_WORK), 0);
	assert_int_equal(park(f, &f->e[1], 5000, EV_JOBS), 0);
	assert_int_equal(park(f, &f->e[2], 5000, EV_WORK | EV_JOBS), 0);
	park_wake(&f->p, 0); /* no events: nobody */
	assert_int_equal(f->r.n, 0);
	park_wake(&f->p, EV_JOBS);
	assert_int_equal(f->r.n, 2);
	assert_true(was_resumed(f, &f->e[1]) && was_resumed(f, &f->e[2]));
	assert_false(f->e[1].in_list || f->e[2].in_list);
	park_wake(&f->p, EV_JOBS); /* each is resumed once */
	assert_int_equal(f->r.n, 2);
	park_wake(&f->p, EV_WORK);
	assert_int_equal(f->r.n, 3);
	assert_ptr_equal(f->r.e[2], &f->e[0]);
}

static void test_deadlines(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(park_next(&f->p), INT64_MAX); /* nothing to wait for */
	park(f, &f->e[0], 300, EV_WORK);
	park(f, &f->e[1], 100, EV_WORK);
	park(f, &f->e[2], 200, EV_WORK);
	assert_int_equal(park_next(&f->p), 100);
	assert_int_equal(park_tick(&f->p, 99), 100);
	assert_int_equal(f->r.n, 0);
	assert_int_equal(park_tick(&f->p, 100), 200); /* due at its deadline exactly */
	assert_int_equal(f->r.n, 1);
	assert_ptr_equal(f->r.e[0], &f->e[1]);
	assert_int_equal(park_tick(&f->p, 1000), INT64_MAX); /* both others, late */
	assert_int_equal(f->r.n, 3);
	assert_null(f->p.list);
}

static void test_removed_entry_is_not_resumed(void **state)
{
	struct fixture *f = *state;

	park(f, &f->e[0], 100, EV_WORK);
	park(f, &f->e[1], 500, EV_WORK);
	park_remove(&f->p, &f->e[0]); /* its request ended while parked */
	park_remove(&f->p, &f->e[0]); /* twice is harmless */
	park_remove(&f->p, &f->e[3]); /* never parked: harmless */
	assert_int_equal(park_next(&f->p), 100); /* may be early, never late */
	assert_int_equal(park_tick(&f->p, 100), 500);
	assert_int_equal(f->r.n, 0);
	park_wake(&f->p, EV_WORK);
	assert_int_equal(f->r.n, 1);
	assert_ptr_equal(f->r.e[0], &f->e[1]);
}

static void test_timed_wake(void **state)
{
	struct fixture *f = *state;

	park(f, &f->e[0], 10000, EV_WORK);
	park(f, &f->e[1], 10000, EV_JOBS);
	assert_int_equal(park_wake_at(&f->p, 500, EV_WORK), 1); /* none before: earlier */
	assert_int_equal(park_wake_at(&f->p, 800, EV_WORK), 0); /* later: the loop need not look */
	assert_int_equal(park_wake_at(&f->p, 400, EV_WORK), 1);
	assert_int_equal(park_next(&f->p), 400);
	assert_int_equal(park_tick(&f->p, 399), 400);
	assert_int_equal(f->r.n, 0);
	assert_int_equal(park_tick(&f->p, 402), 10000); /* fired, and spent */
	assert_int_equal(f->r.n, 1);
	assert_ptr_equal(f->r.e[0], &f->e[0]);
	assert_int_equal(park_tick(&f->p, 5000), 10000);
	assert_int_equal(f->r.n, 1);

	/* 0 cancels. */
	assert_int_equal(park_wake_at(&f->p, 600, EV_JOBS), 1);
	assert_int_equal(park_wake_at(&f->p, 0, EV_JOBS), 0);
	assert_int_equal(park_tick(&f->p, 700), 10000);
	assert_int_equal(f->r.n, 1);
}

static void test_wake_while_handler_runs(void **state)
{
	struct fixture *f = *state;

	park_begin(&f->p, &f->e[0]);
	park_wake(&f->p, EV_JOBS); /* another kind of wake, from another thread */
	assert_int_equal(park_add(&f->p, &f->e[0], 1000, EV_WORK), 1); /* run it again */
	assert_false(f->e[0].in_list);
	assert_int_equal(park_next(&f->p), INT64_MAX);
	/* The next run parks. */
	assert_int_equal(park(f, &f->e[0], 1000, EV_WORK), 0);
	assert_true(f->e[0].in_list);
	/* A timed wake also counts as a wake for a handler running when it fires. */
	park_begin(&f->p, &f->e[1]);
	park_wake_at(&f->p, 50, EV_WORK);
	park_tick(&f->p, 60);
	assert_int_equal(park_add(&f->p, &f->e[1], 1000, EV_WORK), 1);
	assert_true(was_resumed(f, &f->e[0]));
}

static void test_wake_all(void **state)
{
	struct fixture *f = *state;

	park(f, &f->e[0], 1000, EV_WORK);
	park(f, &f->e[1], INT64_MAX, EV_JOBS);
	park(f, &f->e[2], 5, 0);
	park_wake_all(&f->p);
	assert_int_equal(f->r.n, 3);
	assert_null(f->p.list);
	assert_int_equal(park_next(&f->p), INT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wake_by_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadlines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_entry_is_not_resumed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timed_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_while_handler_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_all, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
