/* test-view.c - the pure parts of the daemon's view (fusefs/view.c):
 * inode numbers and their decoding, message names and which names
 * become messages (delivery naming), maildir++ folder names.  The fs layout's names are mailbox names as they are. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "view.h"

static void test_ino_roundtrip(void)
{
	struct view_ino v;

	REQUIRE(view_ino_decode(VIEW_ROOT_INO, &v));
	CHECK_EQ_INT(v.kind, VK_ROOT);

	REQUIRE(view_ino_decode(view_ino_folder(42), &v));
	CHECK_EQ_INT(v.kind, VK_FOLDER);
	CHECK_EQ_INT(v.box, 42);

	for (int s = SUB_CUR; s <= SUB_TMP; s++) {
		REQUIRE(view_ino_decode(view_ino_sub(7, (enum view_sub)s), &v));
		CHECK_EQ_INT(v.kind, VK_SUB);
		CHECK_EQ_INT(v.box, 7);
		CHECK_EQ_INT(v.sub, s);
	}

	REQUIRE(view_ino_decode(view_ino_msg(VIEW_MAILBOX_MAX, 0xffffffffu),
				&v));
	CHECK_EQ_INT(v.kind, VK_MSG);
	CHECK_EQ_INT(v.box, VIEW_MAILBOX_MAX);
	CHECK_EQ_INT(v.uid, 0xffffffffu);

	REQUIRE(view_ino_decode(view_ino_kwfile(3), &v));
	CHECK_EQ_INT(v.kind, VK_KWFILE);
	CHECK_EQ_INT(v.box, 3);

	/* a parent's stored identity, up to 60 bits (vdirs.h) */
	REQUIRE(view_ino_decode(view_ino_vdir(9), &v));
	CHECK_EQ_INT(v.kind, VK_VDIR);
	CHECK_EQ_INT(v.ino & VIEW_VDIR_ID_MASK, 9);
	REQUIRE(view_ino_decode(view_ino_vdir(VIEW_VDIR_ID_MASK), &v));
	CHECK_EQ_INT(v.kind, VK_VDIR);

	REQUIRE(view_ino_decode((uint64_t)VK_PLAIN << 60 | 12345, &v));
	CHECK_EQ_INT(v.kind, VK_PLAIN);
	CHECK_EQ_INT(view_ino_plain(&v), (uint64_t)VK_PLAIN << 60 | 12345);
}

/* Message inodes grow with uid, then with mailbox (storage order). */
static void test_ino_order(void)
{
	CHECK(view_ino_msg(1, 1) < view_ino_msg(1, 2));
	CHECK(view_ino_msg(1, 0xffffffffu) < view_ino_msg(2, 1));
}

static void test_ino_invalid(void)
{
	struct view_ino v;

	CHECK(!view_ino_decode(0, &v));
	CHECK(!view_ino_decode(view_ino_folder(0), &v));
	CHECK(!view_ino_decode(view_ino_folder(5) | 1ull << 56, &v));
	CHECK(!view_ino_decode(view_ino_sub(5, SUB_CUR) | 3ull << 56, &v));
	CHECK(!view_ino_decode(view_ino_msg(5, 0), &v));
	CHECK(!view_ino_decode(view_ino_msg(0, 5), &v));
	CHECK(!view_ino_decode(view_ino_vdir(0), &v));
	CHECK(!view_ino_decode(6ull << 60 | 1, &v));
	for (uint64_t k = 8; k < 16; k++)
		CHECK(!view_ino_decode(k << 60 | 1, &v));
}

static void test_name_split(void)
{
	char base[16];
	const char *info;

	view_name_split("1234.M5P6.host:2,FS", base, sizeof(base), &info);
	CHECK_STR(base, "1234.M5P6.host");
	CHECK_STR(info, "FS");
	view_name_split("plain", base, sizeof(base), &info);
	CHECK_STR(base, "plain");
	CHECK(info == NULL);
	view_name_split("x:2,", base, sizeof(base), &info);
	CHECK_STR(base, "x");
	CHECK_STR(info, "");
	/* cut to the buffer, never beyond */
	view_name_split("0123456789abcdefghij:2,S", base, sizeof(base), &info);
	CHECK_EQ_INT(strlen(base), sizeof(base) - 1);
	CHECK_STR(info, "S");
}

