/* test-save-prepare.c - transactions prepared apart (dbox_save_sync),
 * retargeted (dbox_save_set_state) and committed as one (dbox_save_merge),
 * as dboxfs does for deliveries synced before their rename. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dbox/save.h"
#include "dbox/store.h"
#include "store-fixture.h"

static char root[64];

static struct dbox_store *new_store(enum dbox_store_format fmt,
				    const char *name)
{
	struct dbox_open_opts oo = { 0 };

	return fixture_store(root, name, fmt, &oo);
}

static struct dbox_store *reopen(struct dbox_store *store, const char *name)
{
	struct dbox_open_opts oo = { 0 };
	struct dbox_err err = { "" };
	char path[128];

	dbox_store_close(store);
	snprintf(path, sizeof(path), "%s/%s", root, name);
	REQUIRE(dbox_store_open(path, &oo, &store, &err) == 0);
	return store;
}

static int64_t inbox(struct dbox_store *store)
{
	return fixture_inbox(store);
}

/* A transaction holding one finished message `text` named `base`. */
static struct dbox_save_txn *one(struct dbox_store *store, int64_t box,
				 const char *base, const char *text)
{
	struct dbox_save_opts o = { .mailbox_id = box, .received = 1700000000,
				    .base = base, .in_new = true };
	struct dbox_save_txn *txn;
	struct dbox_err err = { "" };

	REQUIRE(dbox_save_begin(store, &txn, &err) == 0);
	REQUIRE(dbox_save_msg_begin(txn, &o, &err) == 0);
	REQUIRE(dbox_save_write(txn, text, strlen(text), &err) == 0);
	REQUIRE(dbox_save_msg_finish(txn, &err) == 0);
	return txn;
}

static uint64_t count(struct dbox_store *store, int64_t box)
{
	struct dbox_err err = { "" };
	uint64_t n = 0;

	REQUIRE(dbox_msg_count(store, box, -1, &n, &err) == 0);
	return n;
}

static void show(void *ctx, const struct dbox_check_problem *p)
{
	(void)ctx;
	fprintf(stderr, "  %s:%llu: %s\n", p->path,
		(unsigned long long)p->offset, p->what);
}

static int problems(struct dbox_store *store)
{
	struct dbox_err err = { "" };

	return dbox_store_check(store, show, NULL, &err);
}

static void test_merge_commit(enum dbox_store_format fmt, const char *name)
{
	struct dbox_store *store = new_store(fmt, name);
	int64_t box = inbox(store);
	struct dbox_save_txn *a = one(store, box, "a", "Subject: a\n\nA\n");
	struct dbox_save_txn *b = one(store, box, "b", "Subject: b\n\nBB\n");
	struct dbox_save_opts o = { .mailbox_id = box, .received = -1,
				    .base = "c" };
	struct dbox_err err = { "" };
	struct dbox_msg m;
	uint32_t uids[3];

	CHECK_EQ_INT(dbox_save_sync(a, &err), 0);
	CHECK_EQ_INT(dbox_save_sync(b, &err), 0);
	/* synced is not visible */
	CHECK_EQ_INT(count(store, box), 0);
	CHECK_EQ_INT(dbox_save_set_state(b, 0, DBOX_FLAG_SEEN |
					 DBOX_FLAG_FLAGGED, 0, false, &err), 0);
	CHECK_EQ_INT(dbox_save_set_state(b, 1, 0, 0, false, &err), -EINVAL);
	CHECK_EQ_INT(dbox_save_merge(a, a, &err), -EINVAL);
	CHECK_EQ_INT(dbox_save_merge(a, b, &err), 0);
	CHECK_EQ_INT(dbox_save_count(a), 2);
	/* the merged transaction goes on taking messages */
	REQUIRE(dbox_save_msg_begin(a, &o, &err) == 0);
	REQUIRE(dbox_save_write(a, "Subject: c\n\nCCC\n", 16, &err) == 0);
	REQUIRE(dbox_save_msg_finish(a, &err) == 0);
	CHECK_EQ_INT(dbox_save_commit(a, uids, &err), 0);
	CHECK_EQ_INT(count(store, box), 3);
	REQUIRE(dbox_msg_get(store, box, uids[0], &m, &err) == 0);
	CHECK_STR(m.base, "a");
	CHECK(m.in_new);
	CHECK_EQ_INT(m.flags, 0);
	CHECK_EQ_INT(m.size, 14);
	REQUIRE(dbox_msg_get(store, box, uids[1], &m, &err) == 0);
	CHECK_STR(m.base, "b");
	CHECK(!m.in_new);
	CHECK_EQ_INT(m.flags, DBOX_FLAG_SEEN | DBOX_FLAG_FLAGGED);
	CHECK_EQ_INT(m.size, 15);
	CHECK_EQ_INT(m.received, 1700000000);
	REQUIRE(dbox_msg_get(store, box, uids[2], &m, &err) == 0);
	CHECK_STR(m.base, "c");
	CHECK_EQ_INT(m.size, 16);
	CHECK_EQ_INT(problems(store), 0);
	/* and so it stays across a reopen (recovery keeps what committed) */
	store = reopen(store, name);
	CHECK_EQ_INT(count(store, inbox(store)), 3);
	CHECK_EQ_INT(problems(store), 0);
	dbox_store_close(store);
}

