/* The logger: logfmt or JSON lines on stderr, each written with a single write(2). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "log.h"
#include "num.h"
#include "timefmt.h"

static enum log_level log_min = LOG_INFO;
static int log_json; /* one JSON object per line instead of logfmt */

/* Turns a logfmt line (no newline) into a JSON object: key=value pairs, values quoted or bare,
 * a bare integer as a number. Returns a new reference, or NULL when the line is not logfmt or
 * out of memory. */
static json_t *log_to_json(const char *p)
{
	json_t *o = json_object();
	char key[64], val[2048];

	while (o && *p) {
		size_t k = strcspn(p, "= "), v = 0;
		uint64_t n;
		int quoted;
		if (p[k] != '=' || !k || k >= sizeof key)
			goto bad;
		memcpy(key, p, k);
		key[k] = '\0';
		p += k + 1;
		quoted = *p == '"';
		if (quoted) {
			for (p++; *p && *p != '"' && v + 1 < sizeof val; p++)
				val[v++] = (*p == '\\' && p[1]) ? *++p : *p;
			if (*p++ != '"')
				goto bad;
		} else {
			while (*p && *p != ' ' && v + 1 < sizeof val)
				val[v++] = *p++;
		}
		val[v] = '\0';
		if (json_object_set_new(o, key, !quoted && !num_parse_u64(val, 0, INT64_MAX, &n)
							? json_integer((json_int_t)n)
							: json_string(val)))
			goto bad;
		while (*p == ' ')
			p++;
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}
static const char *const log_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	log_min = level;
}

int log_configure(const char *prog, const char *level, const char *format)
{
	int i = 0;
	while (i < 4 && strcmp(level, log_names[i]))
		i++;
	if (i == 4) {
		fprintf(stderr, "%s: --log-level: must be debug, info, warn or error\n", prog);
		return -1;
	}
	if (strcmp(format, "logfmt") && strcmp(format, "json")) {
		fprintf(stderr, "%s: --log-format: must be logfmt or json\n", prog);
		return -1;
	}
	log_min = (enum log_level)i;
	log_json = !strcmp(format, "json");
	return 0;
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
	if (log_json) {
		json_t *o;
		char *text;
		line[n] = '\0';
		o = log_to_json(line);
		if (!o) /* not logfmt after all: the line whole, as the message */
			o = json_pack("{s:s,s:s,s:s}", "ts", ts, "level", log_names[level], "msg",
				      line);
		text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(o);
		if (text) {
			size_t len = strlen(text);
			text[len] = '\n'; /* over the NUL: one write, as for logfmt */
			if (write(STDERR_FILENO, text, len + 1) < 0)
				len = 0;
			free(text);
			return;
		}
	}
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

const char *text_ascii(const char *s, char *out, size_t outlen)
{
	size_t i = 0;
	for (; s[i] && i + 1 < outlen; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	return out;
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
