/* test-extref.c - Dovecot's external attachment references (X metadata):
 * the parser on what Dovecot writes and on hostile input (a deterministic
 * fuzz loop, meant to run under ASan/UBSan too), the encoded sizes, and the
 * base64 re-encoding of arbitrary ranges against a plain reference
 * encoder. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbox/extref.h"

static int parse(const char *s, struct dbox_extref **refs, size_t *n)
{
	char err[200] = "";
	int ret = dbox_extref_parse(s, strlen(s), refs, n, err, sizeof(err));

	if (ret < 0 && err[0] == '\0')
		fprintf(stderr, "no reason for %s\n", s);
	return ret;
}

static void test_dovecot_lines(void)
{
	struct dbox_extref *r;
	size_t n;

	/* as written by Dovecot 2.3 (doveadm save, mail_attachment_dir) */
	REQUIRE(parse("277 270176 B76 4c/da/4cdabc32384e9511c9dc190b2fa3ee99d"
		      "bf74d5a-3f0f2f2b3cc1136b7d54000083ecc375", &r, &n) == 0);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(r[0].offset, 277);
	CHECK_EQ_INT(r[0].size, 270176);
	CHECK_EQ_INT(r[0].b64_line, 76);
	CHECK(!r[0].crlf);
	CHECK_STR(r[0].path, "4c/da/4cdabc32384e9511c9dc190b2fa3ee99dbf74d5a-"
		  "3f0f2f2b3cc1136b7d54000083ecc375");
	dbox_extref_free(r, n);

	REQUIRE(parse("258 4062 B64 84/63/aa-1 4391 7705 CB72 00/e5/bb-2 "
		      "12200 4000 - bc/fe/cc-3", &r, &n) == 0);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(r[1].offset, 4391);
	CHECK_EQ_INT(r[1].b64_line, 72);
	CHECK(r[1].crlf);
	CHECK_EQ_INT(r[2].b64_line, 0);
	CHECK(!r[2].crlf);
	CHECK_STR(r[2].path, "bc/fe/cc-3");
	dbox_extref_free(r, n);

	/* C after B, and a part right after the one before */
	REQUIRE(parse("0 10 B4C a 10 1 - b", &r, &n) == 0);
	CHECK(r[0].crlf);
	CHECK_EQ_INT(r[0].b64_line, 4);
	dbox_extref_free(r, n);
}

static void test_refused(void)
{
	static const char *const bad[] = {
		"", " ", "1 2 -", "1 2 - a 3", "1 2 - a ", " 1 2 - a",
		"1  2 - a", "a 2 - p", "1 -2 - p", "+1 2 - p", "1 0 - p",
		"1 2 B p", "1 2 B75 p", "1 2 B0 p", "1 2 X p", "1 2 -C p",
		"1 2 -- p", "1 2 b76 p", "1 2 B76x p", "1 2 B123456780 p",
		"99999999999999999999 1 - p", "1 18446744073709551615 - p",
		"1152921504606846976 1 - p",
		"10 5 - a 12 5 - b", "10 5 - a 9 1 - b",
		"1 2 - /etc/passwd", "1 2 - ../x", "1 2 - a/../b", "1 2 - a/..",
		"1 2 - ..", "1 2 - a\tb", "1 2 - a\nb", "1 2 - a\x7f",
	};
	struct dbox_extref *r = NULL;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = parse(bad[i], &r, &n);

		if (ret != -EBADMSG)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		CHECK_EQ_INT(ret, -EBADMSG);
	}
	/* a NUL inside the value */
	CHECK_EQ_INT(dbox_extref_parse("1 2 - a\0b", 9, &r, &n, NULL, 0),
		     -EBADMSG);
	/* dots that are not a ".." component are fine */
	REQUIRE(parse("1 2 - a/..b/.c/...", &r, &n) == 0);
	dbox_extref_free(r, n);
}

