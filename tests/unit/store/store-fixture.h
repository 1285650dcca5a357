/* store-fixture.h - what the store's unit tests start from: a new store
 * named `name` under the test's directory `root`, and its INBOX. */
#ifndef STORE_FIXTURE_H
#define STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "dbox/store.h"

/* The test's directory: /tmp/PREFIX.XXXXXX made in root (64 bytes). */
static inline void fixture_root(char *root, size_t len, const char *prefix)
{
	snprintf(root, len, "/tmp/%s.XXXXXX", prefix);
	REQUIRE(mkdtemp(root) != NULL);
}

/* ... and gone at the end (a failure to remove it is said, not fatal). */
static inline void fixture_root_remove(const char *root)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
}

static inline struct dbox_store *
fixture_store(const char *root, const char *name, enum dbox_store_format fmt,
	      const struct dbox_open_opts *oo)
{
	struct dbox_create_opts co = { .format = fmt };
	struct dbox_store *store;
	struct dbox_err err = { "" };
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	REQUIRE(dbox_store_create(path, &co, &err) == 0);
	REQUIRE(dbox_store_open(path, oo, &store, &err) == 0);
	return store;
}

static inline int64_t fixture_inbox(struct dbox_store *store)
{
	struct dbox_mailbox box;
	struct dbox_err err = { "" };

	REQUIRE(dbox_mailbox_lookup(store, "INBOX", &box, &err) == 0);
	return box.id;
}

#endif