/* Delivery naming: which names in cur/ or new/ become messages. */
static void test_final_name(void)
{
	char base[DBOX_NAME_MAX + 8], longname[DBOX_NAME_MAX + 8];
	const char *info;
	enum view_sub sub;

	CHECK(view_final_name("1.2.host:2,S", base, sizeof(base), &info));
	CHECK_STR(base, "1.2.host");
	CHECK_STR(info, "S");
	CHECK(view_final_name("plain", base, sizeof(base), &info));
	CHECK(info == NULL);
	/* rsync's temporary .name.XXXXXX and empty bases are not messages */
	CHECK(!view_final_name(".msg.Ab12Cd", base, sizeof(base), &info));
	CHECK(!view_final_name(":2,S", base, sizeof(base), &info));
	CHECK(!view_final_name("", base, sizeof(base), &info));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(view_final_name(longname, base, sizeof(longname), &info) ==
	      false);

	CHECK(view_sub_of_name("cur", &sub) && sub == SUB_CUR);
	CHECK(view_sub_of_name("new", &sub) && sub == SUB_NEW);
	CHECK(view_sub_of_name("tmp", &sub) && sub == SUB_TMP);
	CHECK(!view_sub_of_name("Cur", &sub));
	CHECK(!view_sub_of_name("cur/", &sub));
	for (int i = 0; i < 3; i++)
		CHECK(view_sub_of_name(view_sub_names[i], &sub) && (int)sub == i);
}

static void test_msg_name(void)
{
	struct dbox_msg m;
	char name[DBOX_NAME_MAX + 48];

	memset(&m, 0, sizeof(m));
	strcpy(m.base, "b1");
	m.in_new = true;
	view_msg_name(&m, name, sizeof(name));
	CHECK_STR(name, "b1");
	m.new_info = true;
	view_msg_name(&m, name, sizeof(name));
	CHECK_STR(name, "b1:2,");
	m.in_new = false;
	m.new_info = false;
	view_msg_name(&m, name, sizeof(name));
	CHECK(strncmp(name, "b1:2,", 5) == 0);
}

static void test_pp_names(void)
{
	char buf[300];

	CHECK_EQ_INT(view_pp_to_mailbox(".Lists.linux", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "Lists/linux");
	CHECK_EQ_INT(view_mailbox_to_pp("Lists/linux", buf, sizeof(buf)), 0);
	CHECK_STR(buf, ".Lists.linux");

	CHECK_EQ_INT(view_mailbox_to_pp("a.b%c", buf, sizeof(buf)), 0);
	CHECK_STR(buf, ".a%2Eb%25c");
	CHECK_EQ_INT(view_pp_to_mailbox(".a%2Eb%25c", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "a.b%c");

	/* one spelling per name: lower-case or other escapes are not names */
	CHECK_EQ_INT(view_pp_to_mailbox(".a%2eb", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(view_pp_to_mailbox(".a%41", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(view_pp_to_mailbox("noDot", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(view_pp_to_mailbox(".", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(view_pp_to_mailbox("..", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(view_pp_to_mailbox(".ab", buf, 2), -ENAMETOOLONG);
	/* a name that starts with '.': Dovecot's ..DOVECOT-TRASHED */
	CHECK_EQ_INT(view_pp_to_mailbox("..DOVECOT-TRASHED", buf, sizeof(buf)),
		     0);
	CHECK_STR(buf, ".DOVECOT-TRASHED");
	CHECK_EQ_INT(view_mailbox_to_pp(".x/y.z", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "..x.y%2Ez");
	CHECK_EQ_INT(view_pp_to_mailbox("..x.y%2Ez", buf, sizeof(buf)), 0);
	CHECK_STR(buf, ".x/y.z");
	CHECK_EQ_INT(view_pp_to_mailbox(".%2Ex", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(view_pp_to_mailbox("...x", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(view_mailbox_to_pp("abc", buf, 3), -ENAMETOOLONG);

	/* names that reach VIEW_NAME_MAX only through escapes */
	{
		char box[200], pp[300];

		memset(box, '.', 100);
		box[100] = '\0';
		CHECK_EQ_INT(view_mailbox_to_pp(box, pp, sizeof(pp)),
			     -ENAMETOOLONG);
		memset(pp, 'x', 256);
		pp[0] = '.';
		pp[256] = '\0';
		CHECK_EQ_INT(view_pp_to_mailbox(pp, buf, sizeof(buf)),
			     -ENAMETOOLONG);
	}
}

int main(void)
{
	RUN(test_ino_roundtrip);
	RUN(test_ino_order);
	RUN(test_ino_invalid);
	RUN(test_name_split);
	RUN(test_final_name);
	RUN(test_msg_name);
	RUN(test_pp_names);
	return CHECK_DONE();
}
