/* test-cookies.c - readdir cookies (fusefs/cookie.h) and the folder
 * cookies of fusefs/folders.c: the cookie spaces of a directory never
 * overlap, and a listing resumed after any cookie it gave goes on with
 * exactly the entries after it, however mailboxes came and went. */
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cookie.h"
#include "folders.h"
#include "view.h"

/* Dots, subdirectories and the keywords file come before every folder
 * and message; both before every backing entry; all fit an off_t. */
static void test_spaces(void)
{
	CHECK(CK_DOT > 0);  /* 0 is the start of a listing */
	CHECK(CK_KW < cookie_msg(0));
	CHECK(CK_KW < FOLDER_COOKIE_BASE + 1);
	CHECK(cookie_msg(UINT32_MAX) < cookie_backing(0));
	CHECK(FOLDER_COOKIE_BASE + VIEW_MAILBOX_MAX < cookie_backing(0));
	CHECK(cookie_backing(UINT32_MAX) < (uint64_t)INT64_MAX);
}

/* A message listing resumes after the uid of the cookie it was given;
 * any cookie before the messages starts them from the first. */
static void test_msg_resume(void)
{
	uint32_t uids[] = { 1, 2, 77, 1u << 31, UINT32_MAX };

	for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++)
		CHECK_EQ_INT(cookie_msg_after(cookie_msg(uids[i])), uids[i]);
	for (uint64_t off = 0; off <= CK_KW; off++)
		CHECK_EQ_INT(cookie_msg_after(off), 0);
	CHECK_EQ_INT(cookie_msg_after(FOLDER_COOKIE_BASE), 0);
}

/* Backing entries resume at the next snapshot index; a cookie before
 * them starts them at the first. */
static void test_backing_resume(void)
{
	CHECK_EQ_INT(cookie_backing_first(0), 0);
	CHECK_EQ_INT(cookie_backing_first(CK_KW), 0);
	CHECK_EQ_INT(cookie_backing_first(cookie_msg(UINT32_MAX)), 0);
	for (uint64_t i = 0; i < 5; i++)
		CHECK_EQ_INT(cookie_backing_first(cookie_backing(i)), i + 1);
}

struct seen {
	char names[16][DBOX_NAME_MAX * 4 + 16];
	uint64_t cookies[16];
	int n;
	int stop_after;   /* stop the walk after this many (0: never) */
};

static int collect(void *ctx, const struct folder_child *c)
{
	struct seen *s = ctx;

	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", c->name);
	s->cookies[s->n++] = c->cookie;
	return s->stop_after != 0 && s->n == s->stop_after;
}

static void add_box(struct folder_list *fl, struct dbox_mailbox *boxes,
		    int64_t id, const char *name)
{
	struct dbox_mailbox *b = &boxes[fl->count++];

	memset(b, 0, sizeof(*b));
	b->id = id;
	snprintf(b->name, sizeof(b->name), "%s", name);
	fl->boxes = boxes;
}

static void list(const struct folder_list *fl, enum view_layout layout,
		 uint64_t after, int stop_after, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	s->stop_after = stop_after;
	folders_children(fl, layout, "", 0, 1, after, collect, s);
}

/* fs layout, root: children in cookie order, a parent without its own
 * mailbox (vdir) at the lowest id below it; each cookie once. */
static void test_folders_fs(void)
{
	struct dbox_mailbox boxes[8];
	struct folder_list fl = { .boxes = boxes };
	struct seen s;

	add_box(&fl, boxes, 1, "INBOX");
	add_box(&fl, boxes, 2, "a");
	add_box(&fl, boxes, 3, "b/c");
	add_box(&fl, boxes, 4, "a/x");
	add_box(&fl, boxes, 5, "b/d");
	list(&fl, VIEW_FS, 0, 0, &s);
	REQUIRE(s.n == 3);
	CHECK_STR(s.names[0], "INBOX");
	CHECK_STR(s.names[1], "a");
	CHECK_STR(s.names[2], "b");
	CHECK_EQ_INT(s.cookies[0], FOLDER_COOKIE_BASE + 1);
	CHECK_EQ_INT(s.cookies[1], FOLDER_COOKIE_BASE + 2);
	CHECK_EQ_INT(s.cookies[2], FOLDER_COOKIE_BASE + 3);
}

/* A listing stopped after "a" (the kernel's buffer was full) resumes
 * with "b" even when "a" was removed and a mailbox was made meanwhile:
 * nothing shows twice, nothing is skipped. */
static void test_folders_resume(void)
{
	struct dbox_mailbox boxes[8];
	struct folder_list fl = { .boxes = boxes };
	struct seen s;
	uint64_t last;

	add_box(&fl, boxes, 1, "INBOX");
	add_box(&fl, boxes, 2, "a");
	add_box(&fl, boxes, 3, "b");
	list(&fl, VIEW_FS, 0, 2, &s);
	REQUIRE(s.n == 2);
	last = s.cookies[1];
	/* "a" goes, "c" comes (ids only grow) */
	fl.count = 0;
	add_box(&fl, boxes, 1, "INBOX");
	add_box(&fl, boxes, 3, "b");
	add_box(&fl, boxes, 6, "c");
	list(&fl, VIEW_FS, last, 0, &s);
	REQUIRE(s.n == 2);
	CHECK_STR(s.names[0], "b");
	CHECK_STR(s.names[1], "c");
	for (int i = 0; i < s.n; i++)
		CHECK(s.cookies[i] > last);
}

