/* The one error enum of tally. 0 is success; callers test `if (rc)`.
 * Only the HTTP layer (api/) turns these into status codes. */
#ifndef TALLY_ERR_H
#define TALLY_ERR_H

#define TALLY_WUR __attribute__((warn_unused_result))

enum tally_err {
	TALLY_OK = 0,
	TALLY_ENOMEM,    /* allocation failed */
	TALLY_EINVAL,    /* input rejected; a message says which field */
	TALLY_ENOTFOUND, /* no such job or lease */
	TALLY_ECONFLICT, /* the object is in a state that forbids the request */
	TALLY_ELOST,     /* the lease expired and was reclaimed, or its job was cancelled */
	TALLY_ECOUNTS,   /* counts that cannot be right for the lease */
	TALLY_EDB,       /* storage failed (full, locked, read-only, corrupt) */
	TALLY_EIO,       /* network or file I/O failed */
	TALLY_ETOOBIG,   /* a capped buffer would overflow */
	TALLY_EFORBIDDEN, /* the caller may not do this (a quarantined worker) */
	TALLY_EQUOTA,    /* the caller has as many unfinished jobs as it may */
	TALLY_EFULL,     /* the coordinator holds as many unfinished jobs as it may */
};

/* Returns a static, human-readable name for rc. This function can't fail. */
const char *tally_strerror(enum tally_err rc);

#endif
