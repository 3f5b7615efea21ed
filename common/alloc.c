/* The allocator seam (alloc.h): the C library's allocator, with a countdown that tests arm to
 * make an allocation fail. */
#include <stdlib.h>
#include <string.h>
#include "alloc.h"

static long countdown = -1; /* -1: never fail */
static int sticky;

/* Returns 1 when this allocation must fail. */
static int alloc_refused(void)
{
	if (countdown < 0)
		return 0;
	if (countdown > 0) {
		countdown--;
		return 0;
	}
	if (!sticky)
		countdown = -1;
	return 1;
}

void *t_malloc(size_t n)
{
	return alloc_refused() ? NULL : malloc(n);
}

void *t_calloc(size_t n, size_t size)
{
	return alloc_refused() ? NULL : calloc(n, size);
}

void *t_realloc(void *p, size_t n)
{
	return alloc_refused() ? NULL : realloc(p, n);
}

char *t_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = t_malloc(n);
	if (copy)
		memcpy(copy, s, n);
	return copy;
}


void alloc_fail_after(long after, int stick)
{
	countdown = after < 0 ? 0 : after;
	sticky = stick;
}

void alloc_fail_never(void)
{
	countdown = -1;
	sticky = 0;
}

