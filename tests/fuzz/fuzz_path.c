/* libFuzzer target: ids in paths (/v1/jobs/<id>, /v1/leases/<id>/complete, ...). The router
 * (api/http.c) is libmicrohttpd's and static, so this takes what it hands on: the path is cut at
 * its first NUL (as libmicrohttpd does), not percent-decoded, split at '/', and every segment of
 * 1 to 127 bytes (what a route parameter holds) goes through decode_id(), checked against a plain
 * reference (canonical decimal 1..2^63-1) and read back, and through decode_lease_ref(), which
 * must take only the one form it prints. Each segment is copied to a heap buffer
 * of its exact size, so that a read past it shows. */
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

#define SEGMENT_MAX 128 /* api/http.c's HTTP_SEGMENT_MAX, with the NUL */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end;
	size_t n = strnlen(p, size);

	end = p + n;
	while (p < end) {
		size_t len = 0;
		while (p + len < end && p[len] != '/')
			len++;
		if (len >= 1 && len < SEGMENT_MAX) {
			char *seg = malloc(len + 1);
			if (!seg)
				abort();
			memcpy(seg, p, len);
			seg[len] = '\0';
			fuzz_check_id(seg);
			fuzz_check_lease_ref(seg);
			free(seg);
		}
		p += len + 1;
	}
	return 0;
}
