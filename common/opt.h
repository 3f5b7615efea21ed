/* Command-line options as a data table (after tmux's options-table.c): each option has a long
 * flag, an environment variable, a type, bounds and help. Flags override the environment, which
 * overrides the defaults already stored in each destination. */
#ifndef TALLY_OPT_H
#define TALLY_OPT_H

#include <stddef.h>
#include <stdint.h>

enum opt_type {
	OPT_STR,  /* dst is const char **, pointing into argv or environ */
	OPT_INT,  /* dst is int64_t *, within [min, max] */
	OPT_BOOL, /* dst is int *, set to 1 by the bare flag */
	OPT_LIST, /* dst is struct opt_list *: each flag (and the variable) adds an entry */
};

#define OPT_LIST_MAX 32

/* A repeatable option's values, in order: the variable's first, then each flag's. */
struct opt_list {
	const char *v[OPT_LIST_MAX];
	size_t n;
};

struct opt {
	const char *name; /* "listen" for --listen */
	const char *env;  /* "TALLY_LISTEN", or NULL */
	enum opt_type type;
	void *dst;
	int64_t min, max;
	const char *help;
};

/* Parses the environment, then argv. Returns 0 to go on, 1 when --help or --version was
 * printed (exit 0), 2 after printing an error to stderr (exit 2). */
int opt_parse(const struct opt *opts, size_t n, int argc, char **argv, const char *prog,
	      const char *summary);

#endif
