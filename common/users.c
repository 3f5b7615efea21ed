/* The users table: parsing a users file, the permission check on it, and finding a caller by
 * token in constant time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "buf.h"
#include "users.h"

struct users {
	struct user *v;
	size_t n, alloc;
};

static const char *const role_names[] = { [USER_USER] = "user", [USER_WORKER] = "worker",
					  [USER_ADMIN] = "admin" };

struct users *users_new(void)
{
	return calloc(1, sizeof(struct users));
}

void users_free(struct users *u)
{
	if (!u)
		return;
	/* Tokens are secrets: leave none behind in freed memory. */
	if (u->v)
		memset(u->v, 0, u->alloc * sizeof u->v[0]);
	free(u->v);
	free(u);
}

size_t users_count(const struct users *u)
{
	return u ? u->n : 0;
}

const char *user_role_name(enum user_role role)
{
	return (unsigned)role < sizeof role_names / sizeof role_names[0] ? role_names[role] : "?";
}

int user_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (!n || n >= USER_NAME_MAX)
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-") == n;
}

enum tally_err users_add(struct users *u, const char *name, enum user_role role,
			 const char *token, const char *from, char *err, size_t errlen)
{
	if (!user_name_ok(name)) {
		snprintf(err, errlen, "%s: '%.64s' is not a user name (1 to %d of A-Z, a-z, 0-9 and "
			 "._:@-)", from, name, USER_NAME_MAX - 1);
		return TALLY_EINVAL;
	}
	if (token_check(token, from, err, errlen))
		return TALLY_EINVAL;
	if (token[0] == '#') {
		snprintf(err, errlen, "%s: a token must not start with '#' (a comment)", from);
		return TALLY_EINVAL;
	}
	for (size_t i = 0; i < u->n; i++) {
		if (!strcmp(u->v[i].name, name)) {
			snprintf(err, errlen, "%s: user '%s' is already defined", from, name);
			return TALLY_EINVAL;
		}
		if (!strcmp(u->v[i].token, token)) {
			snprintf(err, errlen, "%s: user '%s' has the same token as user '%s'", from,
				 name, u->v[i].name);
			return TALLY_EINVAL;
		}
	}
	if (u->n == USERS_MAX) {
		snprintf(err, errlen, "%s: more than %d users", from, USERS_MAX);
		return TALLY_EINVAL;
	}
	if (u->n == u->alloc) {
		size_t alloc = u->alloc ? 2 * u->alloc : 8;
		struct user *v = calloc(alloc, sizeof *v);
		if (!v) {
			snprintf(err, errlen, "out of memory");
			return TALLY_ENOMEM;
		}
		if (u->v) {
			memcpy(v, u->v, u->n * sizeof *v);
			memset(u->v, 0, u->alloc * sizeof *v);
		}
		free(u->v);
		u->v = v;
		u->alloc = alloc;
	}
	snprintf(u->v[u->n].name, sizeof u->v[u->n].name, "%s", name);
	u->v[u->n].role = role;
	snprintf(u->v[u->n].token, sizeof u->v[u->n].token, "%s", token);
	u->n++;
	return TALLY_OK;
}

/* Splits line (changed in place) into at most max blank-separated fields, stopping at a
 * comment. Returns the number of fields, max + 1 when there are more. */
static size_t split(char *line, char **field, size_t max)
{
	size_t n = 0;
	char *p = line;

	for (;;) {
		p += strspn(p, " \t\r");
		if (!*p || *p == '#')
			return n;
		if (n == max)
			return max + 1;
		field[n++] = p;
		p += strcspn(p, " \t\r");
		if (*p)
			*p++ = '\0';
	}
}

enum tally_err users_parse(struct users *u, const char *text, const char *from, char *err,
			   size_t errlen)
{
	char *copy = strdup(text), *line, *next, *f[3], where[300];
	enum tally_err rc = TALLY_OK;
	size_t lineno = 0, nf, r;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return TALLY_ENOMEM;
	}
	for (line = copy; !rc && line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		snprintf(where, sizeof where, "%.256s:%zu", from, lineno);
		if (!(nf = split(line, f, 3)))
			continue;
		if (nf != 3) {
			snprintf(err, errlen, "%s: expected NAME ROLE TOKEN (%s fields)", where,
				 nf < 3 ? "too few" : "too many");
			rc = TALLY_EINVAL;
			break;
		}
		for (r = 0; r < sizeof role_names / sizeof role_names[0]; r++)
			if (!strcmp(f[1], role_names[r]))
				break;
		if (r == sizeof role_names / sizeof role_names[0]) {
			snprintf(err, errlen, "%s: role '%.32s': must be admin, user or worker", where,
				 f[1]);
			rc = TALLY_EINVAL;
			break;
		}
		rc = users_add(u, f[0], (enum user_role)r, f[2], where, err, errlen);
	}
	memset(copy, 0, strlen(text));
	free(copy);
	return rc;
}

enum tally_err users_load(struct users *u, const char *path, char *err, size_t errlen)
{
	struct buf b;
	struct stat st;
	char chunk[4096];
	enum tally_err rc = TALLY_OK;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return TALLY_EIO;
	}
	buf_init(&b, USERS_FILE_MAX);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		rc = TALLY_EIO;
		goto done;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "%s: permissions %04o are too open: the users file holds "
			 "tokens, and group and others must have no access to it (chmod 600 %s)",
			 path, (unsigned)(st.st_mode & 07777), path);
		rc = TALLY_EFORBIDDEN;
		goto done;
	}
	while (!rc && (n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			rc = TALLY_EIO;
		} else if ((rc = buf_add(&b, chunk, (size_t)n))) {
			snprintf(err, errlen, "%s: %s", path, rc == TALLY_ETOOBIG
				 ? "larger than 256 KiB" : "out of memory");
		}
	}
	if (!rc && strlen(buf_str(&b)) != b.len) {
		snprintf(err, errlen, "%s: holds a NUL byte", path);
		rc = TALLY_EINVAL;
	}
	if (!rc)
		rc = users_parse(u, buf_str(&b), path, err, errlen);
done:
	memset(chunk, 0, sizeof chunk);
	if (b.data)
		memset(b.data, 0, b.len);
	buf_release(&b);
	close(fd);
	return rc;
}

const struct user *users_find(const struct users *u, const char *token)
{
	const struct user *found = NULL;
	/* No early exit: every token is compared, whichever matches. */
	for (size_t i = 0; u && i < u->n; i++)
		if (token_equal(token, u->v[i].token))
			found = &u->v[i];
	return found;
}
