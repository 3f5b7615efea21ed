/* The bare kernel: a whole job computed by the worker's compute pool in this process, with no
 * HTTP and no database. The end-to-end benchmark compares the service against this.
 *   tally-bench-kernel --kernel pi --samples 1e10 --batch-size 100000 --threads 2 [--path avx512]
 * Prints one JSON object: {"kernel", "path", "samples", "batch_size", "threads", "seconds",
 * "rate", "counts"}. Exit status: 0 done, 1 the computation failed, 2 bad usage, 77 the path
 * is one this CPU cannot run (the one status a test may take for a skip). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "compute.h"
#include "kernel.h"
#include "pi.h"
#include "timefmt.h"

/* Reads 1e10 or 10000000000. Returns 0, or -1. */
static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	double d = strtod(s, &end);
	if (*end || d < 1 || d > 4.7e18 || d != (double)(uint64_t)d)
		return -1;
	*out = (uint64_t)d;
	return 0;
}

int main(int argc, char **argv)
{
	const char *kname = "pi", *path = NULL;
	uint64_t samples = 1000000000ULL, batch = 100000, counts[KERNEL_MAX_KEYS] = { 0 };
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	const struct kernel *k;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--kernel"))
			kname = argv[i + 1];
		else if (!strcmp(argv[i], "--samples") && !parse_count(argv[i + 1], &samples))
			;
		else if (!strcmp(argv[i], "--batch-size") && !parse_count(argv[i + 1], &batch))
			;
		else if (!strcmp(argv[i], "--threads"))
			threads = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--path"))
			path = argv[i + 1];
		else {
			fprintf(stderr, "usage: %s [--kernel pi] [--samples N] [--batch-size N] "
					"[--threads N] [--path scalar|avx2|avx512]\n", argv[0]);
			return 2;
		}
	}
	k = kernel_find(kname);
	if (path && (!strcmp(path, "scalar") || !strcmp(path, "avx2") || !strcmp(path, "avx512")) &&
	    !pi_path_supported(path)) {
		fprintf(stderr, "%s: path %s: not on this CPU\n", argv[0], path);
		return 77;
	}
	if (!k || threads < 1 || batch > samples || (path && pi_set_path(path))) {
		fprintf(stderr, "%s: bad kernel, thread count, batch size or path\n", argv[0]);
		return 2;
	}
	int64_t t0 = timefmt_mono_ms();
	struct compute_work w = { .k = k, .seed = 42, .samples = samples, .batch_size = batch,
				  .count = job_batches(samples, batch) };
	struct compute *c = k->run ? compute_start(&w, (int)threads) : NULL;
	if (!c)
		return 1;
	while (!compute_wait(c, 1000))
		;
	if (compute_finish(c, NULL, counts, NULL, 0))
		return 1;
	double s = (double)(timefmt_mono_ms() - t0) / 1000.0;
	printf("{\"kernel\":\"%s\",\"path\":\"%s\",\"samples\":%" PRIu64 ",\"batch_size\":%" PRIu64
	       ",\"threads\":%ld,\"seconds\":%.3f,\"rate\":%.4g,\"counts\":[",
	       k->name, pi_path(), samples, batch, threads, s, (double)samples / s);
	for (size_t i = 0; i < k->nkeys; i++)
		printf("%s%" PRIu64, i ? "," : "", counts[i]);
	printf("]}\n");
	return 0;
}
