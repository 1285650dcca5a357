/* test-dovi-mbox.c - stores and mailboxes: listing ROOT/mailboxes with
 * modified UTF-7 names, sdbox message lists, and the mdbox join with the
 * map (dovecot-index.md 5.2), from hand-built trees. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dbox/dovecot-index.h"
#include "dovi-build.h"

#define MAP_UV 1690000000u

static char root[256];

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdirs(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	mkdir(path, 0755);
}

static void put(const char *rel, const struct buf *b)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "wb");
	REQUIRE(f != NULL);
	REQUIRE(fwrite(b->p, 1, b->len, f) == b->len);
	REQUIRE(fclose(f) == 0);
}

/* A mailbox log: uids 1..n with flags, optional mdbox records
 * (map_uid = 10 * uid, guid bytes = uid). */
static void mailbox_log(struct buf *log, uint32_t n, bool mdbox,
			uint32_t map_uv)
{
	log_header(log, TEST_INDEXID, 2, 0, 0);
	REC(log, T_HEADER_UPDATE | T_EXTERNAL, pl_hdr32(24, 1700000100));
	if (mdbox) {
		struct buf h = { 0 };

		REC(log, T_EXT_INTRO, pl_intro("mdbox-hdr", 0, 24, 0, 0));
		buf_u16(&h, 0);
		buf_u16(&h, 20);
		buf_u32(&h, map_uv);
		for (int i = 0; i < 16; i++)
			buf_u8(&h, (uint8_t)(0xa0 + i));
		log_rec(log, T_EXT_HDR_UPDATE, &h);
		buf_free(&h);
	}
	for (uint32_t uid = 1; uid <= n; uid++) {
		REC(log, T_APPEND | T_EXTERNAL,
		    pl_append(uid, uid == 1 ? 0x08 : 0));
		if (!mdbox)
			continue;
		uint8_t mu = (uint8_t)(uid * 10);
		uint8_t rec[8] = { mu, 0, 0, 0, 0x10, 0, 0, 0 };
		uint8_t guid[16];

		memset(guid, (int)uid, sizeof(guid));
		REC(log, T_EXT_INTRO, pl_intro("mdbox", 0, 0, 8, 4));
		REC(log, T_EXT_REC_UPDATE, pl_rec_update(uid, rec, 8));
		REC(log, T_EXT_INTRO, pl_intro("guid", 0, 0, 16, 1));
		REC(log, T_EXT_REC_UPDATE, pl_rec_update(uid, guid, 16));
	}
	REC(log, T_KEYWORD_UPDATE, pl_keyword(0, "$Label1", 1, 1));
}

/* The map: map_uids 10, 20, 30 (file m.<map_uid/10>, offset 16, size
 * 100 + map_uid, refcount 1) */
static void map_log(struct buf *log, uint32_t last)
{
	uint16_t one = 1;

	log_header(log, TEST_INDEXID + 1, 2, 0, 0);
	REC(log, T_HEADER_UPDATE | T_EXTERNAL, pl_hdr32(24, MAP_UV));
	for (uint32_t mu = 10; mu <= last; mu += 10) {
		uint32_t rec[3] = { mu / 10, 16, 100 + mu };

		REC(log, T_APPEND, pl_append(mu, 0));
		REC(log, T_EXT_INTRO, pl_intro("map", 0, 8, 12, 4));
		REC(log, T_EXT_REC_UPDATE, pl_rec_update(mu, rec, 12));
		REC(log, T_EXT_INTRO, pl_intro("ref", 0, 0, 2, 2));
		REC(log, T_EXT_REC_UPDATE, pl_rec_update(mu, &one, 2));
	}
}

