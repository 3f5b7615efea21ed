/* The registry of offered kernels: names with and without versions, repeats, and the oldest
 * offer forgotten when it is full. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include "offers.h"

static void test_versions(void **state)
{
	struct offers *o = offers_new();
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
}

static void test_oldest_forgotten_when_full(void **state)
{
	struct offers *o = offers_new();
	char name[32];
	(void)state;
	for (int i = 0; i < OFFERS_MAX; i++) {
		snprintf(name, sizeof name, "k%d", i);
		offers_note(o, name, 100 + i);
	}
	/* k0 offered again takes no slot of its own: k1 is now the oldest, and goes first. */
	offers_note(o, "k0", 1000);
	offers_note(o, "new", 1001);
	assert_int_equal(offers_has(o, "new", 0), 1);
	assert_int_equal(offers_has(o, "k0", 0), 1);
	assert_int_equal(offers_has(o, "k1", 0), 0);
	assert_int_equal(offers_has(o, "k2", 0), 1);
	offers_free(o);
	offers_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_oldest_forgotten_when_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
