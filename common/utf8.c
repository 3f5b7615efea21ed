/* Scrubbing text into valid UTF-8, for replies that quote what a client sent. */
#include <stddef.h>
#include "utf8.h"

void utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
						: (*p & 0xF8) == 0xF0 ? 4 : 0;
		size_t i = 1;
		while (n > 1 && i < n && (p[i] & 0xC0) == 0x80)
			i++;
		if (n == 0 || i < n || (n == 2 && *p < 0xC2) ||
		    (n == 3 && *p == 0xE0 && p[1] < 0xA0) || (n == 3 && *p == 0xED && p[1] >= 0xA0) ||
		    (n == 4 && *p == 0xF0 && p[1] < 0x90) || (n == 4 && (*p > 0xF4 ||
		    (*p == 0xF4 && p[1] >= 0x90)))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}