static void make_tree(bool mdbox)
{
	struct buf log = { 0 }, empty = { 0 };

	rm_tree(root);
	mkdir(root, 0755);
	mailbox_log(&log, 3, mdbox, MAP_UV);
	mkdirs("mailboxes/INBOX/dbox-Mails");
	put("mailboxes/INBOX/dbox-Mails/dovecot.index.log", &log);
	buf_free(&log);
	mailbox_log(&log, 1, mdbox, MAP_UV);
	mkdirs("mailboxes/Entw&APw-rfe/dbox-Mails");
	put("mailboxes/Entw&APw-rfe/dbox-Mails/dovecot.index.log", &log);
	mkdirs("mailboxes/Lists/linux/dbox-Mails");
	put("mailboxes/Lists/linux/dbox-Mails/dovecot.index.log", &log);
	mkdirs("mailboxes/bad&name/dbox-Mails");
	put("mailboxes/bad&name/dbox-Mails/dovecot.index.log", &log);
	mkdirs("mailboxes/Empty/dbox-Mails");
	mkdirs("mailboxes/NotAMailbox");
	mkdirs("mailboxes/..DOVECOT-TrasH/dbox-Mails");
	buf_free(&log);
	if (mdbox) {
		mkdirs("storage");
		map_log(&log, 30);
		put("storage/dovecot.map.index.log", &log);
		buf_free(&log);
	}
	buf_free(&empty);
}

static void test_list(void)
{
	struct dovi_store *store;
	struct dovi_mailbox_name *names;
	size_t n;
	struct dbox_err err = { "" };

	make_tree(false);
	REQUIRE(dovi_store_open(root, DOVI_SDBOX, &store, &err) == 0);
	REQUIRE(dovi_store_list(store, &names, &n, &err) == 0);
	REQUIRE(n == 5);
	CHECK_STR(names[0].storage_name, "Empty");
	CHECK_STR(names[1].storage_name, "Entw&APw-rfe");
	CHECK_STR(names[1].name, "Entw\xc3\xbcrfe");
	CHECK(names[1].name_valid);
	CHECK_STR(names[2].storage_name, "INBOX");
	CHECK_STR(names[3].storage_name, "Lists/linux");
	CHECK_STR(names[3].name, "Lists/linux");
	CHECK_STR(names[4].storage_name, "bad&name");
	CHECK_STR(names[4].name, "bad&name");
	CHECK(!names[4].name_valid);
	dovi_mailbox_names_free(names, n);
	CHECK(dovi_store_map(store, NULL) == NULL);
	dovi_store_free(store);
	/* a store without mailboxes/ yet */
	rm_tree(root);
	mkdir(root, 0755);
	REQUIRE(dovi_store_open(root, DOVI_SDBOX, &store, &err) == 0);
	REQUIRE(dovi_store_list(store, &names, &n, &err) == 0);
	CHECK_EQ_INT(n, 0);
	dovi_mailbox_names_free(names, n);
	dovi_store_free(store);
	CHECK_EQ_INT(dovi_store_open("/nonexistent/dovi", DOVI_SDBOX, &store,
				     &err), -ENOENT);
}

static void test_sdbox_mailbox(void)
{
	struct dovi_store *store;
	struct dovi_mailbox *box;
	const struct dovi_message *m;
	struct dbox_err err = { "" };
	char path[512], want[512];
	uint8_t guid[16];

	make_tree(false);
	REQUIRE(dovi_store_open(root, DOVI_SDBOX, &store, &err) == 0);
	REQUIRE(dovi_mailbox_open(store, "INBOX", &box, &err) == 0);
	CHECK_EQ_INT(dovi_mailbox_count(box), 3);
	CHECK_EQ_INT(dovi_mailbox_uid_validity(box), 1700000100);
	CHECK_EQ_INT(dovi_mailbox_next_uid(box), 4);
	CHECK(!dovi_mailbox_guid(box, guid));
	m = dovi_mailbox_messages(box);
	CHECK_EQ_INT(m[0].uid, 1);
	CHECK_EQ_INT(m[0].flags, DOVI_FLAG_SEEN);
	REQUIRE(m[0].keyword_count == 1);
	CHECK_STR(m[0].keywords[0], "$Label1");
	CHECK_EQ_INT(m[1].keyword_count, 0);
	CHECK(!m[0].have_map_uid);
	REQUIRE(dovi_mailbox_sdbox_path(box, 3, path, sizeof(path)) == 0);
	snprintf(want, sizeof(want), "%s/mailboxes/INBOX/dbox-Mails/u.3",
		 root);
	CHECK_STR(path, want);
	dovi_mailbox_free(box);

	REQUIRE(dovi_mailbox_open(store, "Entw\xc3\xbcrfe", &box, &err) == 0);
	CHECK_EQ_INT(dovi_mailbox_count(box), 1);
	CHECK_STR(dovi_mailbox_name(box), "Entw\xc3\xbcrfe");
	dovi_mailbox_free(box);
	REQUIRE(dovi_mailbox_open_storage_name(store, "bad&name", &box,
					       &err) == 0);
	CHECK_EQ_INT(dovi_mailbox_count(box), 1);
	dovi_mailbox_free(box);
	/* no index files yet: empty, as Dovecot shows it */
	REQUIRE(dovi_mailbox_open(store, "Empty", &box, &err) == 0);
	CHECK_EQ_INT(dovi_mailbox_count(box), 0);
	CHECK(dovi_mailbox_index(box) == NULL);
	dovi_mailbox_free(box);
	CHECK_EQ_INT(dovi_mailbox_open(store, "NotAMailbox", &box, &err),
		     -ENOENT);
	CHECK_EQ_INT(dovi_mailbox_open(store, "Nope", &box, &err), -ENOENT);
	CHECK_EQ_INT(dovi_mailbox_open(store, "../x", &box, &err), -EINVAL);
	CHECK_EQ_INT(dovi_mailbox_open(store, "a//b", &box, &err), -EINVAL);
	CHECK_EQ_INT(dovi_mailbox_open(store, "a/dbox-Mails", &box, &err),
		     -EINVAL);
	CHECK_EQ_INT(dovi_mailbox_open(store, "\xff", &box, &err), -EINVAL);
	dovi_store_free(store);
}

