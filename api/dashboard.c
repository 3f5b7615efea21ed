/* GET /: the dashboard, one HTML page (api/dashboard.html) embedded in the binary at build time:
 * no files to install, nothing fetched from elsewhere. */
#include <stdlib.h>
#include <string.h>
#include "api.h"

/* Generated from api/dashboard.html by api/embed.cmake. */
extern const unsigned char dashboard_html[];
extern const size_t dashboard_html_len;

void dashboard_get(struct req *r, void *app)
{
	static const char *const allowed[] = { NULL };
	char *page;

	(void)app;
	if (req_query_unknown(r, allowed)) {
		reply_error(r, 400, "invalid_query", "/ takes no query parameters");
		return;
	}
	if (!(page = malloc(dashboard_html_len + 1))) {
		reply_error(r, 503, "unavailable", "out of memory");
		return;
	}
	memcpy(page, dashboard_html, dashboard_html_len);
	page[dashboard_html_len] = '\0';
	reply_header(r, "Cache-Control", "no-cache");
	reply_text(r, 200, "text/html; charset=utf-8", page);
}
