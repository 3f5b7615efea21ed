/* --idle-exit's policy (idle.h). */
#include "idle.h"

void idle_init(struct idle *i, int64_t limit_s, int64_t now_ms)
{
	i->limit_ms = limit_s > 0 ? limit_s * 1000 : 0;
	i->since_ms = now_ms;
}

void idle_lease_ended(struct idle *i, int64_t now_ms)
{
	i->since_ms = now_ms;
}

int idle_expired(const struct idle *i, int64_t now_ms)
{
	return i->limit_ms > 0 && now_ms - i->since_ms >= i->limit_ms;
}

int idle_wait_s(const struct idle *i, int64_t now_ms, int wait_s)
{
	int64_t left_ms, left_s;

	if (i->limit_ms <= 0)
		return wait_s;
	left_ms = i->since_ms + i->limit_ms - now_ms;
	left_s = (left_ms + 999) / 1000;
	if (left_s < 1)
		left_s = 1;
	return left_s < wait_s ? (int)left_s : wait_s;
}
