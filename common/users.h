/* Users: who may call the coordinator's API, in which role, with which bearer token.
 *
 * A users file holds one user a line: `NAME ROLE TOKEN`, separated by blanks (spaces or tabs).
 * A `#` at the start of a line or after a blank starts a comment, to the end of the line; blank
 * lines are skipped. NAME is 1 to 64 of [A-Za-z0-9._:@-]; ROLE is `admin`, `user` or `worker`;
 * TOKEN follows token.h's rules (16 to 256 printable ASCII characters without spaces, not
 * starting with `#`). Names and tokens are each unique. A file that group or others may read or
 * write is refused, as ssh refuses such a private key.
 *
 * A table is built (users_parse, users_load, users_add) and then only read. Reading it is pure;
 * it is not thread-safe to change, so a new one is built and handed over whole (api/api.h). */
#ifndef TALLY_USERS_H
#define TALLY_USERS_H

#include <stddef.h>
#include "err.h"
#include "token.h"
#include "wire.h"

#define USER_NAME_MAX WIRE_USER_NAME_MAX /* a name, with the NUL */
#define USERS_MAX 1024                   /* users one table holds */
#define USERS_FILE_MAX (256 * 1024)      /* bytes of a users file */

/* What a user may do: submit and see its own jobs; the lease API only; every job and the admin
 * verbs. (The least power is 0: a caller left zeroed is an ordinary user.) */
enum user_role { USER_USER, USER_WORKER, USER_ADMIN };

struct user {
	char name[USER_NAME_MAX];
	enum user_role role;
	char token[TOKEN_MAX];
};

struct users;

/* Returns a new empty table, or NULL when out of memory. */
struct users *users_new(void);
/* Frees u (and the tokens it holds, cleared first). Accepts NULL. */
void users_free(struct users *u);
/* Adds one user. TALLY_EINVAL with why in err (prefixed with from, e.g. "users:3") for a bad
 * name or token, a name or token already in u, or a full table; TALLY_ENOMEM. u is unchanged
 * on failure. */
TALLY_WUR enum tally_err users_add(struct users *u, const char *name, enum user_role role,
				   const char *token, const char *from, char *err, size_t errlen);
/* Adds the users of text (a users file's contents, NUL-terminated; from names it in messages).
 * TALLY_EINVAL with the first problem in err ("FROM:LINE: ..."; never a token), TALLY_ENOMEM;
 * on failure u may hold the users of the lines before the bad one. Pure. */
TALLY_WUR enum tally_err users_parse(struct users *u, const char *text, const char *from,
				     char *err, size_t errlen);
/* Reads the users file at path into u (users_parse). TALLY_EFORBIDDEN when group or others may
 * read or write it, TALLY_EIO when it cannot be read (or is not a regular file), TALLY_ETOOBIG
 * over USERS_FILE_MAX, TALLY_EINVAL, TALLY_ENOMEM; err says why. */
TALLY_WUR enum tally_err users_load(struct users *u, const char *path, char *err, size_t errlen);
/* Returns the user whose token is token (borrowed from u), or NULL. Every user's token is
 * compared (token_equal), so the time taken says nothing about which one matched. */
const struct user *users_find(const struct users *u, const char *token);
/* Returns the number of users in u (0 for NULL). */
size_t users_count(const struct users *u);
/* Returns a role's name ("admin", "user", "worker"). Static; can't fail. */
const char *user_role_name(enum user_role role);
/* Returns 1 when name is a well-formed user name (1 to 64 of [A-Za-z0-9._:@-]). */
int user_name_ok(const char *name);

#endif
