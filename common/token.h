/* Bearer tokens: loading one from the environment or a file, and comparing in constant time.
 * A token is 16 to TOKEN_MAX - 1 printable ASCII characters without spaces. */
#ifndef TALLY_TOKEN_H
#define TALLY_TOKEN_H

#include <stddef.h>
#include "err.h"
#include "wire.h"

#define TOKEN_MAX WIRE_TOKEN_MAX
#define TOKEN_MIN_LEN 16

/* Fills out[TOKEN_MAX] with the token named by file (its first line) when file is non-empty,
 * else with value (an environment variable's; may be NULL); "" when neither is set.
 * TALLY_EINVAL (with why in err) for a malformed token; TALLY_EIO for an unreadable file. */
TALLY_WUR enum tally_err token_load(const char *value, const char *file, char *out, char *err,
				    size_t errlen);
/* Checks that t is a well-formed token; TALLY_EINVAL with why in err, prefixed with from (a
 * file, or a file and line), otherwise. Never writes the token itself into err. */
TALLY_WUR enum tally_err token_check(const char *t, const char *from, char *err, size_t errlen);
/* Returns 1 when given equals expected. The time taken depends only on expected's length. */
int token_equal(const char *given, const char *expected);

#endif
