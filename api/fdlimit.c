/* Raising the file-descriptor limit at start, and fitting the connection limit under it
 * (fdlimit.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include "fdlimit.h"
#include "http.h"
#include "log.h"

#define FDLIMIT_FIX "raise the hard limit (ulimit -Hn; LimitNOFILE= under systemd; " \
		    "docker run --ulimit nofile=N:N)"

enum tally_err fdlimit_plan(uint64_t soft, uint64_t hard, unsigned want, struct fdlimit_plan *out)
{
	uint64_t conns = want ? want : HTTP_CONN_LIMIT, need = conns + FDLIMIT_MARGIN;

	out->soft = hard != FDLIMIT_UNLIMITED ? hard : soft < need ? need : soft;
	out->lowered = 0;
	if (out->soft < need) {
		if (want || out->soft < FDLIMIT_MIN_CONNECTIONS + FDLIMIT_MARGIN)
			return TALLY_EINVAL;
		conns = out->soft - FDLIMIT_MARGIN;
		out->lowered = 1;
	}
	out->connections = (unsigned)conns;
	return TALLY_OK;
}

static uint64_t fdlimit_u64(rlim_t v)
{
	return v == RLIM_INFINITY ? FDLIMIT_UNLIMITED : (uint64_t)v;
}

enum tally_err fdlimit_raise(unsigned want, unsigned *connections, char *err, size_t errlen)
{
	struct rlimit rl;
	struct fdlimit_plan plan;
	uint64_t was, hard;
	char hardtext[24];

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return TALLY_EINVAL;
	}
	was = fdlimit_u64(rl.rlim_cur);
	hard = fdlimit_u64(rl.rlim_max);
	if (fdlimit_plan(was, hard, want, &plan)) {
		uint64_t have = hard == FDLIMIT_UNLIMITED ? was : hard;
		snprintf(err, errlen, "%u connections (--max-connections) need %u file descriptors, "
			 "but the limit cannot be raised past %" PRIu64 ": %s%s",
			 want ? want : HTTP_CONN_LIMIT,
			 (want ? want : HTTP_CONN_LIMIT) + FDLIMIT_MARGIN, have, FDLIMIT_FIX,
			 want ? ", or lower --max-connections" : "");
		return TALLY_EINVAL;
	}
	if (plan.soft != was) {
		rl.rlim_cur = (rlim_t)plan.soft;
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			snprintf(err, errlen, "setrlimit(RLIMIT_NOFILE, %" PRIu64 "): %s", plan.soft,
				 strerror(errno));
			return TALLY_EINVAL;
		}
	}
	if (hard == FDLIMIT_UNLIMITED)
		snprintf(hardtext, sizeof hardtext, "unlimited");
	else
		snprintf(hardtext, sizeof hardtext, "%" PRIu64, hard);
	log_info("msg=\"file descriptors\" limit=%" PRIu64 " was=%" PRIu64 " hard=%s"
		 " max_connections=%u", plan.soft, was, hardtext, plan.connections);
	if (plan.lowered)
		log_warn("msg=\"too few file descriptors for the default connection limit: "
			 "serving fewer\" max_connections=%u default=%u limit=%" PRIu64
			 " fix=\"%s, or set --max-connections\"", plan.connections, HTTP_CONN_LIMIT,
			 plan.soft, FDLIMIT_FIX);
	*connections = plan.connections;
	return TALLY_OK;
}
