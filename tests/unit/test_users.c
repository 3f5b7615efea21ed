/* users: a users file's lines (comments, blank lines, roles, duplicates, token rules) as a
 * table of texts and what each gives; the permission check on the file; finding by token. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "users.h"

#define TA "alice-token-aaaaaaaaaaaa"
#define TB "bob-token-bbbbbbbbbbbbbbb"
#define TW "worker-token-wwwwwwwwwwww"

static void test_parse_table(void **state)
{
	static const struct {
		const char *text;
		enum tally_err rc;
		size_t users;      /* on success */
		const char *error; /* a part of the message, on failure */
	} cases[] = {
		{ "", TALLY_OK, 0, NULL },
		{ "\n\n   \n\t\n", TALLY_OK, 0, NULL },
		{ "# only a comment\n", TALLY_OK, 0, NULL },
		{ "alice admin " TA "\n", TALLY_OK, 1, NULL },
		{ "alice admin " TA, TALLY_OK, 1, NULL }, /* no final newline */
		{ "alice\tadmin\t\t" TA "\r\n", TALLY_OK, 1, NULL }, /* tabs, CRLF */
		{ "  alice   user   " TA "   # trailing comment\n", TALLY_OK, 1, NULL },
		{ "# users\nalice admin " TA "\n\nbob user " TB "\nw1 worker " TW "\n", TALLY_OK, 3,
		  NULL },
		{ "a.b-c_d:e@f user " TA "\n", TALLY_OK, 1, NULL },
		{ "alice admin " TA "#not-a-comment\n", TALLY_OK, 1, NULL }, /* # inside a token */
		{ "alice admin\n", TALLY_EINVAL, 0, "t:1: expected NAME ROLE TOKEN (too few" },
		{ "alice\n", TALLY_EINVAL, 0, "too few" },
		{ "alice admin " TA " extra\n", TALLY_EINVAL, 0, "too many" },
		{ "alice admin #" TA "\n", TALLY_EINVAL, 0, "too few" }, /* a comment, not a token */
		{ "\n\nalice root " TA "\n", TALLY_EINVAL, 0, "t:3: role 'root'" },
		{ "alice Admin " TA "\n", TALLY_EINVAL, 0, "must be admin, user or worker" },
		{ "alice admin short\n", TALLY_EINVAL, 0, "t:1: a token must be 16 to 256" },
		{ "alice admin " TA "\nalice user " TB "\n", TALLY_EINVAL, 0,
		  "t:2: user 'alice' is already defined" },
		{ "alice admin " TA "\nbob user " TA "\n", TALLY_EINVAL, 0,
		  "t:2: user 'bob' has the same token as user 'alice'" },
		{ "al/ice user " TA "\n", TALLY_EINVAL, 0, "is not a user name" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa user " TA "\n",
		  TALLY_EINVAL, 0, "is not a user name" }, /* 65 characters */
		{ "alice user tok\x7f" "en-with-del-xxxx\n", TALLY_EINVAL, 0, "printable ASCII" },
	};
	(void)state;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct users *u = users_new();
		char err[512] = "";
		enum tally_err rc;

		assert_non_null(u);
		rc = users_parse(u, cases[k].text, "t", err, sizeof err);
		if (rc != cases[k].rc)
			fail_msg("case %zu: rc %d, want %d (%s)", k, rc, cases[k].rc, err);
		if (!rc && users_count(u) != cases[k].users)
			fail_msg("case %zu: %zu users, want %zu", k, users_count(u), cases[k].users);
		if (cases[k].error && !strstr(err, cases[k].error))
			fail_msg("case %zu: '%s' does not say '%s'", k, err, cases[k].error);
		/* A message never shows a token. */
		assert_null(strstr(err, TA));
		assert_null(strstr(err, TB));
		users_free(u);
	}
}

