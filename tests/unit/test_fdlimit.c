/* The file-descriptor plan: the soft limit raised to fit the connections, the default lowered
 * (with a warning) and an explicit limit refused when the hard limit is short. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "fdlimit.h"
#include "http.h"

static void test_plan_table(void **state)
{
	static const struct {
		uint64_t soft, hard;
		unsigned want;
		enum tally_err rc;
		uint64_t new_soft;
		unsigned connections;
		int lowered;
	} cases[] = {
		/* Debian's usual 1024 / 1048576: raised to the hard limit, the default fits. */
		{ 1024, 1048576, 0, TALLY_OK, 1048576, HTTP_CONN_LIMIT, 0 },
		{ 1024, 20000, 0, TALLY_OK, 20000, HTTP_CONN_LIMIT, 0 },
		{ 65536, 1048576, 0, TALLY_OK, 1048576, HTTP_CONN_LIMIT, 0 },
		/* No hard limit: raised to what is needed, or left when already enough. */
		{ 65536, FDLIMIT_UNLIMITED, 0, TALLY_OK, 65536, HTTP_CONN_LIMIT, 0 },
		{ 1024, FDLIMIT_UNLIMITED, 0, TALLY_OK, HTTP_CONN_LIMIT + FDLIMIT_MARGIN,
		  HTTP_CONN_LIMIT, 0 },
		/* A short hard limit lowers the default... */
		{ 1024, 4096, 0, TALLY_OK, 4096, 4096 - FDLIMIT_MARGIN, 1 },
		/* ...but an explicit limit must fit, or it is refused. */
		{ 1024, 4096, 3000, TALLY_OK, 4096, 3000, 0 },
		{ 1024, 4096, 4096 - FDLIMIT_MARGIN, TALLY_OK, 4096, 4096 - FDLIMIT_MARGIN, 0 },
		{ 1024, 4096, 4096 - FDLIMIT_MARGIN + 1, TALLY_EINVAL, 0, 0, 0 },
		{ 256, 256, 20000, TALLY_EINVAL, 0, 0, 0 },
		/* Too few for any service: refused even by default. */
		{ 64, 64 + FDLIMIT_MIN_CONNECTIONS - 1, 0, TALLY_EINVAL, 0, 0, 0 },
		{ 64, 64 + FDLIMIT_MIN_CONNECTIONS, 0, TALLY_OK, 64 + FDLIMIT_MIN_CONNECTIONS,
		  FDLIMIT_MIN_CONNECTIONS, 1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fdlimit_plan p;
		enum tally_err rc = fdlimit_plan(cases[i].soft, cases[i].hard, cases[i].want, &p);
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, want %d", i, rc, cases[i].rc);
		if (rc)
			continue;
		if (p.soft != cases[i].new_soft || p.connections != cases[i].connections ||
		    p.lowered != cases[i].lowered)
			fail_msg("case %zu: soft %llu connections %u lowered %d", i,
				 (unsigned long long)p.soft, p.connections, p.lowered);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
