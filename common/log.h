/* One log line per event on stderr: logfmt (`ts=... level=info msg="..." key=value`) or, with
 * LOG_JSON, the same keys as one JSON object per line (integers as numbers). */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_LOGFMT, LOG_JSON };

/* Sets the lowest level written; the default is LOG_INFO. */
void log_set_level(enum log_level level);
/* Sets the line format; the default is LOG_LOGFMT. */
void log_set_format(enum log_format format);
/* Parses "logfmt" or "json". Returns 0, or -1 for anything else. */
int log_parse_format(const char *s, enum log_format *out);
/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 for anything else. */
int log_parse_level(const char *s, enum log_level *out);
/* Writes one line: fmt is the rest of the line after ts= and level=, e.g. "msg=started port=%d".
 * Lines are written whole (one write per line). Can't fail; a line over 2 KiB is truncated. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies s into out (outlen bytes) so that it can stand inside a quoted logfmt value: quotes,
 * backslashes and control characters become '?'. Returns out. Can't fail. */
const char *log_clean(const char *s, char *out, size_t outlen);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