static void test_encoded_size(void)
{
	struct dbox_extref lf = { .b64_line = 76 }, crlf = { .b64_line = 76,
							    .crlf = true };
	struct dbox_extref raw = { 0 };

	/* 200000 bytes at 76 chars: 266668 chars in 3509 lines */
	CHECK_EQ_INT(dbox_extref_encoded_size(&lf, 200000), 270176);
	CHECK_EQ_INT(dbox_extref_encoded_size(&crlf, 200000), 273684);
	/* one byte less gives the same size: the padding hides it */
	CHECK_EQ_INT(dbox_extref_encoded_size(&lf, 199999), 270176);
	CHECK_EQ_INT(dbox_extref_encoded_size(&lf, 57), 76);
	CHECK_EQ_INT(dbox_extref_encoded_size(&lf, 58), 76 + 1 + 4);
	CHECK_EQ_INT(dbox_extref_encoded_size(&lf, 1), 4);
	CHECK_EQ_INT(dbox_extref_encoded_size(&lf, 0), 0);
	CHECK_EQ_INT(dbox_extref_encoded_size(&raw, 4000), 4000);
	CHECK(dbox_extref_encoded_size(&lf, 1ull << 60) == UINT64_MAX);
}

/* Reference: RFC 4648 base64, a line end after every `width` chars except
 * at the very end. */
static size_t ref_encode(const unsigned char *d, size_t n, unsigned width,
			 bool crlf, char *out)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
		"xyz0123456789+/";
	size_t o = 0, col = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		char q[4];

		v |= i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0;
		v |= i + 2 < n ? d[i + 2] : 0;
		q[0] = al[v >> 18 & 63];
		q[1] = al[v >> 12 & 63];
		q[2] = i + 1 < n ? al[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? al[v & 63] : '=';
		for (int k = 0; k < 4; k++) {
			if (col == width) {
				if (crlf)
					out[o++] = '\r';
				out[o++] = '\n';
				col = 0;
			}
			out[o++] = q[k];
			col++;
		}
	}
	return o;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static void check_ranges(const unsigned char *data, size_t n,
			 const struct dbox_extref *ref, const char *want,
			 size_t want_len)
{
	char out[4096];

	for (int round = 0; round < 200; round++) {
		uint64_t off = rnd() % want_len, dec_off;
		size_t len = 1 + rnd() % (want_len - off), dec_len;

		if (len > sizeof(out))
			len = sizeof(out);
		dbox_extref_b64_range(ref, n, off, len, &dec_off, &dec_len);
		REQUIRE(dec_off <= n && dec_len <= n - dec_off);
		CHECK_EQ_INT(dbox_extref_b64_render(ref, off, len,
						    data + dec_off, dec_len,
						    dec_off, out), 0);
		CHECK(memcmp(out, want + off, len) == 0);
	}
}

static void test_render(void)
{
	static const unsigned widths[] = { 4, 8, 64, 72, 76 };
	static unsigned char data[3000];
	/* 3000 bytes at 4 chars a line with CRLF: 4000 chars + 2000 */
	static char want[6000];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)rnd();
	for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
		for (int crlf = 0; crlf < 2; crlf++) {
			struct dbox_extref ref = { .b64_line = widths[w],
						   .crlf = crlf };

			for (size_t n = 1; n < sizeof(data); n += 1 + n / 3) {
				size_t len = ref_encode(data, n, widths[w],
							crlf, want);

				CHECK_EQ_INT(dbox_extref_encoded_size(&ref, n),
					     len);
				check_ranges(data, n, &ref, want, len);
			}
		}
	}
}

static void test_render_refuses_short_input(void)
{
	struct dbox_extref ref = { .b64_line = 76 };
	unsigned char d[6] = "abcdef";
	char out[16];

	/* 8 chars from 6 bytes; asking for 12 needs more than given */
	CHECK_EQ_INT(dbox_extref_b64_render(&ref, 0, 12, d, 6, 0, out),
		     -EINVAL);
	CHECK_EQ_INT(dbox_extref_b64_render(&ref, 0, 8, d, 6, 1, out),
		     -EINVAL);
	CHECK_EQ_INT(dbox_extref_b64_render(&ref, 0, 8, d, 6, 0, out), 0);
	CHECK(memcmp(out, "YWJjZGVm", 8) == 0);
}

