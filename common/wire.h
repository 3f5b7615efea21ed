/* The wire limits: every bound that the coordinator, its workers and its clients must agree on,
 * in one place. A request past one is refused with a 4xx that names it (docs/protocol.md); a
 * reply never passes one. Modules give them their own names (HTTP_BODY_MAX, COORD_SKIP_MAX...)
 * only as aliases of these. Changing one changes the protocol: say so in docs/protocol.md and
 * api/openapi.yaml. */
#ifndef TALLY_WIRE_H
#define TALLY_WIRE_H

#include "tally/kernel.h"

/* HTTP */
#define WIRE_BODY_MAX (1024 * 1024)  /* bytes of a request body (413 past it) */
#define WIRE_REPLY_MAX (1024 * 1024) /* bytes of a reply a client reads */
#define WIRE_WAIT_MAX_S 60           /* a long poll's wait_s (lease requests, GET job) */
#define WIRE_TOKEN_MAX 257           /* a bearer token, with the NUL */

/* Jobs */
#define WIRE_SAMPLES_MAX (1ULL << 62)  /* samples of a job */
#define WIRE_KEY_MAX 256               /* an Idempotency-Key: 255 characters and the NUL */
#define WIRE_PARAMS_MAX 4096           /* a job's params as compact JSON, with the NUL */
#define WIRE_ERROR_MAX 1024            /* a job's error message, with the NUL */
#define WIRE_LIST_MAX 1000             /* jobs one GET /v1/jobs returns */

/* Kernels and counts (the plug-in ABI's own limits) */
#define WIRE_KERNEL_NAME_MAX TALLY_KERNEL_NAME_MAX /* a kernel's name, with the NUL */
#define WIRE_COUNTS_MAX TALLY_KERNEL_KEYS_MAX      /* count names of a job */
#define WIRE_COUNT_NAME_MAX TALLY_KERNEL_KEY_MAX   /* a count name, with the NUL */

/* Users (docs/protocol.md: users, roles and priorities) */
#define WIRE_USER_NAME_MAX 65 /* a user's name: 64 characters and the NUL */
#define WIRE_PRIORITY_MIN (-100)
#define WIRE_PRIORITY_MAX 100

/* Workers */
#define WIRE_WORKER_NAME_MAX 65 /* a worker's name: 64 characters and the NUL */
#define WIRE_OFFERS_MAX 96      /* kernels one lease request offers */
#define WIRE_SKIP_MAX 16        /* jobs one lease request asks to be passed over */
#define WIRE_LEASE_ID_MAX 48    /* a lease's id, "<id>-<16 hex digits of tag>", with the NUL */
#define WIRE_REASON_MAX 1025    /* a fail's reason: 1 KiB of text and the NUL */

#endif
