/* test-mutf7.c - modified UTF-7 mailbox names and the UTF-8 helpers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dovecot/mutf7.h"
#include "dovecot/utf8.h"

static void check_pair(const char *utf8, const char *mutf7)
{
	char *out = NULL;

	CHECK_EQ_INT(dovi_mutf7_encode(utf8, &out), 0);
	CHECK_STR(out, mutf7);
	free(out);
	out = NULL;
	CHECK_EQ_INT(dovi_mutf7_decode(mutf7, &out), 0);
	CHECK_STR(out, utf8);
	free(out);
}

static void check_invalid(const char *mutf7)
{
	char *out = NULL;
	int ret = dovi_mutf7_decode(mutf7, &out);

	if (ret != -EINVAL)
		fprintf(stderr, "accepted invalid \"%s\"\n", mutf7);
	CHECK_EQ_INT(ret, -EINVAL);
	CHECK(out == NULL);
	free(out);
}

static void test_round_trips(void)
{
	check_pair("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	check_pair("a&b", "a&-b");
	check_pair("&", "&-");
	check_pair("&&", "&-&-");
	check_pair("INBOX", "INBOX");
	check_pair("", "");
	check_pair("Lists/linux", "Lists/linux");
	/* hierarchy survives: each part converted, '/' kept */
	check_pair("Entw\xc3\xbcrfe/\xc3\x9cnter", "Entw&APw-rfe/&ANw-nter");
	/* one run for consecutive non-ASCII characters (RFC 3501 example) */
	check_pair("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
		   "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		   "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	/* outside the BMP: a surrogate pair */
	check_pair("\xf0\x9f\x93\xa7 mail", "&2D3c5w- mail");
	/* C0 controls and DEL are encoded as Dovecot does */
	check_pair("a\x01" "b\x7f", "a&AAE-b&AH8-");
	check_pair("\xc3\xa4\xc3\xb6\xc3\xbc", "&AOQA9gD8-");
	check_pair("sp ace.x%y", "sp ace.x%y");
}

static void test_invalid(void)
{
	check_invalid("a&b");            /* '&' must start a shift */
	check_invalid("&");              /* unterminated */
	check_invalid("&AOQ");           /* no '-' */
	check_invalid("&A-");            /* dangling 6-bit group */
	check_invalid("&AGE-");          /* encodes printable 'a' */
	/* leftover bits not zero: non-canonical spellings of "&APw-" (3
	 * chars: 18 bits, 2 left over) and of "&AOQA9g-" (6 chars: 36 bits,
	 * 4 left over) */
	check_invalid("&APx-");
	check_invalid("&APz-");
	check_invalid("&AOQA9h-");
	check_invalid("&AOQA9v-");
	check_invalid("&AAA-");          /* encodes NUL */
	check_invalid("&AOQ-&APY-");     /* two shifts back to back */
	check_invalid("&2D0-");          /* lone high surrogate */
	check_invalid("&3KcA5A-");       /* lone low surrogate */
	check_invalid("&AO-");           /* odd number of bytes */
	check_invalid("&A*Q-");          /* not base64 */
	check_invalid("\xc3\xa4");       /* raw 8-bit */
	check_invalid("tab\there");      /* raw control character */
	check_invalid("x\x7f");          /* raw DEL */
}

static void test_encode_invalid_utf8(void)
{
	char *out = NULL;

	CHECK_EQ_INT(dovi_mutf7_encode("a\xff", &out), -EINVAL);
	CHECK_EQ_INT(dovi_mutf7_encode("\xc3", &out), -EINVAL);
	CHECK_EQ_INT(dovi_mutf7_encode("\xed\xa0\x80", &out), -EINVAL);
	CHECK_EQ_INT(dovi_mutf7_encode("\xc0\xaf", &out), -EINVAL);
	CHECK(out == NULL);
}

/* Every BMP scalar value and a sample above it survive a round trip. */
static void test_all_code_points(void)
{
	unsigned failures = 0;

	for (uint32_t cp = 1; cp < 0x110000; cp += cp < 0x10000 ? 1 : 97) {
		char in[8], *enc = NULL, *dec = NULL;
		size_t n;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = dovi_utf8_encode(cp, in);
		in[n] = '\0';
		if (dovi_mutf7_encode(in, &enc) != 0 ||
		    dovi_mutf7_decode(enc, &dec) != 0 || strcmp(dec, in) != 0)
			failures++;
		free(enc);
		free(dec);
	}
	CHECK_EQ_INT(failures, 0);
}

static void check_sanitize(const char *in, size_t n, const char *want)
{
	char *out = dovi_utf8_sanitize(in, n);

	CHECK_STR(out, want);
	free(out);
}

/* Expected strings are what Python's bytes.decode("utf-8", "replace")
 * gives, which the reference reader uses for keyword names. */
static void test_sanitize(void)
{
	check_sanitize("work", 4, "work");
	check_sanitize("a\xffz", 3, "a\xef\xbf\xbdz");
	check_sanitize("\xe0\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd");
	check_sanitize("\xe1\x80", 2, "\xef\xbf\xbd");
	check_sanitize("\xf0\x9f\x93", 3, "\xef\xbf\xbd");
	check_sanitize("\xed\xa0\x80", 3,
		       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_sanitize("\xc3\xa4x", 3, "\xc3\xa4x");
	check_sanitize("ab\0cd", 5, "ab");
}

int main(void)
{
	RUN(test_round_trips);
	RUN(test_invalid);
	RUN(test_encode_invalid_utf8);
	RUN(test_all_code_points);
	RUN(test_sanitize);
	return CHECK_DONE();
}
