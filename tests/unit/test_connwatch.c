/* The watch on connections with the time injected: each phase in which the client must act is cut
 * at the request timeout, the server's own phase never is, a phase set again starts again, sweeps
 * are spaced, and a connection cut with replies unread is reset. Sockets are socketpairs: the
 * watch holds one end, the test is the client at the other. Nothing sleeps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "connwatch.h"

#define TIMEOUT 2000

struct pair {
	int fd[2]; /* [0] the server's end, watched; [1] the client's */
	struct conn *c;
};

static void pair_open(struct connwatch *w, struct pair *p, int64_t now)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	p->c = connwatch_add(w, p->fd[0], now);
	assert_non_null(p->c);
}

static void pair_close(struct connwatch *w, struct pair *p)
{
	connwatch_remove(w, p->c);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* Returns 1 when the server's end was shut down: the client reads EOF, not "nothing yet". */
static int pair_cut(const struct pair *p)
{
	char ch;
	return recv(p->fd[1], &ch, 1, MSG_DONTWAIT) == 0;
}

static void test_phases(void **state)
{
	static const struct {
		enum conn_phase phase;
		int cut; /* once the phase is older than the timeout */
	} cases[] = {
		{ CONN_READING, 1 }, /* a slow request, or idle between two */
		{ CONN_SERVING, 0 }, /* a handler, a parked long poll, a reply held for the commit */
		{ CONN_WRITING, 1 }, /* a reply the client does not take */
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct connwatch w;
		struct pair p;
		connwatch_init(&w, TIMEOUT);
		pair_open(&w, &p, 0);
		connwatch_phase(p.c, cases[i].phase, 1000);
		assert_int_equal(connwatch_sweep(&w, 1000 + TIMEOUT), 0); /* not past it yet */
		assert_false(pair_cut(&p));
		assert_int_equal(connwatch_sweep(&w, 1000 + TIMEOUT + CONNWATCH_SWEEP_MS),
				 cases[i].cut);
		assert_int_equal(pair_cut(&p), cases[i].cut);
		assert_int_equal(connwatch_sweep(&w, 1000 + 100 * TIMEOUT), cases[i].cut);
		pair_close(&w, &p);
		assert_int_equal(w.n, 0);
	}
}

static void test_phase_set_again_starts_again(void **state)
{
	struct connwatch w;
	struct pair p;
	(void)state;
	connwatch_init(&w, TIMEOUT);
	pair_open(&w, &p, 0);
	connwatch_phase(p.c, CONN_READING, TIMEOUT); /* the headers came: the body's turn */
	assert_int_equal(connwatch_sweep(&w, 2 * TIMEOUT), 0);
	assert_int_equal(connwatch_sweep(&w, 2 * TIMEOUT + 1 + CONNWATCH_SWEEP_MS), 1);
	assert_true(pair_cut(&p));
	pair_close(&w, &p);
}

static void test_sweeps_are_spaced(void **state)
{
	struct connwatch w;
	struct pair p;
	(void)state;
	connwatch_init(&w, 100);
	pair_open(&w, &p, 0);
	assert_int_equal(connwatch_sweep(&w, 0), 0);
	assert_int_equal(connwatch_sweep(&w, 101), 0); /* overdue, but too soon after the last */
	assert_false(pair_cut(&p));
	assert_int_equal(connwatch_sweep(&w, CONNWATCH_SWEEP_MS), 1);
	assert_true(pair_cut(&p));
	pair_close(&w, &p);
}

static void test_unread_replies_are_reset(void **state)
{
	struct connwatch w;
	struct pair quiet, full;
	struct linger l;
	socklen_t len = sizeof l;
	(void)state;
	connwatch_init(&w, TIMEOUT);
	pair_open(&w, &quiet, 0);
	pair_open(&w, &full, 0);
	assert_int_equal(write(full.fd[0], "HTTP/1.1 200 OK\r\n", 17), 17); /* never read */
	connwatch_phase(full.c, CONN_WRITING, 0);
	assert_int_equal(connwatch_sweep(&w, TIMEOUT + 1), 2);
	assert_int_equal(getsockopt(full.fd[0], SOL_SOCKET, SO_LINGER, &l, &len), 0);
	assert_true(l.l_onoff && !l.l_linger); /* MHD's close resets it */
	assert_int_equal(getsockopt(quiet.fd[0], SOL_SOCKET, SO_LINGER, &l, &len), 0);
	assert_false(l.l_onoff); /* nothing unread: an ordinary close */
	assert_true(pair_cut(&quiet));
	pair_close(&w, &quiet);
	pair_close(&w, &full);
}

static void test_add_and_remove(void **state)
{
	struct connwatch w;
	struct pair p[3];
	(void)state;
	connwatch_init(&w, TIMEOUT);
	for (size_t i = 0; i < 3; i++)
		pair_open(&w, &p[i], 0);
	assert_int_equal(w.n, 3);
	connwatch_remove(&w, NULL);
	pair_close(&w, &p[1]); /* from the middle */
	assert_int_equal(w.n, 2);
	connwatch_phase(NULL, CONN_WRITING, 0); /* unwatched: nothing happens */
	assert_int_equal(connwatch_sweep(&w, TIMEOUT + 1), 2);
	assert_true(pair_cut(&p[0]) && pair_cut(&p[2]));
	pair_close(&w, &p[2]);
	pair_close(&w, &p[0]);
	assert_null(w.list);
	assert_int_equal(w.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phases),
		cmocka_unit_test(test_phase_set_again_starts_again),
		cmocka_unit_test(test_sweeps_are_spaced),
		cmocka_unit_test(test_unread_replies_are_reset),
		cmocka_unit_test(test_add_and_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