static void test_digest(void)
{
	struct dbox_extref r = { 0 };
	char hex[65];

	r.path = "4c/da/4cdabc32384e9511c9dc190b2fa3ee99dbf74d5a-3f0f2f2b";
	CHECK_EQ_INT(dbox_extref_digest(&r, hex), 40);
	CHECK_STR(hex, "4cdabc32384e9511c9dc190b2fa3ee99dbf74d5a");
	r.path = "4C/DA/4CDABC32384E9511C9DC190B2FA3EE99DBF74D5A";
	CHECK_EQ_INT(dbox_extref_digest(&r, hex), 40);
	CHECK_STR(hex, "4cdabc32384e9511c9dc190b2fa3ee99dbf74d5a");
	r.path = "aa/bb/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495"
		 "991b7852b855-x";
	CHECK_EQ_INT(dbox_extref_digest(&r, hex), 64);
	r.path = "aa/bb/abc-guid";            /* a truncated hash: unchecked */
	CHECK_EQ_INT(dbox_extref_digest(&r, hex), 0);
	r.path = "aa/bb/4cdabc32384e9511c9dc190b2fa3ee99dbf74d5g-x";
	CHECK_EQ_INT(dbox_extref_digest(&r, hex), 0);
	r.path = "4cdabc32384e9511c9dc190b2fa3ee99dbf74d5a00000000000000000000"
		 "00000000000";
	CHECK_EQ_INT(dbox_extref_digest(&r, hex), 0);
}

/* Every accepted value must be something a reader can trust. */
static void check_invariants(const struct dbox_extref *r, size_t n)
{
	uint64_t end = 0;

	CHECK(n >= 1);
	for (size_t i = 0; i < n; i++) {
		CHECK(r[i].size > 0 && r[i].offset >= end);
		CHECK(r[i].b64_line % 4 == 0 &&
		      r[i].b64_line <= DBOX_EXTREF_LINE_MAX);
		CHECK(r[i].path[0] != '/' && r[i].path[0] != '\0');
		CHECK(strncmp(r[i].path, "../", 3) != 0 &&
		      strstr(r[i].path, "/../") == NULL &&
		      strcmp(r[i].path, "..") != 0);
		end = r[i].offset + r[i].size;
	}
}

static void test_fuzz(void)
{
	static const char *const seeds[] = {
		"277 270176 B76 4c/da/4cdabc-3f0f",
		"258 4062 B64 84/63/aa-1 4391 7705 CB72 00/e5/bb-2",
		"215 4000 - bc/fe/cc-3", "0 1 B4C a/b",
	};
	static const char alphabet[] = " -BC0123456789/.a\t\0\xff";
	char buf[256];
	unsigned long accepted = 0, refused = 0;
	unsigned rounds = getenv("EXTREF_FUZZ_ROUNDS") ?
		(unsigned)atoi(getenv("EXTREF_FUZZ_ROUNDS")) : 200000;

	for (unsigned i = 0; i < rounds; i++) {
		const char *seed = seeds[rnd() % 4];
		size_t len = strlen(seed);
		struct dbox_extref *r;
		size_t n;
		char err[64];

		memcpy(buf, seed, len);
		for (int m = 0, k = 1 + (int)(rnd() % 4); m < k; m++) {
			size_t at = rnd() % (len + 1);

			switch (rnd() % 4) {
			case 0:         /* overwrite */
				if (at < len)
					buf[at] = alphabet[rnd() %
							   (sizeof(alphabet) - 1)];
				break;
			case 1:         /* insert */
				if (len < sizeof(buf) - 1) {
					memmove(buf + at + 1, buf + at,
						len - at);
					buf[at] = alphabet[rnd() %
							   (sizeof(alphabet) - 1)];
					len++;
				}
				break;
			case 2:         /* cut */
				len = at;
				break;
			default:        /* flip a bit */
				if (at < len)
					buf[at] ^= (char)(1 << (rnd() % 8));
			}
		}
		/* an exact-size copy, so that ASan sees any overread */
		char *v = malloc(len ? len : 1);

		REQUIRE(v != NULL);
		memcpy(v, buf, len);
		if (dbox_extref_parse(v, len, &r, &n, err, sizeof(err)) == 0) {
			check_invariants(r, n);
			dbox_extref_free(r, n);
			accepted++;
		} else {
			refused++;
		}
		free(v);
	}
	fprintf(stderr, "fuzz: %lu accepted, %lu refused\n", accepted,
		refused);
	CHECK(accepted > 0 && refused > 0);
}

int main(void)
{
	RUN(test_dovecot_lines);
	RUN(test_refused);
	RUN(test_encoded_size);
	RUN(test_render);
	RUN(test_render_refuses_short_input);
	RUN(test_digest);
	RUN(test_fuzz);
	return CHECK_DONE();
}
