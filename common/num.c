/* Strict decimal parsing. */
#include <string.h>
#include "num.h"

int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 20)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int num_parse_duration(const char *s, int64_t *ms)
{
	static const struct { char suffix; uint64_t ms; } units[] = {
		{ 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', 86400000 },
	};
	char digits[24];
	size_t n = s ? strlen(s) : 0;
	uint64_t v;

	if (n == 1 && s[0] == '0') {
		*ms = 0;
		return 0;
	}
	if (n < 2 || n > sizeof digits)
		return -1;
	memcpy(digits, s, n - 1);
	digits[n - 1] = '\0';
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (s[n - 1] == units[i].suffix) {
			if (num_parse_u64(digits, 0, (uint64_t)NUM_DURATION_MAX_MS / units[i].ms, &v))
				return -1;
			*ms = (int64_t)(v * units[i].ms);
			return 0;
		}
	return -1;
}