static void test_mdbox_join(void)
{
	struct dovi_store *store;
	struct dovi_mailbox *box;
	const struct dovi_message *m;
	struct dbox_err err = { "" };
	uint8_t guid[16];

	make_tree(true);
	REQUIRE(dovi_store_open(root, DOVI_MDBOX, &store, &err) == 0);
	REQUIRE(dovi_mailbox_open(store, "INBOX", &box, &err) == 0);
	REQUIRE(dovi_mailbox_count(box) == 3);
	m = dovi_mailbox_messages(box);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(m[i].have_map_uid);
		CHECK(m[i].in_map);
		CHECK_EQ_INT(m[i].map_uid, 10 * (i + 1));
		CHECK_EQ_INT(m[i].save_date, 16);
		CHECK_EQ_INT(m[i].file_id, i + 1);
		CHECK_EQ_INT(m[i].offset, 16);
		CHECK_EQ_INT(m[i].size, 100 + 10 * (i + 1));
		CHECK(m[i].have_refcount);
		CHECK_EQ_INT(m[i].refcount, 1);
		CHECK(m[i].have_guid);
		CHECK_EQ_INT(m[i].guid[0], i + 1);
	}
	CHECK(dovi_mailbox_guid(box, guid));
	CHECK_EQ_INT(guid[0], 0xa0);
	CHECK_EQ_INT(dovi_mailbox_hidden(box), 0);
	dovi_mailbox_free(box);

	/* the map lacks map_uid 30: hidden (expunged meanwhile) */
	{
		struct buf log = { 0 };
		bool changed;

		REQUIRE(dovi_mailbox_open(store, "INBOX", &box, &err) == 0);
		map_log(&log, 20);
		put("storage/dovecot.map.index.log", &log);
		buf_free(&log);
		/* the new map file is a reset log: the map reloads */
		REQUIRE(dovi_mailbox_refresh(box, &changed, &err) == 0);
		CHECK(changed);
		CHECK_EQ_INT(dovi_mailbox_count(box), 2);
		CHECK_EQ_INT(dovi_mailbox_hidden(box), 1);
		REQUIRE(dovi_mailbox_refresh(box, &changed, &err) == 0);
		CHECK(!changed);
		/* the map comes back: the message too */
		map_log(&log, 30);
		put("storage/dovecot.map.index.log", &log);
		buf_free(&log);
		REQUIRE(dovi_mailbox_refresh(box, &changed, &err) == 0);
		CHECK(changed);
		CHECK_EQ_INT(dovi_mailbox_count(box), 3);
		dovi_mailbox_free(box);
	}
	dovi_store_free(store);

	/* map_uid_validity of another map: -ESTALE */
	{
		struct buf log = { 0 };

		mailbox_log(&log, 1, true, MAP_UV + 1);
		put("mailboxes/INBOX/dbox-Mails/dovecot.index.log", &log);
		buf_free(&log);
		REQUIRE(dovi_store_open(root, DOVI_MDBOX, &store, &err) == 0);
		CHECK_EQ_INT(dovi_mailbox_open(store, "INBOX", &box, &err),
			     -ESTALE);
		CHECK(strstr(err.msg, "map_uid_validity") != NULL);
		dovi_store_free(store);
	}
}

