/* test-removed.c - dbox_store_take_removed: the rows this process
 * removed (expunged, moved away), with the names they had, from any
 * thread's connection, bounded; nothing without opts.track_removed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbox/save.h"
#include "dbox/store.h"
#include "store-fixture.h"

static char root[64];

static struct dbox_store *new_store(const char *name, bool track)
{
	struct dbox_open_opts oo = { .track_removed = track };

	return fixture_store(root, name, DBOX_FORMAT_MDBOX, &oo);
}

static void test_expunge_and_move(void)
{
	struct dbox_store *store = new_store("s1", true);
	int64_t box = fixture_inbox(store);
	struct dbox_mailbox other;
	struct dbox_removed *rows;
	struct dbox_err err = { "" };
	uint32_t uid = fixture_add(store, box, 3, DBOX_FLAG_SEEN), moved;

	CHECK_EQ_INT(dbox_store_take_removed(store, &rows), 0);
	free(rows);
	REQUIRE(dbox_mailbox_create(store, "Other", &other, &err) == 0);
	REQUIRE(dbox_msg_expunge(store, box, uid + 1, &err) == 0);
	REQUIRE(dbox_msg_move(store, box, uid + 2, other.id, DBOX_FLAG_SEEN,
			      0, DBOX_DIR_CUR, NULL, &moved, &err) == 0);
	REQUIRE(dbox_store_take_removed(store, &rows) == 2);
	CHECK_EQ_INT(rows[0].mailbox_id, box);
	CHECK_EQ_INT(rows[0].uid, uid + 1);
	CHECK_STR(rows[0].base, "B1");
	CHECK_EQ_INT(rows[0].flags, DBOX_FLAG_SEEN);
	CHECK(!rows[0].in_new);
	CHECK_EQ_INT(rows[1].uid, uid + 2);
	CHECK_STR(rows[1].base, "B2");
	free(rows);
	/* taken: gone from the record */
	CHECK_EQ_INT(dbox_store_take_removed(store, &rows), 0);
	free(rows);
	dbox_store_close(store);
}

struct expunger {
	struct dbox_store *store;
	int64_t box;
	uint32_t uid;
	int ret;
};

static void *expunge_main(void *arg)
{
	struct expunger *x = arg;

	x->ret = dbox_msg_expunge(x->store, x->box, x->uid, NULL);
	return NULL;
}

/* another thread's connection (opened after the store) records too */
static void test_other_thread(void)
{
	struct dbox_store *store = new_store("s2", true);
	struct expunger x = { store, fixture_inbox(store), 0, -1 };
	struct dbox_removed *rows;
	pthread_t t;

	x.uid = fixture_add(store, x.box, 1, DBOX_FLAG_SEEN);
	REQUIRE(pthread_create(&t, NULL, expunge_main, &x) == 0);
	pthread_join(t, NULL);
	CHECK_EQ_INT(x.ret, 0);
	REQUIRE(dbox_store_take_removed(store, &rows) == 1);
	CHECK_STR(rows[0].base, "B0");
	free(rows);
	dbox_store_close(store);
}

/* more than the bound (a reindex removes every row and adds them
 * again): the first 4096 are kept, the others left out */
static void test_bound(void)
{
	struct dbox_store *store = new_store("s3", true);
	struct dbox_removed *rows;
	struct dbox_err err = { "" };

	fixture_add(store, fixture_inbox(store), 4100, DBOX_FLAG_SEEN);
	REQUIRE(dbox_store_reindex(store, &err) == 4100);
	CHECK_EQ_INT(dbox_store_take_removed(store, &rows), 4096);
	free(rows);
	dbox_store_close(store);
}

static void test_untracked(void)
{
	struct dbox_store *store = new_store("s4", false);
	int64_t box = fixture_inbox(store);
	struct dbox_removed *rows;
	uint32_t uid = fixture_add(store, box, 1, DBOX_FLAG_SEEN);

	REQUIRE(dbox_msg_expunge(store, box, uid, NULL) == 0);
	CHECK_EQ_INT(dbox_store_take_removed(store, &rows), 0);
	CHECK(rows == NULL);
	dbox_store_close(store);
}

int main(void)
{
	fixture_root(root, sizeof(root), "dbox-removed");
	RUN(test_expunge_and_move);
	RUN(test_other_thread);
	RUN(test_bound);
	RUN(test_untracked);
	fixture_root_remove(root);
	return CHECK_DONE();
}
