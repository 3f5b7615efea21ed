/* tally-worker: a worker of a tally coordinator (worker/worker.c has the program). */
#include "worker.h"

int main(int argc, char **argv)
{
	return worker_main(argc, argv, NULL);
}
