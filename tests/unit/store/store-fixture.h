/* store-fixture.h - what the store's unit tests start from: a new store
 * named `name` under the test's directory `root`, and its INBOX. */
#ifndef STORE_FIXTURE_H
#define STORE_FIXTURE_H

#include <stdio.h>

#include "check.h"
#include "dbox/store.h"

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
