/* utf8_scrub: valid UTF-8 passes unchanged; every byte of a malformed, truncated, overlong,
 * surrogate or out-of-range sequence becomes '?'. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "utf8.h"

static void test_table(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "plain ascii", "plain ascii" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },                       /* 2 bytes */
		{ "\xe2\x82\xac", "\xe2\x82\xac" },                     /* 3 bytes: the euro sign */
		{ "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },             /* 4 bytes */
		{ "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },             /* U+10FFFF */
		{ "cut \xe2\x82", "cut ??" },                           /* truncated */
		{ "\xc3", "?" },
		{ "\x80x", "?x" },                                      /* a lone continuation */
		{ "\xc0\xaf", "??" },                                   /* overlong '/' */
		{ "\xe0\x80\xaf", "???" },                              /* overlong, 3 bytes */
		{ "\xf0\x80\x80\xaf", "????" },                         /* overlong, 4 bytes */
		{ "\xed\xa0\x80", "???" },                              /* a surrogate */
		{ "\xf4\x90\x80\x80", "????" },                         /* past U+10FFFF */
		{ "\xf8\x88\x80\x80\x80", "?????" },                    /* 5-byte forms */
		{ "\xff", "?" },
		{ "a\xc3(b", "a?(b" },                                  /* bad continuation */
	};
	(void)state;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char s[32];
		snprintf(s, sizeof s, "%s", cases[k].in);
		utf8_scrub(s);
		if (strcmp(s, cases[k].out)) {
			print_error("case %zu: got '%s'\n", k, s);
			fail();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
