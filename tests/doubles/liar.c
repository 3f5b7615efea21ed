/* tally-worker-liar: the real worker, but one count off in every lease it delivers, for the test
 * of verification by recomputation (tests/integration/test_verify.py). Never installed. */
#include "worker.h"

static void lie(const struct count_keys *keys, uint64_t *counts)
{
	(void)keys;
	counts[0] = counts[0] ? counts[0] - 1 : 1;
}

int main(int argc, char **argv)
{
	static const struct loop_tamper liar = { lie };
	return worker_main(argc, argv, &liar);
}
