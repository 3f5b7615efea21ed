/* Matching request paths against the route table's patterns, for api/http.c's dispatch. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "route.h"

/* Matches path against pattern, filling params. Returns 1 on a match. */
static int route_match(const char *pattern, const char *path,
		       char params[ROUTE_PARAMS_MAX][ROUTE_SEGMENT_MAX])
{
	size_t np = 0;

	while (*pattern && *path) {
		if (*pattern != '/' || *path != '/')
			return 0;
		pattern++;
		path++;
		size_t plen = strcspn(pattern, "/");
		size_t slen = strcspn(path, "/");
		if (plen == 2 && !strncmp(pattern, "{}", 2)) {
			if (!slen || slen >= ROUTE_SEGMENT_MAX || np == ROUTE_PARAMS_MAX)
				return 0;
			memcpy(params[np], path, slen);
			params[np][slen] = '\0';
			np++;
		} else if (plen != slen || strncmp(pattern, path, plen)) {
			return 0;
		}
		pattern += plen;
		path += slen;
	}
	return !*pattern && !*path;
}

const struct http_route *route_find(const struct http_route *routes, size_t n, const char *method,
				    const char *path, char params[ROUTE_PARAMS_MAX][ROUTE_SEGMENT_MAX],
				    char *allow, size_t allowlen)
{
	size_t len = 0;

	if (allowlen)
		*allow = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!route_match(routes[i].pattern, path, params))
			continue;
		if (!strcmp(routes[i].method, method))
			return &routes[i];
		if (len + strlen(routes[i].method) + 3 < allowlen)
			len += (size_t)snprintf(allow + len, allowlen - len, "%s%s", len ? ", " : "",
						routes[i].method);
	}
	return NULL;
}

int route_is_json(const char *content_type)
{
	const char *ct = content_type;
	size_t n = sizeof "application/json" - 1;
	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	return !strncasecmp(ct, "application/json", n) &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}