static void test_find(void **state)
{
	struct users *u = users_new();
	char err[256];
	const struct user *who;
	(void)state;

	assert_int_equal(users_parse(u, "alice admin " TA "\nbob user " TB "\nw1 worker " TW "\n",
				     "t", err, sizeof err), TALLY_OK);
	who = users_find(u, TB);
	assert_non_null(who);
	assert_string_equal(who->name, "bob");
	assert_int_equal(who->role, USER_USER);
	assert_string_equal(users_find(u, TW)->name, "w1");
	assert_int_equal(users_find(u, TW)->role, USER_WORKER);
	assert_int_equal(users_find(u, TA)->role, USER_ADMIN);
	assert_null(users_find(u, TB "x"));
	assert_null(users_find(u, "bob-token-bbbbbbbbbbbbbb"));
	assert_null(users_find(u, ""));
	assert_null(users_find(NULL, TA));
	/* users_add: the legacy tokens join a file's users, under the same rules. */
	assert_int_equal(users_add(u, "admin", USER_ADMIN, TA, "TALLY_TOKEN", err, sizeof err),
			 TALLY_EINVAL);
	assert_non_null(strstr(err, "same token as user 'alice'"));
	assert_int_equal(users_add(u, "bob", USER_ADMIN, "another-token-xxxxxxxx", "TALLY_TOKEN",
				   err, sizeof err), TALLY_EINVAL);
	assert_int_equal(users_add(u, "admin", USER_ADMIN, "another-token-xxxxxxxx", "TALLY_TOKEN",
				   err, sizeof err), TALLY_OK);
	assert_int_equal(users_count(u), 4);
	assert_string_equal(user_role_name(USER_WORKER), "worker");
	users_free(u);
}

/* Writes len bytes of text to a fresh file of mode `mode` and loads it. */
static enum tally_err load_bytes(const char *text, size_t len, mode_t mode, size_t *n, char *err,
				 size_t errlen)
{
	char path[] = "/tmp/tally-users-XXXXXX";
	int fd = mkstemp(path);
	struct users *u = users_new();
	enum tally_err rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	rc = users_load(u, path, err, errlen);
	*n = users_count(u);
	users_free(u);
	unlink(path);
	return rc;
}

static enum tally_err load_with_mode(const char *text, mode_t mode, size_t *n, char *err,
				     size_t errlen)
{
	return load_bytes(text, strlen(text), mode, n, err, errlen);
}

static void test_load_permissions(void **state)
{
	static const struct {
		mode_t mode;
		enum tally_err rc;
	} cases[] = {
		{ 0600, TALLY_OK }, { 0400, TALLY_OK }, { 0640, TALLY_EFORBIDDEN },
		{ 0604, TALLY_EFORBIDDEN }, { 0620, TALLY_EFORBIDDEN }, { 0602, TALLY_EFORBIDDEN },
		{ 0644, TALLY_EFORBIDDEN },
	};
	char err[512];
	size_t n;
	(void)state;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		err[0] = '\0';
		if (load_with_mode("alice admin " TA "\n", cases[k].mode, &n, err, sizeof err) !=
		    cases[k].rc)
			fail_msg("mode %04o: %s", (unsigned)cases[k].mode, err);
		if (cases[k].rc)
			assert_non_null(strstr(err, "too open"));
		else
			assert_int_equal(n, 1);
	}
	assert_int_equal(load_with_mode("alice admin " TA "\nbad line\n", 0600, &n, err,
					sizeof err), TALLY_EINVAL);
	assert_non_null(strstr(err, ":2: expected NAME ROLE TOKEN"));
	assert_int_equal(load_bytes("alice admin " TA "\n\0", sizeof "alice admin " TA "\n\0" - 1,
				    0600, &n, err, sizeof err), TALLY_EINVAL);
	assert_non_null(strstr(err, "NUL"));
	{
		struct users *u = users_new();
		assert_int_equal(users_load(u, "/nonexistent/users", err, sizeof err), TALLY_EIO);
		assert_int_equal(users_load(u, "/tmp", err, sizeof err), TALLY_EIO);
		users_free(u);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_load_permissions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
