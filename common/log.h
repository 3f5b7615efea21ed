/* One log line per event on stderr: logfmt (`ts=... level=info msg="..." key=value`) or, with
 * LOG_JSON, the same keys as one JSON object per line (integers as numbers). */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level written; the default is LOG_INFO. */
void log_set_level(enum log_level level);
/* Sets the level ("debug", "info", "warn" or "error") and the format ("logfmt" or "json") from
 * a program's --log-level and --log-format. Returns 0, or -1 after printing which is wrong,
 * prefixed with prog, to stderr. */
int log_configure(const char *prog, const char *level, const char *format);
/* Writes one line: fmt is the rest of the line after ts= and level=, e.g. "msg=started port=%d".
 * Lines are written whole (one write per line). Can't fail; a line over 2 KiB is truncated. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies s into out (outlen bytes) so that it can stand inside a quoted logfmt value: quotes,
 * backslashes and control characters become '?'. Returns out. Can't fail. */
const char *log_clean(const char *s, char *out, size_t outlen);
/* Copies s into out (capped), every byte outside printable ASCII as '?': valid JSON text
 * whatever bytes s held (a program's stderr, a reason cut inside a UTF-8 character). */
const char *text_ascii(const char *s, char *out, size_t outlen);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
