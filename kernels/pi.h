/* The pi kernel's implementation paths (scalar, avx2, avx512), for tests and benchmarks. Every
 * path gives the same counts; they differ only in speed. */
#ifndef TALLY_PI_H
#define TALLY_PI_H

/* Returns 1 when this CPU can run the named path. */
int pi_path_supported(const char *name);
/* Makes every later pi batch use the named path. Returns 0, or -1 when unknown or unsupported. */
int pi_set_path(const char *name);
/* Returns the path in use (choosing the best one, or $TALLY_PI_PATH, on first call). Static. */
const char *pi_path(void);

#endif
