/* A seed's JSON form, the same on both sides of the wire. */
#include <stdio.h>
#include <string.h>
#include "num.h"
#include "seed.h"

json_t *seed_json(uint64_t seed)
{
	char s[24];
	if (seed <= INT64_MAX)
		return json_integer((json_int_t)seed);
	snprintf(s, sizeof s, "%llu", (unsigned long long)seed);
	return json_string(s);
}

int seed_parse(const json_t *v, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
		return num_parse_u64(json_string_value(v), 0, UINT64_MAX, out);
	return -1;
}
