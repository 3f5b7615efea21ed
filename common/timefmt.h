/* Wall-clock time as milliseconds since the Unix epoch, and its RFC 3339 spelling. */
#ifndef TALLY_TIMEFMT_H
#define TALLY_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Returns the current wall-clock time in ms since the epoch. Can't fail. */
int64_t timefmt_now_ms(void);
/* Returns a monotonic time in ms (for intervals, never stored). Can't fail. */
int64_t timefmt_mono_ms(void);
/* The same clock in microseconds (for latencies). Can't fail. */
int64_t timefmt_mono_us(void);
/* Returns the monotonic time (timefmt_mono_ms) at which wall-clock time wall_ms comes, at least
 * 1, or 0 for wall_ms 0 (none). The two clocks are read at different instants, so it is 2 ms late
 * rather than early. Can't fail. */
int64_t timefmt_mono_at(int64_t wall_ms);
/* Writes "2026-11-26T06:30:00.123Z" (24 chars + NUL) into out; len must be >= 25. */
void timefmt_rfc3339(int64_t ms, char *out, size_t len);

#endif
