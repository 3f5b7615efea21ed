/* The lease routes' limit on 404s (api/ratelimit.c), on an injected clock: a burst, then one
 * failure per interval, the wait it tells, callers kept apart, a debt paid off with time, and a
 * table that stays bounded without forgetting the deepest debt. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "ratelimit.h"

static struct ratelimit rl; /* 64 KiB: not on the stack */
static const uint8_t key[SIPHASH_KEY_SIZE] = { 1, 2, 3 };

static int64_t wait_of(const char *who, int64_t now)
{
	return ratelimit_wait(&rl, who, strlen(who), now);
}

static void charge(const char *who, int64_t now)
{
	ratelimit_charge(&rl, who, strlen(who), now);
}

static void test_burst_then_one_per_interval(void **state)
{
	(void)state;
	ratelimit_init(&rl, key, 3, 1000);
	assert_int_equal(wait_of("u/a", 5000), 0); /* never failed */
	charge("u/a", 5000);
	charge("u/a", 5000);
	assert_int_equal(wait_of("u/a", 5000), 0);
	charge("u/a", 5000); /* the third at once: the burst is spent */
	assert_int_equal(wait_of("u/a", 5000), 1000);
	assert_int_equal(wait_of("u/a", 5999), 1);
	assert_int_equal(wait_of("u/b", 5000), 0); /* another caller is not held */
	assert_int_equal(wait_of("u/a", 6000), 0);
	charge("u/a", 6000); /* one more per interval, no more */
	assert_int_equal(wait_of("u/a", 6000), 1000);
	/* Debt is paid off with time: after three intervals a whole burst again. */
	assert_int_equal(wait_of("u/a", 10000), 0);
	charge("u/a", 10000);
	charge("u/a", 10000);
	assert_int_equal(wait_of("u/a", 10000), 0);
}

static void test_spaced_failures_never_wait(void **state)
{
	(void)state;
	ratelimit_init(&rl, key, 2, 1000);
	for (int64_t t = 0; t < 100000; t += 1000) {
		assert_int_equal(wait_of("w", t), 0);
		charge("w", t);
	}
}

static void test_bounded_keeps_the_deepest_debt(void **state)
{
	char name[32];
	(void)state;
	ratelimit_init(&rl, key, 10, 1000);
	for (int i = 0; i < 10; i++)
		charge("attacker/victim", 0);
	assert_int_equal(wait_of("attacker/victim", 0), 1000);
	/* Twice as many callers as slots, each with one failure: the table does not grow, and
	 * the deepest debt is never the one forgotten. */
	for (int i = 0; i < 2 * RATELIMIT_SLOTS; i++) {
		snprintf(name, sizeof name, "u/w%d", i);
		charge(name, 0);
	}
	assert_int_equal(wait_of("attacker/victim", 0), 1000);
	/* A paid-off caller's slot is taken again. */
	for (int i = 0; i < 2 * RATELIMIT_SLOTS; i++) {
		snprintf(name, sizeof name, "v/w%d", i);
		charge(name, 20000);
	}
	assert_int_equal(wait_of("attacker/victim", 20000), 0);
	assert_int_equal(wait_of("v/w0", 20000) + wait_of("v/w8191", 20000), 0); /* burst 10 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_one_per_interval),
		cmocka_unit_test(test_spaced_failures_never_wait),
		cmocka_unit_test(test_bounded_keeps_the_deepest_debt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
