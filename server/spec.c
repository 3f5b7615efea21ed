/* The speculative execution policy (spec.h): expected finishes, and whether a copy would win. */
#include "spec.h"

int64_t spec_duration(uint64_t samples, double rate)
{
	double ms = (double)samples * 1000.0 / rate;
	if (ms < 1)
		return 1;
	return ms > 1e15 ? (int64_t)1e15 : (int64_t)ms; /* about 30,000 years: never a wake time */
}

int64_t spec_expect(const struct spec_lease *l, int64_t now)
{
	int64_t finish = l->granted_at + spec_duration(l->samples, l->rate);
	return finish > now ? finish : now + (now - l->granted_at);
}

int spec_worth(const struct spec_lease *l, double rate, int64_t now)
{
	int64_t left = spec_expect(l, now) - now;
	return (double)spec_duration(l->samples, rate) <= SPEC_GAIN * (double)left;
}

int64_t spec_look_at(const struct spec_lease *l, int64_t now)
{
	int64_t at = l->granted_at + 2 * spec_duration(l->samples, l->rate);
	return at > now ? at : 0;
}

void spec_earlier(int64_t *at, int64_t t)
{
	if (t && (!*at || t < *at))
		*at = t;
}
