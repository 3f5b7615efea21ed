/* Route matching: literal and {} segments, the methods a path allows (405) or none (404), and the
 * limits on segments. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "route.h"

static void nop(struct req *r, void *app)
{
	(void)r;
	(void)app;
}

static const struct http_route routes[] = {
	{ "POST", "/v1/jobs", nop, 0 },
	{ "GET", "/v1/jobs", nop, 0 },
	{ "GET", "/v1/jobs/{}", nop, 0 },
	{ "POST", "/v1/jobs/{}/cancel", nop, 0 },
	{ "POST", "/v1/leases/{}/complete", nop, 0 },
	{ "GET", "/a/{}/b/{}", nop, 0 },
	{ "GET", "/", nop, 0 },
};
#define NROUTES (sizeof routes / sizeof routes[0])

static void test_table(void **state)
{
	static const struct {
		const char *method, *path;
		int route;          /* index into routes, or -1 */
		const char *p0, *p1; /* the {} segments */
		const char *allow;  /* when route is -1 */
	} cases[] = {
		{ "POST", "/v1/jobs", 0, NULL, NULL, NULL },
		{ "GET", "/v1/jobs", 1, NULL, NULL, NULL },
		{ "GET", "/v1/jobs/42", 2, "42", NULL, NULL },
		{ "POST", "/v1/jobs/42/cancel", 3, "42", NULL, NULL },
		{ "GET", "/a/x/b/y", 5, "x", "y", NULL },
		{ "GET", "/", 6, NULL, NULL, NULL },
		{ "DELETE", "/v1/jobs", -1, NULL, NULL, "POST, GET" },
		{ "GET", "/v1/jobs/42/cancel", -1, NULL, NULL, "POST" },
		{ "GET", "/v1/jobs/", -1, NULL, NULL, "" },        /* an empty {} */
		{ "GET", "/v1/jobs//cancel", -1, NULL, NULL, "" },
		{ "GET", "/v1/jobs/42/", -1, NULL, NULL, "" },
		{ "GET", "/v1/job", -1, NULL, NULL, "" },
		{ "GET", "/v1/jobsx", -1, NULL, NULL, "" },
		{ "GET", "v1/jobs", -1, NULL, NULL, "" },
		{ "GET", "", -1, NULL, NULL, "" },
		{ "GET", "/v1/jobs%2F42", -1, NULL, NULL, "" },    /* not decoded: one segment */
		{ "get", "/v1/jobs", -1, NULL, NULL, "POST, GET" }, /* methods are case-sensitive */
	};
	(void)state;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char params[ROUTE_PARAMS_MAX][ROUTE_SEGMENT_MAX] = { "" };
		char allow[64] = "junk";
		const struct http_route *r = route_find(routes, NROUTES, cases[k].method,
							cases[k].path, params, allow, sizeof allow);
		if (cases[k].route < 0) {
			if (r || strcmp(allow, cases[k].allow)) {
				print_error("%s %s: route %d, allow '%s'\n", cases[k].method,
					    cases[k].path, r ? (int)(r - routes) : -1, allow);
				fail();
			}
			continue;
		}
		if (r != &routes[cases[k].route]) {
			print_error("%s %s: route %d\n", cases[k].method, cases[k].path,
				    r ? (int)(r - routes) : -1);
			fail();
		}
		if (cases[k].p0)
			assert_string_equal(params[0], cases[k].p0);
		if (cases[k].p1)
			assert_string_equal(params[1], cases[k].p1);
	}
}

static void test_limits(void **state)
{
	static const struct http_route three[] = { { "GET", "/{}/{}/{}", nop, 0 } };
	char params[ROUTE_PARAMS_MAX][ROUTE_SEGMENT_MAX];
	char allow[8], path[ROUTE_SEGMENT_MAX + 16];
	(void)state;

	/* More {} than there is room for: no match. */
	assert_null(route_find(three, 1, "GET", "/a/b/c", params, allow, sizeof allow));
	/* A segment of ROUTE_SEGMENT_MAX - 1 bytes fits; one more does not. */
	memset(path, 'x', sizeof path);
	memcpy(path, "/v1/jobs/", 9);
	path[9 + ROUTE_SEGMENT_MAX - 1] = '\0';
	assert_ptr_equal(route_find(routes, NROUTES, "GET", path, params, allow, sizeof allow),
			 &routes[2]);
	assert_int_equal(strlen(params[0]), ROUTE_SEGMENT_MAX - 1);
	path[9 + ROUTE_SEGMENT_MAX - 1] = 'x';
	path[9 + ROUTE_SEGMENT_MAX] = '\0';
	assert_null(route_find(routes, NROUTES, "GET", path, params, allow, sizeof allow));
	/* The Allow list is cut at whole methods when it would not fit. */
	assert_null(route_find(routes, NROUTES, "PUT", "/v1/jobs", params, allow, sizeof allow));
	assert_string_equal(allow, "POST");
	assert_null(route_find(routes, NROUTES, "PUT", "/v1/jobs", params, allow, 0));
}

static void test_is_json(void **state)
{
	static const struct {
		const char *type;
		int json;
	} cases[] = {
		{ "application/json", 1 },
		{ "Application/JSON", 1 },
		{ "application/json; charset=utf-8", 1 },
		{ "application/json;charset=utf-8", 1 },
		{ "  application/json", 1 },
		{ "application/json ", 1 },
		{ NULL, 0 },
		{ "", 0 },
		{ "application/jsonp", 0 },
		{ "text/plain", 0 },
		{ "application/json-patch+json", 0 },
		{ "application/", 0 },
	};
	(void)state;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
		if (route_is_json(cases[k].type) != cases[k].json)
			fail_msg("'%s': want %d", cases[k].type ? cases[k].type : "(null)",
				 cases[k].json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_is_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
