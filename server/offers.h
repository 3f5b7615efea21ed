/* The kernels workers have offered: each "name" or "name@version" a lease request listed, and
 * when it was last offered, so that a job can say that it waits for a kernel nobody offers. In
 * memory only (it fills again as workers call after a restart). Only offers of kernels known
 * here (kernel_known: with code, or named by a job in memory) are kept, so that a worker
 * offering made-up names cannot push real offers out. Bounded at OFFERS_MAX offers; past that
 * the one offered longest ago is forgotten. Pure C: times come in as arguments. Not
 * thread-safe. */
#ifndef TALLY_OFFERS_H
#define TALLY_OFFERS_H

#include <stddef.h>
#include <stdint.h>
#include "kernel.h"

#define OFFERS_MAX 64
#define OFFERS_TEXT_MAX (KERNEL_NAME_MAX + 12) /* "name@4294967295" and the NUL */

struct offers;

/* Returns a new, empty registry, or NULL when out of memory. */
struct offers *offers_new(void);
/* Frees it. Accepts NULL. */
void offers_free(struct offers *o);
/* Remembers that a worker offered offer ("name" or "name@version"; longer ones are cut to
 * OFFERS_TEXT_MAX - 1 bytes) at now. Can't fail. */
void offers_note(struct offers *o, const char *offer, int64_t now);
/* Returns 1 when kernel name has been offered in version `version` (0: any), or with no
 * version said; else 0. */
int offers_has(const struct offers *o, const char *name, unsigned version);

#endif
