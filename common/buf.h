/* A growable byte buffer with a hard cap set at creation (after curl's dynbuf).
 * Every buffer that input fills is a struct buf. The contents are always NUL-terminated. */
#ifndef TALLY_BUF_H
#define TALLY_BUF_H

#include <stddef.h>
#include "err.h"

struct buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t alloc;
	size_t max;   /* len never exceeds this */
};

/* Prepares an empty buffer that will refuse to grow past max bytes. Can't fail. */
void buf_init(struct buf *b, size_t max);
/* Frees the contents; the buffer is empty again and may be reused. */
void buf_release(struct buf *b);
/* Appends n bytes. Returns TALLY_ETOOBIG past the cap (nothing appended), TALLY_ENOMEM. */
TALLY_WUR enum tally_err buf_add(struct buf *b, const void *p, size_t n);
/* Returns the contents (never NULL: "" when empty), borrowed until the next append or release. */
const char *buf_str(const struct buf *b);
/* Appends printf-style text. TALLY_ETOOBIG past the cap, TALLY_ENOMEM. */
TALLY_WUR enum tally_err buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends the whole file at path. TALLY_EIO (errno says why), TALLY_ETOOBIG, TALLY_ENOMEM. */
TALLY_WUR enum tally_err buf_add_file(struct buf *b, const char *path);

#endif