/* A prepared transaction that is never committed leaves nothing, also
 * when another commits while it is prepared. */
static void test_prepared_rollback(enum dbox_store_format fmt,
				   const char *name)
{
	struct dbox_store *store = new_store(fmt, name);
	int64_t box = inbox(store);
	struct dbox_save_txn *a = one(store, box, "a", "Subject: a\n\nA\n");
	struct dbox_save_txn *b = one(store, box, "b", "Subject: b\n\nB\n");
	struct dbox_err err = { "" };

	struct dbox_save_txn *c;

	CHECK_EQ_INT(dbox_save_sync(a, &err), 0);
	dbox_save_rollback(a);
	CHECK_EQ_INT(dbox_save_sync(b, &err), 0);
	c = one(store, box, "c", "Subject: c\n\nC\n");
	CHECK_EQ_INT(dbox_save_commit(c, NULL, &err), 0);
	dbox_save_rollback(b);
	CHECK_EQ_INT(count(store, box), 1);
	CHECK_EQ_INT(problems(store), 0);
	store = reopen(store, name);
	CHECK_EQ_INT(count(store, inbox(store)), 1);
	CHECK_EQ_INT(problems(store), 0);
	dbox_store_close(store);
}

/* A uid reserved ahead (dboxfs shows a file's inode number, derived from
 * it, before the file is a message) is the one its message gets, also
 * among messages with allocated uids and through a merge; one that was
 * not reserved is refused; keep_dir_mtime leaves the directory's change
 * time as it was. */
static void test_reserved_uid(enum dbox_store_format fmt, const char *name)
{
	struct dbox_store *store = new_store(fmt, name);
	int64_t box = inbox(store);
	struct dbox_save_opts o = { .mailbox_id = box, .received = -1,
				    .base = "r", .keep_dir_mtime = true };
	struct dbox_save_txn *a, *b;
	struct dbox_err err = { "" };
	struct dbox_mailbox mb, after;
	struct dbox_msg m;
	uint32_t r1, r2, uids[3];

	REQUIRE(dbox_mailbox_reserve_uid(store, box, &r1, &err) == 0);
	REQUIRE(dbox_mailbox_reserve_uid(store, box, &r2, &err) == 0);
	CHECK_EQ_INT(r2, r1 + 1);
	REQUIRE(dbox_mailbox_get(store, box, &mb, &err) == 0);
	/* not reserved: refused */
	a = one(store, box, "a", "Subject: a\n\nA\n");
	o.uid = mb.next_uid;
	CHECK_EQ_INT(dbox_save_msg_begin(a, &o, &err), -EINVAL);
	o.uid = r2;
	REQUIRE(dbox_save_msg_begin(a, &o, &err) == 0);
	REQUIRE(dbox_save_write(a, "Subject: r\n\nR\n", 14, &err) == 0);
	REQUIRE(dbox_save_msg_finish(a, &err) == 0);
	b = one(store, box, "b", "Subject: b\n\nB\n");
	CHECK_EQ_INT(dbox_save_sync(b, &err), 0);
	CHECK_EQ_INT(dbox_save_merge(a, b, &err), 0);
	CHECK_EQ_INT(dbox_save_commit(a, uids, &err), 0);
	CHECK(uids[0] > r2);
	CHECK_EQ_INT(uids[1], r2);
	CHECK(uids[2] > r2 && uids[2] != uids[0]);
	REQUIRE(dbox_msg_get(store, box, r2, &m, &err) == 0);
	CHECK_STR(m.base, "r");
	CHECK_EQ_INT(m.size, 14);
	/* the reserved uid is used once */
	a = one(store, box, "c", "Subject: c\n\nC\n");
	CHECK_EQ_INT(dbox_save_commit(a, NULL, &err), 0);
	a = one(store, box, "d", "Subject: d\n\nD\n");
	o.base = "r2";
	REQUIRE(dbox_save_msg_begin(a, &o, &err) == 0);
	REQUIRE(dbox_save_write(a, "Subject: r\n\nR\n", 14, &err) == 0);
	REQUIRE(dbox_save_msg_finish(a, &err) == 0);
	CHECK(dbox_save_commit(a, NULL, &err) < 0);
	/* keep_dir_mtime: new/ keeps its time; without, it moves */
	REQUIRE(dbox_mailbox_get(store, box, &mb, &err) == 0);
	o.uid = r1;
	o.base = "k";
	o.in_new = true;
	REQUIRE(dbox_save_begin(store, &a, &err) == 0);
	REQUIRE(dbox_save_msg_begin(a, &o, &err) == 0);
	REQUIRE(dbox_save_write(a, "Subject: k\n\nK\n", 14, &err) == 0);
	REQUIRE(dbox_save_msg_finish(a, &err) == 0);
	CHECK_EQ_INT(dbox_save_commit(a, uids, &err), 0);
	CHECK_EQ_INT(uids[0], r1);
	REQUIRE(dbox_mailbox_get(store, box, &after, &err) == 0);
	CHECK_EQ_INT(after.change_new_ns, mb.change_new_ns);
	a = one(store, box, "n", "Subject: n\n\nN\n");
	CHECK_EQ_INT(dbox_save_commit(a, NULL, &err), 0);
	REQUIRE(dbox_mailbox_get(store, box, &after, &err) == 0);
	CHECK(after.change_new_ns > mb.change_new_ns);
	CHECK_EQ_INT(problems(store), 0);
	store = reopen(store, name);
	REQUIRE(dbox_msg_get(store, inbox(store), r2, &m, &err) == 0);
	CHECK_STR(m.base, "r");
	dbox_store_close(store);
}

