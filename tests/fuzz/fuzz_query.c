/* libFuzzer target: the query strings of GET /v1/jobs and GET /v1/jobs/<id> (api/jobs.c). The
 * query is split by libmicrohttpd (not ours, and reached only through a connection), so this
 * splits it the same way: cut at the first NUL, not percent-decoded, pairs at '&', key and value
 * at the first '=' ("?limit" has the empty value). Each value goes through the parser jobs.c
 * gives its key (state, limit, cursor, wait_s), checked against a plain reference; every value
 * also goes through num_parse_u64() over its full range and decode_id(). Values are copied to
 * heap buffers of their exact size, so that a read past one shows. */
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "fuzz.h"

#define LIMIT_MAX 1000 /* api/jobs.c's JOBS_LIMIT_MAX */

/* Checks job_state_parse() against the state names. */
static void check_state(const char *s)
{
	enum job_state got = JOB_QUEUED;
	int rc = job_state_parse(s, &got), want = -1;

	for (int i = JOB_QUEUED; i <= JOB_CANCELLED; i++)
		if (!strcmp(job_state_name((enum job_state)i), s))
			want = i;
	FUZZ_CHECK(rc ? want < 0 : (int)got == want, "job_state_parse('%.64s'): %d %d, expected %d",
		   s, rc, (int)got, want);
}

static void check_pair(const char *key, const char *value)
{
	if (!strcmp(key, "state"))
		check_state(value);
	else if (!strcmp(key, "limit"))
		fuzz_check_number(value, 1, LIMIT_MAX);
	else if (!strcmp(key, "wait_s"))
		fuzz_check_number(value, 0, API_WAIT_MAX_S);
	fuzz_check_number(value, 0, UINT64_MAX);
	fuzz_check_id(value); /* cursor */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end;
	size_t n = strnlen(p, size);

	end = p + n;
	while (p < end) {
		size_t len = 0, klen = 0;
		char *key, *value;

		while (p + len < end && p[len] != '&')
			len++;
		while (klen < len && p[klen] != '=')
			klen++;
		key = malloc(klen + 1);
		value = malloc(klen < len ? len - klen : 1);
		if (!key || !value)
			abort();
		memcpy(key, p, klen);
		key[klen] = '\0';
		if (klen < len)
			memcpy(value, p + klen + 1, len - klen - 1);
		value[klen < len ? len - klen - 1 : 0] = '\0';
		check_pair(key, value);
		free(key);
		free(value);
		p += len + 1;
	}
	return 0;
}
