/* store-fixture.h - what the store's unit tests start from: a new store
 * named `name` under the test's directory `root`, its INBOX, messages
 * in it. */
#ifndef STORE_FIXTURE_H
#define STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "dbox/save.h"
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

/* n small messages named B<i> with flags in one commit; the first uid */
static inline uint32_t fixture_add(struct dbox_store *store, int64_t box,
				   int n, uint32_t flags)
{
	struct dbox_save_txn *txn;
	struct dbox_err err = { "" };
	uint32_t *uids = calloc((size_t)n, sizeof(*uids)), first;
	char base[32];

	REQUIRE(uids != NULL);
	REQUIRE(dbox_save_begin(store, &txn, &err) == 0);
	for (int i = 0; i < n; i++) {
		struct dbox_save_opts o = { .mailbox_id = box,
					    .received = 1700000000,
					    .base = base,
					    .flags = flags };

		snprintf(base, sizeof(base), "B%d", i);
		REQUIRE(dbox_save_msg_begin(txn, &o, &err) == 0);
		REQUIRE(dbox_save_write(txn, "Subject: x\n\nb\n", 14,
					&err) == 0);
		REQUIRE(dbox_save_msg_finish(txn, &err) == 0);
	}
	REQUIRE(dbox_save_commit(txn, uids, &err) == 0);
	first = uids[0];
	free(uids);
	return first;
}

#endif
