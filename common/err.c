/* Names for the error enum. */
#include "err.h"

const char *tally_strerror(enum tally_err rc)
{
	switch (rc) {
	case TALLY_OK: return "ok";
	case TALLY_ENOMEM: return "out of memory";
	case TALLY_EINVAL: return "invalid input";
	case TALLY_ENOTFOUND: return "not found";
	case TALLY_ECONFLICT: return "conflict";
	case TALLY_ELOST: return "lease lost";
	case TALLY_ECOUNTS: return "invalid counts";
	case TALLY_EDB: return "storage failure";
	case TALLY_EIO: return "i/o failure";
	case TALLY_ETOOBIG: return "too large";
	case TALLY_EFORBIDDEN: return "forbidden";
	case TALLY_EQUOTA: return "quota exceeded";
	case TALLY_EFULL: return "server full";
	}
	return "unknown error";
}