/* A prepared record whose sync fails is not durable: dbox_save_sync says
 * so (one file: synced by the blocking wrapper, on the calling thread
 * where the fs runs requests inline, as the daemon's store does; two
 * files: in parallel), and nothing is committed. */
static void test_prepared_sync_fails(enum dbox_store_format fmt,
				     const char *name)
{
	struct dbox_open_opts oo = {
		.fs_config = "randomfail:eio:100%:sync/posix",
		.fs_sync_inline = true,
	};
	struct dbox_store *store = new_store(fmt, name);
	struct dbox_save_opts o = { .received = 1700000000, .in_new = true };
	struct dbox_err err = { "" };
	struct dbox_save_txn *txn;
	char path[128];
	int64_t box;

	dbox_store_close(store);
	snprintf(path, sizeof(path), "%s/%s", root, name);
	REQUIRE(dbox_store_open(path, &oo, &store, &err) == 0);
	box = inbox(store);
	txn = one(store, box, "f1", "Subject: f1\n\nf1\n");
	CHECK(dbox_save_sync(txn, &err) == -EIO);
	dbox_save_rollback(txn);
	/* two messages (sdbox: two files) */
	txn = one(store, box, "f2", "Subject: f2\n\nf2\n");
	o.mailbox_id = box;
	o.base = "f3";
	REQUIRE(dbox_save_msg_begin(txn, &o, &err) == 0);
	REQUIRE(dbox_save_write(txn, "Subject: f3\n\nf3\n", 16, &err) == 0);
	REQUIRE(dbox_save_msg_finish(txn, &err) == 0);
	CHECK(dbox_save_sync(txn, &err) == -EIO);
	dbox_save_rollback(txn);
	CHECK(count(store, box) == 0);
	dbox_store_close(store);
}

int main(void)
{
	fixture_root(root, sizeof(root), "dbox-prep");
	test_merge_commit(DBOX_FORMAT_MDBOX, "m1");
	test_merge_commit(DBOX_FORMAT_SDBOX, "s1");
	test_prepared_rollback(DBOX_FORMAT_MDBOX, "m2");
	test_prepared_rollback(DBOX_FORMAT_SDBOX, "s2");
	test_reserved_uid(DBOX_FORMAT_MDBOX, "m3");
	test_reserved_uid(DBOX_FORMAT_SDBOX, "s3");
	test_prepared_sync_fails(DBOX_FORMAT_MDBOX, "m4");
	test_prepared_sync_fails(DBOX_FORMAT_SDBOX, "s4");
	fixture_root_remove(root);
	return CHECK_DONE();
}
