/* The allocator seam: every allocation of the coordinator's state goes through these, so that a
 * test can make the n-th one fail and drive the out-of-memory and reload-from-the-store paths
 * (tests/unit/test_live.c and test_coord.c show how). In product code they are malloc, calloc
 * and realloc, and nothing ever arms a failure.
 *
 * The countdown is a plain global: arm it only from a single-threaded test. */
#ifndef TALLY_ALLOC_H
#define TALLY_ALLOC_H

#include <stddef.h>

/* As malloc, calloc and realloc; NULL when out of memory (or when a test said so). */
void *t_malloc(size_t n);
void *t_calloc(size_t n, size_t size);
void *t_realloc(void *p, size_t n);
/* As strdup: a copy of s through t_malloc, or NULL. */
char *t_strdup(const char *s);

/* Tests: the allocation `after` calls from now fails, and every one after it too when sticky
 * (after 0: the very next). alloc_fail_never() disarms. */
void alloc_fail_after(long after, int sticky);
void alloc_fail_never(void);

#endif
