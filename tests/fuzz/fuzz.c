/* The checks every libFuzzer target shares (fuzz.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

void fuzz_die(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: invariant broken: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Fills e with what no decoder writes (no code, no NUL), so that a refusal that forgets its
 * message shows. */
static void poison(struct decode_error *e)
{
	e->code = NULL;
	memset(e->message, 0xff, sizeof e->message);
}

/* Checks the code and that the message is a non-empty string inside its buffer. */
static void check_message(const struct decode_error *e)
{
	FUZZ_CHECK(e->code, "refusal without a code");
	FUZZ_CHECK(memchr(e->message, '\0', sizeof e->message), "message not NUL-terminated");
	FUZZ_CHECK(e->message[0], "empty message (code %s)", e->code);
}

/* Returns 1 when data holds the n bytes at s. */
static int contains(const uint8_t *data, size_t size, const char *s, size_t n)
{
	for (size_t i = 0; i + n <= size; i++)
		if (!memcmp(data + i, s, n))
			return 1;
	return 0;
}

/* Checks decode_json()'s refusal of data (fuzz_run_body()). */
static void check_json_refusal(const struct decode_error *e, const uint8_t *data, size_t size)
{
	static const char range[] = ": number out of range";
	const char *at, *last = NULL;
	size_t klen;

	check_message(e);
	if (!strcmp(e->code, "invalid_json")) {
		FUZZ_CHECK(!strncmp(e->message, "body: ", 6), "invalid_json message '%s'",
			   e->message);
		return;
	}
	FUZZ_CHECK(!strcmp(e->code, "invalid_field"), "decode_json code %s", e->code);
	/* "<key>: number out of range (...)": the key may hold that text too. */
	for (at = e->message; (at = strstr(at, range)); at++)
		last = at;
	FUZZ_CHECK(last, "invalid_field message '%s'", e->message);
	klen = (size_t)(last - e->message);
	FUZZ_CHECK(klen >= 1 && klen <= 64, "invalid_field message '%s'", e->message);
	/* The key is the body's raw text, "body" when the number is no member's. */
	FUZZ_CHECK((klen == 4 && !strncmp(e->message, "body", 4)) ||
		   contains(data, size, e->message, klen),
		   "invalid_field message '%s' names no key of the body", e->message);
}

int fuzz_number_is(const json_t *v, uint64_t x)
{
	if (json_is_integer(v))
		return json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) == x;
	if (json_is_real(v)) {
		double d = json_real_value(v);
		return d >= 0 && d < 18446744073709551616.0 && (uint64_t)d == x && (double)x == d;
	}
	return 0;
}

int fuzz_ref_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = strlen(s);

	if (n < 1 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - d)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int fuzz_ref_id(const char *s, int64_t *out)
{
	uint64_t v;

	if (s[0] < '1' || s[0] > '9' || fuzz_ref_u64(s, 1, INT64_MAX, &v))
		return -1;
	*out = (int64_t)v;
	return 0;
}

void fuzz_check_number(const char *s, uint64_t min, uint64_t max)
{
	uint64_t got = 0, want = 0;
	int rc = num_parse_u64(s, min, max, &got), ref = fuzz_ref_u64(s, min, max, &want);

	FUZZ_CHECK(rc == ref && (rc || got == want),
		   "num_parse_u64('%.64s', %llu, %llu): %d %llu, expected %d %llu", s,
		   (unsigned long long)min, (unsigned long long)max, rc, (unsigned long long)got,
		   ref, (unsigned long long)want);
}

void fuzz_check_id(const char *s)
{
	int64_t got = 0, want = 0;
	int rc = decode_id(s, &got), ref = fuzz_ref_id(s, &want);
	char back[24];

	FUZZ_CHECK(rc == ref && (rc || got == want), "decode_id('%.64s'): %d %lld, expected %d %lld",
		   s, rc, (long long)got, ref, (long long)want);
	if (rc)
		return;
	/* Ids go out as decimal text (Location, next_cursor): they read back as the same text. */
	snprintf(back, sizeof back, "%lld", (long long)got);
	FUZZ_CHECK(!strcmp(back, s), "decode_id('%s') prints as '%s'", s, back);
}

