/* tally-resident-noop: a resident exec program that does nothing, for bench/run.py's measure of
 * the worker's cost per batch. Each batch line read on stdin is answered {"batches":1} at once,
 * so a job's counts say how many batches it had. Raw read() and write(): no stdio buffering to
 * flush or to hide a late answer. Never installed. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	static const char answer[] = "{\"batches\":1}\n";
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(0, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))); p++)
			if (write(1, answer, sizeof answer - 1) != (ssize_t)sizeof answer - 1)
				return 1;
	}
}
