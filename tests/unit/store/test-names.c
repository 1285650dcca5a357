/* test-names.c - mailbox names <-> Dovecot's on-disk (mUTF-7) names. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "store/store-private.h"

static void roundtrip(const char *name, const char *storage)
{
	char buf[256], back[256];

	CHECK_EQ_INT(dbox_name_to_storage(name, buf, sizeof(buf)), 0);
	CHECK_STR(buf, storage);
	CHECK_EQ_INT(dbox_storage_to_name(storage, back, sizeof(back)), 0);
	CHECK_STR(back, name);
}

static void test_roundtrips(void)
{
	roundtrip("INBOX", "INBOX");
	roundtrip("Entwürfe", "Entw&APw-rfe");          /* dbox-format.md 1.5 */
	roundtrip("a&b", "a&-b");
	roundtrip("Lists/linux", "Lists/linux");
	roundtrip("日本語", "&ZeVnLIqe-");               /* RFC 3501 example */
	roundtrip("~peter/mail/台北/日本語",
		  "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	roundtrip("emoji 😀 x", "emoji &2D3eAA- x");     /* surrogate pair */
	roundtrip("ä/ö", "&AOQ-/&APY-");
	roundtrip("äö", "&AOQA9g-");                     /* one shift */
}

static void test_invalid(void)
{
	char buf[64];

	/* base64 that encodes printable ASCII, bad chars, missing '-',
	 * lone surrogates, raw 8-bit, two shifts back to back (Dovecot
	 * ignores non-zero padding bits, so "&APx-" is valid) */
	const char *bad[] = { "&AGE-", "&Jjo!-", "&U,BTFw", "&2D0-",
			      "&APw", "\xc3\xbc", "&-&",
			      "&AOQ-&APY-" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(dbox_storage_to_name(bad[i], buf, sizeof(buf)) < 0);
	CHECK_EQ_INT(dbox_name_to_storage("\xff", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(dbox_name_to_storage("Entwürfe", buf, 5), -ENAMETOOLONG);
}

int main(void)
{
	RUN(test_roundtrips);
	RUN(test_invalid);
	return CHECK_DONE();
}
