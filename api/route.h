/* Route matching for the route table (struct http_route): a path against patterns whose {}
 * segments each match one non-empty path segment, and the methods a path allows when none
 * matches the request's, and the one media type the routes take. Pure C; no HTTP library. */
#ifndef TALLY_ROUTE_H
#define TALLY_ROUTE_H

#include <stddef.h>
#include "http.h"

#define ROUTE_PARAMS_MAX 2    /* {} segments a pattern may have */
#define ROUTE_SEGMENT_MAX 128 /* room for one {} segment, NUL included */

/* Returns the first of routes[0..n) whose method and pattern match method and path (borrowed
 * from routes), with its {} segments copied into params. Otherwise returns NULL after writing
 * into allow (allowlen bytes) the methods of the routes whose pattern does match, ", "
 * between them: "" when there are none (404, not 405). A segment too long for params matches
 * no {}. Paths are compared as they are, not percent-decoded. Can't fail. */
const struct http_route *route_find(const struct http_route *routes, size_t n, const char *method,
				    const char *path, char params[ROUTE_PARAMS_MAX][ROUTE_SEGMENT_MAX],
				    char *allow, size_t allowlen);
/* Returns 1 when content_type (a Content-Type header's value, or NULL) is application/json,
 * parameters allowed (`; charset=utf-8`), matched case-insensitively: a route takes bodies of
 * that type only (415 otherwise). Pure. */
int route_is_json(const char *content_type);

#endif
