/* tally-loadgen's HTTP/1.1 reply parser: a status line, headers and a Content-Length body, as
 * tally-server sends them; anything else (chunked, no length, over the cap) is refused, which the
 * load generator counts as a broken connection. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "loadgen.h"
#include "num.h"

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

static int header_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && !strncasecmp(name, want, len);
}

/* Does the comma-separated value hold the token "close"? */
static int has_close_token(const char *v, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t s, e;
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == 5 && !strncasecmp(v + s, "close", 5))
			return 1;
	}
	return 0;
}

/* The length of p's first line (up to CR or LF), at most max, within len bytes. */
static size_t strcspn_n(const char *p, size_t len, size_t max)
{
	size_t n = 0;
	while (n < len && n < max && p[n] != '\r' && p[n] != '\n')
		n++;
	return n;
}

int parse_response(const char *p, size_t len, struct resp *r, char *why, size_t whylen)
{
	size_t end = 0, line, cl = 0;
	int has_cl = 0;

	memset(r, 0, sizeof *r);
	for (size_t i = 0; i + 3 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
			end = i + 2; /* just past the last header line's CRLF */
			break;
		}
	if (!end) {
		if (len >= 5 && memcmp(p, "HTTP/", 5)) {
			snprintf(why, whylen, "reply does not start with HTTP/");
			return -1;
		}
		return 0;
	}
	/* "HTTP/1.1 200 OK\r\n" */
	if (end < 14 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (p[12] != ' ' && p[12] != '\r')) {
		snprintf(why, whylen, "bad status line '%.*s'", (int)strcspn_n(p, end, 40), p);
		return -1;
	}
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->close = p[7] == '0'; /* HTTP/1.0: closes unless it says keep-alive */
	line = (size_t)((const char *)memchr(p, '\n', end) - p) + 1;
	while (line < end) {
		const char *ls = p + line, *le = memchr(ls, '\n', end - line), *colon, *v, *ve;
		if (!le || le == ls || le[-1] != '\r') {
			snprintf(why, whylen, "header line not ended by CRLF");
			return -1;
		}
		line = (size_t)(le - p) + 1;
		ve = le - 1; /* the \r */
		colon = memchr(ls, ':', (size_t)(ve - ls));
		if (!colon) {
			snprintf(why, whylen, "header line without a colon");
			return -1;
		}
		v = colon + 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t nlen = (size_t)(colon - ls), vlen = (size_t)(ve - v);
		if (header_is(ls, nlen, "Content-Length")) {
			char num[24];
			uint64_t n;
			if (vlen == 0 || vlen >= sizeof num) {
				snprintf(why, whylen, "bad Content-Length");
				return -1;
			}
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			if (num_parse_u64(num, 0, UINT64_MAX, &n) || (has_cl && n != cl)) {
				snprintf(why, whylen, "bad Content-Length '%s'", num);
				return -1;
			}
			if (n > IN_CAP) {
				snprintf(why, whylen, "body of %" PRIu64 " bytes is over the %d-byte cap",
					 n, IN_CAP);
				return -1;
			}
			cl = (size_t)n;
			has_cl = 1;
		} else if (header_is(ls, nlen, "Transfer-Encoding")) {
			snprintf(why, whylen, "Transfer-Encoding '%.*s' is not supported",
				 (int)(vlen > 40 ? 40 : vlen), v);
			return -1;
		} else if (header_is(ls, nlen, "Connection")) {
			if (has_close_token(v, vlen))
				r->close = 1;
			else if (vlen == 10 && !strncasecmp(v, "keep-alive", 10))
				r->close = 0;
		}
	}
	if (!has_cl) {
		if (r->status / 100 != 1 && r->status != 204 && r->status != 304) {
			snprintf(why, whylen, "%d reply without Content-Length", r->status);
			return -1;
		}
		cl = 0;
	}
	r->hdr_len = end + 2;
	if (len - r->hdr_len < cl)
		return 0;
	r->body_len = cl;
	return 1;
}
