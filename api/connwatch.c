/* The watch on connections (connwatch.h): a list of them with the phase each is in, and the sweep
 * that shuts down those whose phase has outlasted the request timeout. */
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include "connwatch.h"

void connwatch_init(struct connwatch *w, int64_t timeout_ms)
{
	*w = (struct connwatch){ .timeout_ms = timeout_ms };
}

struct conn *connwatch_add(struct connwatch *w, int fd, int64_t now)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fd = fd;
	c->phase = CONN_READING;
	c->since = now;
	c->next = w->list;
	if (w->list)
		w->list->prev = c;
	w->list = c;
	w->n++;
	return c;
}

void connwatch_remove(struct connwatch *w, struct conn *c)
{
	if (!c)
		return;
	w->n--;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

void connwatch_phase(struct conn *c, enum conn_phase phase, int64_t now)
{
	if (!c)
		return;
	c->phase = phase;
	c->since = now;
}

/* Shuts fd down so that MHD sees it closed. When the client has left replies unread, the close
 * that follows resets the connection: otherwise the kernel would keep them (up to tcp_wmem's
 * maximum) behind the FIN and retry sending them for minutes after the slot is free. */
static void connwatch_cut(int fd)
{
	int unsent = 0;
	if (!ioctl(fd, SIOCOUTQ, &unsent) && unsent > 0) {
		struct linger reset = { 1, 0 };
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
	}
	shutdown(fd, SHUT_RDWR);
}

int connwatch_sweep(struct connwatch *w, int64_t now)
{
	int cut = 0;
	if (now < w->next_sweep)
		return 0;
	w->next_sweep = now + CONNWATCH_SWEEP_MS;
	for (struct conn *c = w->list; c; c = c->next) {
		if (c->phase != CONN_SERVING && now - c->since > w->timeout_ms) {
			connwatch_cut(c->fd);
			c->since = now; /* once is enough: MHD closes it in its next pass */
			cut++;
		}
	}
	return cut;
}
