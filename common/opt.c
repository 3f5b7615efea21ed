/* The option-table parser shared by tally-server and tally-worker. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "opt.h"

/* Stores text into o's destination. Returns 0, or 2 after printing why not. */
static int opt_set(const struct opt *o, const char *text, const char *from)
{
	char *end;
	long long v;

	switch (o->type) {
	case OPT_STR:
		*(const char **)o->dst = text;
		return 0;
	case OPT_BOOL:
		*(int *)o->dst = !(text && (!strcmp(text, "0") || !strcmp(text, "false")));
		return 0;
	case OPT_LIST: {
		struct opt_list *l = o->dst;
		if (l->n == OPT_LIST_MAX) {
			fprintf(stderr, "%s: at most %d times\n", from, OPT_LIST_MAX);
			return 2;
		}
		l->v[l->n++] = text;
		return 0;
	}
	case OPT_INT:
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno || end == text || *end || v < o->min || v > o->max) {
			fprintf(stderr, "%s: must be an integer from %" PRId64 " to %" PRId64
					", not '%s'\n", from, o->min, o->max, text);
			return 2;
		}
		*(int64_t *)o->dst = v;
		return 0;
	}
	return 2;
}

static void opt_usage(const struct opt *opts, size_t n, const char *prog, const char *summary)
{
	printf("Usage: %s [OPTIONS]\n%s\n\nOptions (flag, environment variable, default):\n", prog,
	       summary);
	for (size_t i = 0; i < n; i++) {
		const struct opt *o = &opts[i];
		char def[64] = "";
		if (o->type == OPT_STR && *(const char **)o->dst)
			snprintf(def, sizeof def, " [%s]", *(const char **)o->dst);
		else if (o->type == OPT_INT)
			snprintf(def, sizeof def, " [%" PRId64 "]", *(int64_t *)o->dst);
		printf("  --%-16s %-22s %s%s\n", o->name, o->env ? o->env : "", o->help, def);
	}
	printf("  --%-16s %-22s %s\n  --%-16s %-22s %s\n", "help", "", "print this and exit",
	       "version", "", "print the version and exit");
}

int opt_parse(const struct opt *opts, size_t n, int argc, char **argv, const char *prog,
	      const char *summary)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
		if (v && *v) {
			int rc = opt_set(&opts[i], v, opts[i].env);
			if (rc)
				return rc;
		}
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];
		const char *val = NULL;
		size_t len;
		size_t i;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			opt_usage(opts, n, prog, summary);
			return 1;
		}
		if (!strcmp(arg, "--version")) {
			printf("%s %s\n", prog, TALLY_VERSION);
			return 1;
		}
		if (strncmp(arg, "--", 2)) {
			fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", prog, arg);
			return 2;
		}
		arg += 2;
		len = strcspn(arg, "=");
		if (arg[len] == '=')
			val = arg + len + 1;
		for (i = 0; i < n; i++)
			if (strlen(opts[i].name) == len && !strncmp(opts[i].name, arg, len))
				break;
		if (i == n) {
			fprintf(stderr, "%s: unknown option '--%.*s' (try --help)\n", prog, (int)len,
				arg);
			return 2;
		}
		if (!val && opts[i].type != OPT_BOOL) {
			if (a + 1 >= argc) {
				fprintf(stderr, "%s: --%s needs a value\n", prog, opts[i].name);
				return 2;
			}
			val = argv[++a];
		}
		char from[64];
		snprintf(from, sizeof from, "--%s", opts[i].name);
		int rc = opt_set(&opts[i], val, from);
		if (rc)
			return rc;
	}
	return 0;
}
