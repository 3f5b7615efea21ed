/* The registry's one door for the plug-in loader (kernels/loader.c). */
#ifndef TALLY_REGISTRY_H
#define TALLY_REGISTRY_H

#include "kernel.h"

/* Registers plug-in k (taken: never freed). Returns 0, or -1 when KERNEL_PLUGINS_MAX are
 * loaded. Before threads start only. */
int kernel_add_plugin(struct kernel *k);

#endif
