/* The file descriptors the coordinator needs: one per connection, FDLIMIT_MARGIN more for the
 * store, the listening socket, the event loop and plug-ins. At start the soft RLIMIT_NOFILE is
 * raised to the hard limit (to what is needed when the hard limit is unlimited); when that is
 * still too few, the default connection limit is lowered to fit, with a warning, and an explicit
 * one is refused (an option the service cannot honour is never taken silently). */
#ifndef TALLY_FDLIMIT_H
#define TALLY_FDLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define FDLIMIT_MARGIN 64          /* descriptors besides the connections */
#define FDLIMIT_MIN_CONNECTIONS 16 /* fewer than this is no service: refused */
#define FDLIMIT_UNLIMITED UINT64_MAX

/* What to do with the limits. */
struct fdlimit_plan {
	uint64_t soft;        /* the soft limit to set: the hard one (what is needed, or the
			       * current one when more, when there is no hard limit) */
	unsigned connections; /* the connection limit to serve with */
	int lowered;          /* connections is below the default: warn */
};

/* Decides the plan from the current soft and hard limits (FDLIMIT_UNLIMITED for none) and the
 * connections wanted (0: HTTP_CONN_LIMIT, which may be lowered). Pure. Returns TALLY_OK, or
 * TALLY_EINVAL when want (non-zero) does not fit under hard, or when not even
 * FDLIMIT_MIN_CONNECTIONS do. */
TALLY_WUR enum tally_err fdlimit_plan(uint64_t soft, uint64_t hard, unsigned want,
				      struct fdlimit_plan *out);

/* Applies the plan to this process: raises RLIMIT_NOFILE and logs the limit it got (a warning
 * when the connections were lowered). Sets *connections to the limit to serve with. Returns
 * TALLY_OK, or TALLY_EINVAL after writing why, and how to fix it, into err. */
TALLY_WUR enum tally_err fdlimit_raise(unsigned want, unsigned *connections, char *err,
				       size_t errlen);

#endif
