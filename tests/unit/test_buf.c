/* The capped buffer: appends, the cap, and NUL termination. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "buf.h"

static void test_append_and_terminate(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 16);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_add(&b, "hello", 5), TALLY_OK);
	assert_int_equal(buf_add(&b, " world", 6), TALLY_OK);
	assert_string_equal(buf_str(&b), "hello world");
	assert_int_equal(b.len, 11);
	buf_release(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 16);
}

static void test_cap_refuses_and_keeps_contents(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_add(&b, "12345678", 8), TALLY_OK);
	assert_int_equal(buf_add(&b, "9", 1), TALLY_ETOOBIG);
	assert_string_equal(buf_str(&b), "12345678");
	buf_release(&b);
	assert_int_equal(buf_add(&b, "123456789", 9), TALLY_ETOOBIG);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_grows_past_initial_allocation(void **state)
{
	struct buf b;
	char chunk[1000];
	(void)state;
	memset(chunk, 'x', sizeof chunk);
	buf_init(&b, 100000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_add(&b, chunk, sizeof chunk), TALLY_OK);
	assert_int_equal(b.len, 100000);
	assert_int_equal(buf_add(&b, "x", 1), TALLY_ETOOBIG);
	assert_int_equal(strlen(buf_str(&b)), 100000);
	buf_release(&b);
}

/* buf_addf formats short and long text alike, and refuses past the cap without changing it. */
static void test_addf(void **state)
{
	struct buf b;
	char big[600];
	(void)state;

	buf_init(&b, 1000);
	assert_int_equal(buf_addf(&b, "%s=%d;", "a", 42), TALLY_OK);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(buf_addf(&b, "%s", big), TALLY_OK); /* past the 256-byte fast path */
	assert_int_equal(b.len, 5 + 599);
	assert_string_equal(buf_str(&b) + 5, big);
	assert_int_equal(buf_addf(&b, "%s", big), TALLY_ETOOBIG);
	assert_int_equal(b.len, 5 + 599);
	assert_memory_equal(buf_str(&b), "a=42;", 5);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_terminate),
		cmocka_unit_test(test_cap_refuses_and_keeps_contents),
		cmocka_unit_test(test_grows_past_initial_allocation),
		cmocka_unit_test(test_addf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