/* fs layout, stored parents (vdirs.h): a parent with a stored entry has
 * the entry's identity; one that holds no mailbox (kept after its last
 * folder went) comes after the folders, by identity; an entry of a
 * mailbox's name is that mailbox's folder; a resumed listing gives each
 * once. */
static void test_folders_kept(void)
{
	struct dbox_mailbox boxes[8];
	struct vdir_entry vd[4] = {
		{ "a", 600 }, { "b", 500 }, { "k", 90 }, { "k/l", 70 },
	};
	struct folder_list fl = { .boxes = boxes, .vdirs = vd,
				  .vdir_count = 4 };
	struct view_ino v;
	struct seen s;
	char prefix[64];

	add_box(&fl, boxes, 1, "INBOX");
	add_box(&fl, boxes, 2, "a");
	add_box(&fl, boxes, 3, "b/c");
	REQUIRE(folders_index_names(&fl) == 0);
	list(&fl, VIEW_FS, 0, 0, &s);
	REQUIRE(s.n == 4);
	CHECK_STR(s.names[0], "INBOX");
	CHECK_STR(s.names[1], "a");
	CHECK_STR(s.names[2], "b");
	CHECK_STR(s.names[3], "k");
	CHECK_EQ_INT(s.cookies[2], FOLDER_COOKIE_BASE + 3);
	CHECK_EQ_INT(s.cookies[3], FOLDER_KEPT_COOKIE_BASE + 90);
	list(&fl, VIEW_FS, FOLDER_COOKIE_BASE + 3, 0, &s);
	REQUIRE(s.n == 1);
	CHECK_STR(s.names[0], "k");
	list(&fl, VIEW_FS, FOLDER_KEPT_COOKIE_BASE + 90, 0, &s);
	CHECK_EQ_INT(s.n, 0);
	REQUIRE(view_ino_decode(view_ino_vdir(90), &v));
	CHECK_EQ_INT(folders_prefix(&fl, VIEW_FS, &v, prefix,
				    sizeof(prefix)), 1);
	CHECK_STR(prefix, "k");
	REQUIRE(view_ino_decode(view_ino_vdir(70), &v));
	CHECK_EQ_INT(folders_prefix(&fl, VIEW_FS, &v, prefix,
				    sizeof(prefix)), 2);
	CHECK_STR(prefix, "k/l");
	REQUIRE(view_ino_decode(view_ino_vdir(600), &v));
	CHECK_EQ_INT(folders_prefix(&fl, VIEW_FS, &v, prefix,
				    sizeof(prefix)), -ENOENT);
	CHECK_EQ_INT(folders_count_children(&fl, VIEW_FS, "k", 1, 1), 1);
	CHECK_EQ_INT(folders_count_children(&fl, VIEW_FS, "k/l", 2, 1), 0);
	CHECK_EQ_INT(folders_dir_ino(&fl, "b"), view_ino_vdir(500));
	CHECK_EQ_INT(folders_dir_ino(&fl, "k/l"), view_ino_vdir(70));
	CHECK_EQ_INT(folders_dir_ino(&fl, "z"), 0);
	free(fl.by_name);
}

/* maildir++ root: every mailbox but INBOX (which is the root itself),
 * cookie by mailbox id; resuming skips exactly what was given. */
static void test_folders_maildirpp(void)
{
	struct dbox_mailbox boxes[8];
	struct folder_list fl = { .boxes = boxes };
	struct seen s;

	add_box(&fl, boxes, 1, "INBOX");
	add_box(&fl, boxes, 2, "a");
	add_box(&fl, boxes, 3, "a/x");
	add_box(&fl, boxes, 4, "b");
	list(&fl, VIEW_MAILDIRPP, 0, 0, &s);
	REQUIRE(s.n == 3);
	CHECK_STR(s.names[0], ".a");
	CHECK_STR(s.names[1], ".a.x");
	CHECK_STR(s.names[2], ".b");
	CHECK_EQ_INT(s.cookies[2], FOLDER_COOKIE_BASE + 4);
	list(&fl, VIEW_MAILDIRPP, s.cookies[0], 0, &s);
	REQUIRE(s.n == 2);
	CHECK_STR(s.names[0], ".a.x");
}

int main(void)
{
	RUN(test_spaces);
	RUN(test_msg_resume);
	RUN(test_backing_resume);
	RUN(test_folders_fs);
	RUN(test_folders_resume);
	RUN(test_folders_kept);
	RUN(test_folders_maildirpp);
	return CHECK_DONE();
}
