/* The capped buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

void buf_release(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

enum tally_err buf_add(struct buf *b, const void *p, size_t n)
{
	if (n > b->max - b->len)
		return TALLY_ETOOBIG;
	if (b->len + n + 1 > b->alloc) {
		size_t want = b->alloc ? b->alloc : 256;
		while (want < b->len + n + 1)
			want *= 2;
		if (want > b->max + 1)
			want = b->max + 1;
		char *d = realloc(b->data, want);
		if (!d)
			return TALLY_ENOMEM;
		b->data = d;
		b->alloc = want;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return TALLY_OK;
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

enum tally_err buf_add_file(struct buf *b, const char *path)
{
	char chunk[4096];
	enum tally_err rc = TALLY_OK;
	size_t n;
	FILE *fp = fopen(path, "rb");

	if (!fp)
		return TALLY_EIO;
	while (!rc && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		rc = buf_add(b, chunk, n);
	if (!rc && ferror(fp))
		rc = TALLY_EIO;
	fclose(fp);
	return rc;
}

enum tally_err buf_addf(struct buf *b, const char *fmt, ...)
{
	char small[256], *big = NULL;
	va_list ap;
	int n;
	enum tally_err rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return TALLY_EINVAL;
	if ((size_t)n < sizeof small)
		return buf_add(b, small, (size_t)n);
	if (!(big = malloc((size_t)n + 1)))
		return TALLY_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}
