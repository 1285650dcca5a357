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

static int64_t inbox(struct dbox_store *store)
{
	return fixture_inbox(store);
}

/* n messages named B<i>, flags \Seen, in cur/; the first uid */
static uint32_t add(struct dbox_store *store, int64_t box, int n)
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
					    .flags = DBOX_FLAG_SEEN };

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

static void test_expunge_and_move(void)
{
	struct dbox_store *store = new_store("s1", true);
	int64_t box = inbox(store);
	struct dbox_mailbox other;
	struct dbox_removed *rows;
	struct dbox_err err = { "" };
	uint32_t uid = add(store, box, 3), moved;

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
	struct expunger x = { store, inbox(store), 0, -1 };
	struct dbox_removed *rows;
	pthread_t t;

	x.uid = add(store, x.box, 1);
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

	add(store, inbox(store), 4100);
	REQUIRE(dbox_store_reindex(store, &err) == 4100);
	CHECK_EQ_INT(dbox_store_take_removed(store, &rows), 4096);
	free(rows);
	dbox_store_close(store);
}

static void test_untracked(void)
{
	struct dbox_store *store = new_store("s4", false);
	int64_t box = inbox(store);
	struct dbox_removed *rows;
	uint32_t uid = add(store, box, 1);

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
