/* test-kept.c - dbox_store_set_kept: whatever removes the row of a
 * message whose copy the caller keeps (an expunge, a move away, from any
 * thread's connection) leaves a mark in the same transaction
 * (dbox_store_unconfirmed_removed), once, and none for a message not
 * kept; a reindex that adds the rows again leaves none that says
 * "removed"; dbox_open_opts.kept_open gets the control directory. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbox/save.h"
#include "dbox/store.h"
#include "store-fixture.h"

static char root[64];
static char ctl_seen[256];

/* keeps every copy but of uid 3 */
static bool kept(void *ctx, int64_t box, uint32_t uid)
{
	(void)ctx; (void)box;
	return uid != 3;
}

static void kept_open(void *ctx, const char *ctl_dir)
{
	(void)ctx;
	snprintf(ctl_seen, sizeof(ctl_seen), "%s", ctl_dir);
}

static struct dbox_store *new_store(const char *name)
{
	struct dbox_open_opts oo = { .kept = kept, .kept_open = kept_open };

	return fixture_store(root, name, DBOX_FORMAT_MDBOX, &oo);
}

struct expunger {
	struct dbox_store *store;
	int64_t box;
	int ret;
};

static void *expunge_main(void *arg)
{
	struct expunger *x = arg;

	x->ret = dbox_msg_expunge(x->store, x->box, 4, NULL);
	return NULL;
}

static void test_every_way(void)
{
	struct dbox_store *store = new_store("s1");
	int64_t box = fixture_inbox(store);
	struct expunger x = { store, box, -1 };
	struct dbox_mailbox other;
	struct dbox_err err = { "" };
	uint32_t moved;
	pthread_t t;

	CHECK(strstr(ctl_seen, "/s1/") != NULL);
	CHECK_EQ_INT(fixture_add(store, box, 5, 0), 1);
	/* the flush a mount makes: no mark of the delivery is left */
	REQUIRE(dbox_store_sync(store, &err) == 0);
	REQUIRE(dbox_mailbox_create(store, "Other", &other, &err) == 0);
	REQUIRE(dbox_msg_expunge(store, box, 1, &err) == 0);
	REQUIRE(dbox_msg_move(store, box, 2, other.id, 0, 0, DBOX_DIR_CUR,
			      NULL, &moved, &err) == 0);
	REQUIRE(dbox_msg_expunge(store, box, 3, &err) == 0);
	REQUIRE(pthread_create(&t, NULL, expunge_main, &x) == 0);
	pthread_join(t, NULL);
	CHECK_EQ_INT(x.ret, 0);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 1), 1);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 2), 1);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 3), 0);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 4), 1);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, other.id, moved),
		     0);
	/* the copy is gone: the mark goes */
	REQUIRE(dbox_store_unconfirmed_forget(store, box, 1, &err) == 0);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 1), 0);
	dbox_store_close(store);
}

/* a reindex removes every row and adds them again: none is removed */
static void test_reindex(void)
{
	struct dbox_store *store = new_store("s2");
	int64_t box = fixture_inbox(store);
	struct dbox_err err = { "" };

	CHECK_EQ_INT(fixture_add(store, box, 2, 0), 1);
	REQUIRE(dbox_store_sync(store, &err) == 0);
	REQUIRE(dbox_store_reindex(store, &err) == 2);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 1), 0);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 2), 0);
	REQUIRE(dbox_msg_expunge(store, box, 2, &err) == 0);
	CHECK_EQ_INT(dbox_store_unconfirmed_removed(store, box, 2), 1);
	dbox_store_close(store);
}

int main(void)
{
	fixture_root(root, sizeof(root), "dbox-kept");
	RUN(test_every_way);
	RUN(test_reindex);
	fixture_root_remove(root);
	return CHECK_DONE();
}
