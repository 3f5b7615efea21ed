/* Whose lease it is: a lease's tag, a keyed hash (SipHash-2-4) of its id, the worker it was
 * granted to and the user that worker called as, under a random key kept in the store; and the
 * check of a call that claims a lease (coord.h: coord_lease_claim). Nobody without the key can
 * make a tag, so a lease is acted on only by its own worker, whatever ids it has seen. */
#include <string.h>
#include <sys/random.h>
#include "coord_int.h"
#include "db.h"
#include "siphash.h"

/* The key's two halves in the store's meta table. */
static const char *const claim_meta[2] = { "lease_key_0", "lease_key_1" };

enum tally_err coord_key_load(struct coord *c)
{
	int64_t k[2] = { 0, 0 };
	enum tally_err rc;

	if ((rc = db_meta_get(c->db, claim_meta[0], &k[0])) ||
	    (rc = db_meta_get(c->db, claim_meta[1], &k[1])))
		return rc;
	if (!k[0] && !k[1]) {
		/* A new store: a new key, kept so that leases read back keep their tags. */
		if (getrandom(k, sizeof k, 0) != sizeof k)
			return TALLY_EIO;
		if ((rc = db_begin(c->db)) || (rc = db_meta_set(c->db, claim_meta[0], k[0])) ||
		    (rc = db_meta_set(c->db, claim_meta[1], k[1])) || (rc = db_commit(c->db))) {
			db_rollback(c->db);
			return rc;
		}
	}
	memcpy(c->lease_key, k, sizeof c->lease_key);
	return TALLY_OK;
}

uint64_t coord_lease_tag(const struct coord *c, int64_t id, const char *worker, const char *user)
{
	/* The id's 8 bytes, then the names, each ended by a NUL (neither may hold one): no two
	 * (id, worker, user) make the same input. */
	unsigned char in[8 + WORKER_NAME_MAX + WIRE_USER_NAME_MAX];
	size_t n = 0, wl = strnlen(worker, WORKER_NAME_MAX - 1), ul;

	ul = strnlen(user, WIRE_USER_NAME_MAX - 1);
	for (int i = 0; i < 8; i++)
		in[n++] = (unsigned char)((uint64_t)id >> (8 * i));
	memcpy(in + n, worker, wl);
	n += wl;
	in[n++] = 0;
	memcpy(in + n, user, ul);
	n += ul;
	in[n++] = 0;
	return siphash24(c->lease_key, in, n);
}

enum tally_err coord_lease_claim(const struct coord *c, const struct lease_claim *claim)
{
	uint64_t want = coord_lease_tag(c, claim->id, claim->worker, claim->user);
	return want == claim->tag ? TALLY_OK : TALLY_ENOTFOUND;
}