void fuzz_check_lease_ref(const char *s)
{
	int64_t id = 0;
	uint64_t tag = 0;
	char back[64];

	if (decode_lease_ref(s, &id, &tag))
		return;
	/* One form only: what the coordinator prints (api/leases.c) reads back as the same text. */
	snprintf(back, sizeof back, "%lld-%016llx", (long long)id, (unsigned long long)tag);
	FUZZ_CHECK(!strcmp(back, s), "decode_lease_ref('%.64s') prints as '%s'", s, back);
}

int fuzz_utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
						: (*p & 0xF8) == 0xF0 ? 4 : 0;
		size_t i = 1;
		if (!n)
			return 0; /* a stray continuation byte, or 0xF8..0xFF */
		while (i < n && (p[i] & 0xC0) == 0x80)
			i++;
		/* Complete sequences must not be overlong, surrogates or past U+10FFFF. */
		if (i == n && ((n == 2 && *p < 0xC2) || (n == 3 && *p == 0xE0 && p[1] < 0xA0) ||
			       (n == 3 && *p == 0xED && p[1] >= 0xA0) ||
			       (n == 4 && *p == 0xF0 && p[1] < 0x90) ||
			       (n == 4 && (*p > 0xF4 || (*p == 0xF4 && p[1] >= 0x90)))))
			return 0;
		p += i;
	}
	return 1;
}

/* Returns 1 when the message starts with name followed by ':', '.' or '['. */
static int names(const char *msg, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(msg, name, n) && msg[n] && strchr(":.[", msg[n]);
}

/* Returns 1 when the message is "<key cut to 64 bytes>: unknown field" for a key of body. */
static int names_unknown_key(const char *msg, const json_t *body)
{
	static const char tail[] = ": unknown field";
	size_t len = strlen(msg), klen;
	const char *key;
	json_t *v;

	if (len < sizeof tail - 1 || strcmp(msg + len - (sizeof tail - 1), tail))
		return 0;
	klen = len - (sizeof tail - 1);
	if (!json_is_object(body))
		return 0;
	json_object_foreach((json_t *)body, key, v) {
		size_t n = strlen(key) < 64 ? strlen(key) : 64;
		if (n == klen && !strncmp(key, msg, klen))
			return 1;
	}
	return 0;
}

/* Checks a decoder's refusal of body (fuzz_run_body()). */
static void check_refusal(const struct decode_error *e, const json_t *body,
			  const char *const *fields)
{
	size_t i;

	check_message(e);
	FUZZ_CHECK(!strcmp(e->code, "invalid_json") || !strcmp(e->code, "invalid_field") ||
		   !strcmp(e->code, "missing_field") || !strcmp(e->code, "unknown_field"),
		   "unknown code %s", e->code);
	FUZZ_CHECK(fuzz_utf8_ok(e->message), "message not UTF-8: '%s'", e->message);
	if (!strcmp(e->code, "unknown_field") && names_unknown_key(e->message, body))
		return;
	for (i = 0; fields[i]; i++)
		if (names(e->message, fields[i]))
			return;
	FUZZ_CHECK(0, "%s message names no field: '%s'", e->code, e->message);
}

int fuzz_run_body(const uint8_t *data, size_t size, const struct fuzz_decoder *d, void *out)
{
	struct decode_error e;
	json_t *body = NULL;

	if (!size && !d->empty_body)
		return 0;
	if (size) {
		poison(&e);
		body = decode_json((const char *)data, size, &e);
		if (!body) {
			check_json_refusal(&e, data, size);
			return 0;
		}
	}
	poison(&e);
	if (d->decode(body, out, &e)) {
		check_refusal(&e, body, d->fields);
		if (d->refused)
			d->refused(body);
	} else {
		d->accepted(body, out);
	}
	json_decref(body);
	return 0;
}
