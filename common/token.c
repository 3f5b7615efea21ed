/* Bearer tokens. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "token.h"

enum tally_err token_check(const char *t, const char *from, char *err, size_t errlen)
{
	size_t n = strlen(t);
	if (n < TOKEN_MIN_LEN || n >= TOKEN_MAX) {
		snprintf(err, errlen, "%s: a token must be %d to %d characters", from, TOKEN_MIN_LEN,
			 TOKEN_MAX - 1);
		return TALLY_EINVAL;
	}
	for (; *t; t++) {
		if (*t <= ' ' || *t > '~') {
			snprintf(err, errlen, "%s: a token must be printable ASCII without spaces",
				 from);
			return TALLY_EINVAL;
		}
	}
	return TALLY_OK;
}

enum tally_err token_load(const char *value, const char *file, char *out, char *err,
			  size_t errlen)
{
	char line[TOKEN_MAX + 2];
	FILE *fp;
	size_t n;

	out[0] = '\0';
	if (file && file[0]) {
		if (!(fp = fopen(file, "r"))) {
			snprintf(err, errlen, "%s: %s", file, strerror(errno));
			return TALLY_EIO;
		}
		if (!fgets(line, sizeof line, fp))
			line[0] = '\0';
		fclose(fp);
		n = strlen(line);
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (token_check(line, file, err, errlen))
			return TALLY_EINVAL;
		memcpy(out, line, n + 1);
		return TALLY_OK;
	}
	if (!value || !value[0])
		return TALLY_OK;
	if (token_check(value, "the token in the environment", err, errlen))
		return TALLY_EINVAL;
	memcpy(out, value, strlen(value) + 1);
	return TALLY_OK;
}

int token_equal(const char *given, const char *expected)
{
	size_t ng = strlen(given), ne = strlen(expected);
	unsigned char diff = ng != ne;
	/* Every byte of expected is compared, against given's bytes cycled: no early exit. */
	for (size_t i = 0; i < ne; i++)
		diff |= (unsigned char)(expected[i] ^ given[ng ? i % ng : 0]);
	return ne && !diff;
}
