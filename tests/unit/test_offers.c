/* The registry of offered kernels: names with and without versions, repeats, the oldest offer
 * forgotten when it is full, and names no job names kept out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include "kernel.h"
#include "offers.h"

static void test_versions(void **state)
{
	struct offers *o = offers_new();
	const struct kernel *dice = kernel_named("dice"); /* a job names it */
	(void)state;
	assert_non_null(o);
	assert_int_equal(offers_has(o, "pi", 0), 0);
	offers_note(o, "dice@2", 10);
	offers_note(o, "pi", 10);
	assert_int_equal(offers_has(o, "dice", 2), 1);
	assert_int_equal(offers_has(o, "dice", 0), 1); /* any version */
	assert_int_equal(offers_has(o, "dice", 3), 0);
	assert_int_equal(offers_has(o, "pi", 7), 1); /* offered without a version: any */
	assert_int_equal(offers_has(o, "p", 0), 0);   /* a prefix is not the name */
	assert_int_equal(offers_has(o, "dic", 2), 0);
	assert_int_equal(offers_has(o, "count", 0), 0);
	offers_free(o);
	kernel_drop(dice);
}

static void test_oldest_forgotten_when_full(void **state)
{
	struct offers *o = offers_new();
	const struct kernel *held[OFFERS_MAX + 1];
	char name[32];
	(void)state;
	for (int i = 0; i < OFFERS_MAX; i++) {
		snprintf(name, sizeof name, "k%d", i);
		held[i] = kernel_named(name);
		offers_note(o, name, 100 + i);
	}
	held[OFFERS_MAX] = kernel_named("new");
	/* k0 offered again takes no slot of its own: k1 is now the oldest, and goes first. */
	offers_note(o, "k0", 1000);
	offers_note(o, "new", 1001);
	assert_int_equal(offers_has(o, "new", 0), 1);
	assert_int_equal(offers_has(o, "k0", 0), 1);
	assert_int_equal(offers_has(o, "k1", 0), 0);
	assert_int_equal(offers_has(o, "k2", 0), 1);
	offers_free(o);
	offers_free(NULL);
	for (int i = 0; i <= OFFERS_MAX; i++)
		kernel_drop(held[i]);
}

/* A worker offering names that are no kernel here (no code, no job names them) takes no slot:
 * the real offers stay however many it sends. */
static void test_made_up_names_take_no_slot(void **state)
{
	struct offers *o = offers_new();
	char name[40];
	(void)state;
	offers_note(o, "pi", 10);
	offers_note(o, "count@1", 10);
	for (int i = 0; i < 10 * OFFERS_MAX; i++) {
		snprintf(name, sizeof name, "made-up-%d@%d", i, i);
		offers_note(o, name, 20 + i);
	}
	offers_note(o, "a-name-much-longer-than-any-kernel-name-can-be@1", 30);
	assert_int_equal(offers_has(o, "pi", 0), 1);
	assert_int_equal(offers_has(o, "count", 1), 1);
	assert_int_equal(offers_has(o, "made-up-3", 0), 0);
	assert_int_equal(kernel_named_count(), 0);
	offers_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_oldest_forgotten_when_full),
		cmocka_unit_test(test_made_up_names_take_no_slot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
