/* The logger: logfmt lines on stderr, each written with a single write(2). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "timefmt.h"

static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	log_min = level;
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, log_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	char ts[32];
	va_list ap;
	int n;

	if (level < log_min)
		return;
	timefmt_rfc3339(timefmt_now_ms(), ts, sizeof ts);
	n = snprintf(line, sizeof line, "ts=%s level=%s ", ts, log_names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof line - 1)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

const char *log_clean(const char *s, char *out, size_t outlen)
{
	size_t i = 0;
	for (; s[i] && i + 1 < outlen; i++)
		out[i] = (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				 ? '?'
				 : s[i];
	out[i] = '\0';
	return out;
}