/* no map files yet: nothing can be read, but nothing fails either */
static void test_mdbox_no_map(void)
{
	struct dovi_store *store;
	struct dovi_mailbox *box;
	struct dbox_err err = { "" };
	char path[512];

	make_tree(true);
	snprintf(path, sizeof(path), "%s/storage/dovecot.map.index.log", root);
	REQUIRE(unlink(path) == 0);
	REQUIRE(dovi_store_open(root, DOVI_MDBOX, &store, &err) == 0);
	REQUIRE(dovi_mailbox_open(store, "INBOX", &box, &err) == 0);
	CHECK_EQ_INT(dovi_mailbox_count(box), 0);
	CHECK_EQ_INT(dovi_mailbox_hidden(box), 3);
	CHECK_EQ_INT(dovi_mailbox_keyword_count(box), 1);
	dovi_mailbox_free(box);
	REQUIRE(dovi_mailbox_open(store, "Empty", &box, &err) == 0);
	CHECK_EQ_INT(dovi_mailbox_count(box), 0);
	dovi_mailbox_free(box);
	dovi_store_free(store);
}

/* changed is exact: flags, keywords, uid_validity; not bookkeeping */
static void test_changed(void)
{
	struct dovi_store *store;
	struct dovi_mailbox *box;
	struct dbox_err err = { "" };
	struct buf log = { 0 };
	char path[512];
	bool changed = true;

	make_tree(false);
	snprintf(path, sizeof(path), "%s/mailboxes/INBOX/dbox-Mails/"
		 "dovecot.index.log", root);
	mailbox_log(&log, 3, false, 0);
	REQUIRE(dovi_store_open(root, DOVI_SDBOX, &store, &err) == 0);
	REQUIRE(dovi_mailbox_open(store, "INBOX", &box, &err) == 0);
	/* a tail-offset header update only */
	REC(&log, T_HEADER_UPDATE, pl_hdr32(64, 999));
	put("mailboxes/INBOX/dbox-Mails/dovecot.index.log", &log);
	REQUIRE(dovi_mailbox_refresh(box, &changed, &err) == 0);
	CHECK(!changed);
	REC(&log, T_KEYWORD_UPDATE, pl_keyword(0, "todo", 2, 2));
	put("mailboxes/INBOX/dbox-Mails/dovecot.index.log", &log);
	REQUIRE(dovi_mailbox_refresh(box, &changed, &err) == 0);
	CHECK(changed);
	CHECK_STR(dovi_mailbox_messages(box)[1].keywords[0], "todo");
	REC(&log, T_HEADER_UPDATE, pl_hdr32(24, 5));
	put("mailboxes/INBOX/dbox-Mails/dovecot.index.log", &log);
	REQUIRE(dovi_mailbox_refresh(box, &changed, &err) == 0);
	CHECK(changed);
	CHECK_EQ_INT(dovi_mailbox_uid_validity(box), 5);
	REC(&log, T_EXPUNGE | T_EXTERNAL, pl_range(1, 1));
	put("mailboxes/INBOX/dbox-Mails/dovecot.index.log", &log);
	REQUIRE(dovi_mailbox_refresh(box, &changed, &err) == 0);
	CHECK(changed);
	CHECK_EQ_INT(dovi_mailbox_count(box), 2);
	dovi_mailbox_free(box);
	dovi_store_free(store);
	buf_free(&log);
	(void)path;
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/dovi-mbox.XXXXXX");
	REQUIRE(mkdtemp(root) != NULL);
	RUN(test_list);
	RUN(test_sdbox_mailbox);
	RUN(test_mdbox_join);
	RUN(test_mdbox_no_map);
	RUN(test_changed);
	rm_tree(root);
	return CHECK_DONE();
}
