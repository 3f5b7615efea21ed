/* A fresh temporary database file per test, removed with its WAL files afterwards. */
#ifndef TALLY_TEST_TMPDB_H
#define TALLY_TEST_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tmpdb {
	char dir[64];
	char path[96];
};

static inline void tmpdb_make(struct tmpdb *t)
{
	snprintf(t->dir, sizeof t->dir, "/tmp/tally-test-XXXXXX");
	if (!mkdtemp(t->dir))
		abort();
	snprintf(t->path, sizeof t->path, "%s/t.db", t->dir);
}

static inline void tmpdb_remove(struct tmpdb *t)
{
	const char *suffix[] = { "", "-wal", "-shm" };
	char p[128];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
		unlink(p);
	}
	rmdir(t->dir);
}

#endif
