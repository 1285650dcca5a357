/* test-format.c - the dbox file format, including hostile input. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbox/format.h"

struct membuf {
	unsigned char *p;
	size_t len, cap;
};

static int mem_pread(void *ctx, void *buf, size_t len, uint64_t off,
		     size_t *n_r)
{
	struct membuf *m = ctx;

	if (off >= m->len) {
		*n_r = 0;
		return 0;
	}
	if (len > m->len - off)
		len = (size_t)(m->len - off);
	memcpy(buf, m->p + off, len);
	*n_r = len;
	return 0;
}

static void mb_add(struct membuf *m, const void *p, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->p = realloc(m->p, m->cap);
		REQUIRE(m->p != NULL);
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
}

/* Builds a whole dbox record the way Dovecot writes it. */
static void add_record(struct membuf *m, const void *body, size_t n,
		       const char *guid)
{
	unsigned char hdr[DBOX_MSG_HEADER_SIZE];
	struct dbox_meta meta = { 0 };
	struct dbox_vsize vs = { 0 };
	size_t mlen;
	char *mb;

	dbox_vsize_update(&vs, body, n);
	meta.guid = (char *)guid;
	meta.received = 1700000000;
	meta.has_received = true;
	meta.vsize = vs.vsize;
	meta.has_vsize = true;
	dbox_msg_hdr_format(hdr, n);
	mb_add(m, hdr, sizeof(hdr));
	mb_add(m, body, n);
	mb = dbox_meta_format(&meta, &mlen);
	REQUIRE(mb != NULL);
	mb_add(m, mb, mlen);
	free(mb);
}

static struct membuf new_file(void)
{
	struct membuf m = { 0 };
	char hdr[64];
	size_t n = dbox_file_hdr_format(hdr, sizeof(hdr), 0x6b02c848);

	mb_add(&m, hdr, n);
	return m;
}

static int read_rec(struct membuf *m, uint64_t off, struct dbox_record *rec,
		    char *err, size_t errlen)
{
	struct dbox_reader rd = { mem_pread, m };
	struct dbox_file_hdr hdr;
	int ret = dbox_file_hdr_read(&rd, &hdr, err, errlen);

	if (ret < 0)
		return ret;
	return dbox_record_read(&rd, &hdr, off, m->len, rec, err, errlen);
}

static void test_file_header(void)
{
	struct dbox_file_hdr h;
	char err[128], buf[64];

	CHECK_EQ_INT(dbox_file_hdr_format(buf, sizeof(buf), 0x6b02c848), 16);
	CHECK_STR(buf, "2 M1e C6b02c848\n");
	CHECK_EQ_INT(dbox_file_hdr_parse(buf, 16, &h, err, sizeof(err)), 0);
	CHECK_EQ_INT(h.version, 2);
	CHECK_EQ_INT(h.msg_hdr_size, 30);
	CHECK_EQ_INT(h.create_time, 0x6b02c848);
	CHECK_EQ_INT(h.length, 16);
	/* unknown keys, upper-case hex, a wider header */
	CHECK_EQ_INT(dbox_file_hdr_parse("2 Kfuture M20 CABC\n", 19, &h, err,
					 sizeof(err)), 0);
	CHECK_EQ_INT(h.msg_hdr_size, 32);
	CHECK_EQ_INT(h.create_time, 0xabc);
	CHECK_EQ_INT(dbox_file_hdr_parse("1 M1e\n", 6, &h, err, sizeof(err)),
		     0);
	CHECK_EQ_INT(h.version, 1);
	/* refused */
	CHECK_EQ_INT(dbox_file_hdr_parse("3 M1e\n", 6, &h, err, sizeof(err)),
		     -EBADMSG);
	CHECK(strstr(err, "Invalid dbox version") != NULL);
	CHECK_EQ_INT(dbox_file_hdr_parse("2 C1\n", 5, &h, err, sizeof(err)),
		     -EBADMSG);
	CHECK(strstr(err, "Missing message header size") != NULL);
	CHECK_EQ_INT(dbox_file_hdr_parse("2 M0\n", 5, &h, err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_INT(dbox_file_hdr_parse("2 M1x\n", 6, &h, err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_INT(dbox_file_hdr_parse("2 M10\n", 6, &h, err, sizeof(err)),
		     -EBADMSG);  /* 16 < 30 */
	CHECK_EQ_INT(dbox_file_hdr_parse("2 M1e C6b", 9, &h, err, sizeof(err)),
		     -EAGAIN);
	CHECK_EQ_INT(dbox_file_hdr_parse("", 0, &h, err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_INT(dbox_file_hdr_parse("From x\n", 7, &h, err, sizeof(err)),
		     -EBADMSG);
}

static void test_msg_header(void)
{
	unsigned char h[DBOX_MSG_HEADER_SIZE];
	uint64_t size;
	char err[128];

	dbox_msg_hdr_format(h, 186);
	CHECK(memcmp(h, "\001\002N          00000000000000BA\n", 30) == 0);
	CHECK_EQ_INT(dbox_msg_hdr_parse(h, 30, &size, err, sizeof(err)), 0);
	CHECK_EQ_INT(size, 186);
	memcpy(h + 13, "00000000000000ba", 16);  /* lower case is fine */
	CHECK_EQ_INT(dbox_msg_hdr_parse(h, 30, &size, err, sizeof(err)), 0);
	CHECK_EQ_INT(size, 186);
	h[20] = 'x';
	CHECK_EQ_INT(dbox_msg_hdr_parse(h, 30, &size, err, sizeof(err)),
		     -EBADMSG);
	CHECK(strstr(err, "non-hex") != NULL);
	dbox_msg_hdr_format(h, 1);
	h[0] = 0;
	CHECK_EQ_INT(dbox_msg_hdr_parse(h, 30, &size, err, sizeof(err)),
		     -EBADMSG);
	CHECK(strstr(err, "bad magic") != NULL);
	dbox_msg_hdr_format(h, 1);
	h[29] = ' ';
	CHECK_EQ_INT(dbox_msg_hdr_parse(h, 30, &size, err, sizeof(err)),
		     -EBADMSG);
	CHECK(strstr(err, "LF") != NULL);
	/* all-zero placeholder of an interrupted write */
	memset(h, 0, sizeof(h));
	CHECK_EQ_INT(dbox_msg_hdr_parse(h, 30, &size, err, sizeof(err)),
		     -EBADMSG);
}

static void test_meta(void)
{
	const char block[] = "Z10\nRabc\nV20\nPuidl\nO3\nGguid-1\nBINBOX\n"
		"Xref\nNbase\nQunknown\nGsecond\n\nnext";
	struct dbox_meta m;
	size_t used, n;
	char *out;

	CHECK_EQ_INT(dbox_meta_parse(block, sizeof(block) - 1, &m, &used), 0);
	CHECK_EQ_INT(used, sizeof(block) - 1 - 4);
	CHECK_STR(m.guid, "guid-1");
	CHECK_EQ_INT(m.received, 0xabc);
	CHECK_EQ_INT(m.vsize, 0x20);
	CHECK_EQ_INT(m.psize, 0x10);
	CHECK_STR(m.orig_mailbox, "INBOX");
	CHECK_STR(m.pop3_uidl, "uidl");
	CHECK_STR(m.pop3_order, "3");
	CHECK_STR(m.ext_refs, "ref");
	CHECK_STR(m.maildir_base, "base");
	/* unknown keys and repeats are kept verbatim, in order */
	CHECK_STR(m.extra, "Qunknown\nGsecond\n");
	out = dbox_meta_format(&m, &n);
	REQUIRE(out != NULL);
	CHECK(n == 4 + sizeof("Z10\nRabc\nV20\nPuidl\nO3\nGguid-1\nBINBOX\n"
			      "Xref\nNbase\nQunknown\nGsecond\n\n") - 1);
	CHECK(memcmp(out, "\n\001\003\nZ10\nRabc\nV20\nPuidl\nO3\nGguid-1\n"
		     "BINBOX\nXref\nNbase\nQunknown\nGsecond\n\n", n) == 0);
	free(out);
	dbox_meta_clear(&m);
	/* missing terminator */
	CHECK_EQ_INT(dbox_meta_parse("Gx\nR1\n", 6, &m, &used), -EAGAIN);
	/* bad numbers are flagged, not guessed */
	CHECK_EQ_INT(dbox_meta_parse("Rzz\n\n", 5, &m, &used), 0);
	CHECK(!m.has_received);
	CHECK(m.bad_number);
	dbox_meta_clear(&m);
	/* v1 space padding ends the values */
	CHECK_EQ_INT(dbox_meta_parse("Gx\n   \nRff\n\n", 12, &m, &used), 0);
	CHECK(!m.has_received);
	CHECK_EQ_INT(used, 12);
	dbox_meta_clear(&m);
}

static void test_record_hostile_bodies(void)
{
	static const char *const bodies[] = {
		"From: a\n\nbody with \n\001\003\n the post magic inside\n",
		"From: a\n\nbody with \001\002N  a header magic\n",
		"",                                   /* zero-length */
		"no final newline",
		"From: a\r\nSubject: crlf\r\n\r\nline\r\n",
		"lone\rCR\n",
	};
	struct membuf m = new_file();
	uint64_t offs[8];
	char err[256];

	for (size_t i = 0; i < 6; i++) {
		offs[i] = m.len;
		add_record(&m, bodies[i], strlen(bodies[i]), "g");
	}
	/* a body with NUL bytes */
	offs[6] = m.len;
	add_record(&m, "a\0b\0\0c\n", 7, "nul");
	for (size_t i = 0; i < 7; i++) {
		struct dbox_record rec;
		size_t want = i < 6 ? strlen(bodies[i]) : 7;

		REQUIRE(read_rec(&m, offs[i], &rec, err, sizeof(err)) == 0);
		CHECK_EQ_INT(rec.body_size, want);
		CHECK_EQ_INT(rec.body_offset, offs[i] + 30);
		CHECK(memcmp(m.p + rec.body_offset, i < 6 ? bodies[i] :
			     "a\0b\0\0c\n", want) == 0);
		CHECK_EQ_INT(rec.end, i < 6 ? offs[i + 1] : m.len);
		dbox_record_clear(&rec);
	}
	/* vsize: CRLF counted once, LF as two, lone CR as one */
	{
		struct dbox_record rec;

		REQUIRE(read_rec(&m, offs[4], &rec, err, sizeof(err)) == 0);
		CHECK_EQ_INT(rec.meta.vsize, strlen(bodies[4]));
		dbox_record_clear(&rec);
		REQUIRE(read_rec(&m, offs[5], &rec, err, sizeof(err)) == 0);
		CHECK_EQ_INT(rec.meta.vsize, strlen(bodies[5]) + 1);
		dbox_record_clear(&rec);
	}
	free(m.p);
}

static void test_record_corrupt(void)
{
	struct membuf m = new_file();
	struct dbox_record rec;
	uint64_t off = m.len;
	char err[256];

	add_record(&m, "hello\n", 6, "g");
	/* truncated header */
	m.len = off + 10;
	CHECK_EQ_INT(read_rec(&m, off, &rec, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "EOF reading msg header") != NULL);
	/* truncated before the metadata terminator */
	m.len = off + 30 + 6 + 4 + 3;
	CHECK_EQ_INT(read_rec(&m, off, &rec, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "end-of-metadata") != NULL);
	/* size too large: points past EOF */
	free(m.p);
	m = new_file();
	add_record(&m, "hello\n", 6, "g");
	memcpy(m.p + off + 13, "0000000000FFFFFF", 16);
	CHECK_EQ_INT(read_rec(&m, off, &rec, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "past the end") != NULL);
	/* size too small: post magic not where it should be */
	memcpy(m.p + off + 13, "0000000000000003", 16);
	CHECK_EQ_INT(read_rec(&m, off, &rec, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "bad magic") != NULL);
	/* non-hex size */
	memcpy(m.p + off + 13, "00000000000000G6", 16);
	CHECK_EQ_INT(read_rec(&m, off, &rec, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "offset=16") != NULL);
	/* huge size that would overflow offset arithmetic */
	memcpy(m.p + off + 13, "FFFFFFFFFFFFFFFF", 16);
	CHECK_EQ_INT(read_rec(&m, off, &rec, err, sizeof(err)), -EBADMSG);
	free(m.p);
}

static void test_big_message(void)
{
	size_t n = 20u * 1024 * 1024;
	char *body = malloc(n);
	struct membuf m = new_file();
	struct dbox_record rec;
	char err[256];

	REQUIRE(body != NULL);
	for (size_t i = 0; i < n; i++)
		body[i] = (i % 77 == 76) ? '\n' : (char)('a' + i % 26);
	add_record(&m, body, n, "big");
	REQUIRE(read_rec(&m, 16, &rec, err, sizeof(err)) == 0);
	CHECK_EQ_INT(rec.body_size, n);
	CHECK_EQ_INT(rec.meta.vsize, n + n / 77);
	CHECK_EQ_INT(rec.end, m.len);
	dbox_record_clear(&rec);
	free(body);
	free(m.p);
}

static void test_vsize_chunks(void)
{
	const char *s = "a\r\nb\nc\rd\r\n";
	struct dbox_vsize whole = { 0 };

	dbox_vsize_update(&whole, s, strlen(s));
	CHECK_EQ_INT(whole.vsize, strlen(s) + 1);
	/* the same over every split point, CR|LF splits included */
	for (size_t cut = 0; cut <= strlen(s); cut++) {
		struct dbox_vsize v = { 0 };

		dbox_vsize_update(&v, s, cut);
		dbox_vsize_update(&v, s + cut, strlen(s) - cut);
		CHECK_EQ_INT(v.vsize, whole.vsize);
	}
}

static void test_compression_detect(void)
{
	CHECK_EQ_INT(dbox_compression_detect((const unsigned char *)
		"\x1f\x8b\x08", 3), DBOX_COMP_GZ);
	CHECK_EQ_INT(dbox_compression_detect((const unsigned char *)"BZh9", 4),
		     DBOX_COMP_BZ2);
	CHECK_EQ_INT(dbox_compression_detect((const unsigned char *)"BZhx", 4),
		     DBOX_COMP_NONE);
	CHECK_EQ_INT(dbox_compression_detect((const unsigned char *)
		"\xfd" "7zXZ\0", 6), DBOX_COMP_XZ);
	CHECK_EQ_INT(dbox_compression_detect((const unsigned char *)
		"Dovecot-LZ4\r*\x9b\xc5\0\1\0\0", 19), DBOX_COMP_LZ4);
	CHECK_EQ_INT(dbox_compression_detect((const unsigned char *)
		"\x28\xb5\x2f\xfd", 4), DBOX_COMP_ZSTD);
	CHECK_EQ_INT(dbox_compression_detect((const unsigned char *)
		"From: x", 7), DBOX_COMP_NONE);
	CHECK_EQ_INT(dbox_compression_detect(NULL, 0), DBOX_COMP_NONE);
}

static void test_guid(void)
{
	char a[33], b[33];

	dbox_guid_generate(a);
	dbox_guid_generate(b);
	CHECK_EQ_INT(strlen(a), 32);
	CHECK(strspn(a, "0123456789abcdef") == 32);
	CHECK(strcmp(a, b) != 0);
}

static void test_meta_set_orig_mailbox(void)
{
	struct dbox_meta meta = { 0 };
	const char *lines;
	char out[256], out2[256];
	size_t len;
	char *mb;

	/* our records: B then, last, a pad line keeping room */
	meta.guid = "g1";
	meta.orig_mailbox = "INBOX";
	meta.maildir_base = "b1";
	meta.pad = 10;
	mb = dbox_meta_format(&meta, &len);
	REQUIRE(mb != NULL);
	lines = mb + DBOX_MAGIC_POST_LEN;
	len -= DBOX_MAGIC_POST_LEN;
	CHECK_EQ_INT(len, strlen("Gg1\nBINBOX\nNb1\n_________\n\n"));
	CHECK(memcmp(lines, "Gg1\nBINBOX\nNb1\n_________\n\n", len) == 0);
	/* longer name: the pad gives room; shorter: it takes it back */
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox(lines, len, "Lists/lin", out),
		     0);
	CHECK(memcmp(out, "Gg1\nBLists/lin\nNb1\n_____\n\n", len) == 0);
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox(out, len, "A", out2), 0);
	CHECK(memcmp(out2, "Gg1\nBA\nNb1\n_____________\n\n", len) == 0);
	/* exactly the room: no pad line left */
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox(lines, len,
						"0123456789abcde", out), 0);
	CHECK(memcmp(out, "Gg1\nB0123456789abcde\nNb1\n\n", len) == 0);
	/* one byte short of a pad line, or too long: no room */
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox(lines, len, "0123456789abcd",
						out), -ENOSPC);
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox(lines, len,
						"0123456789abcdef", out),
		     -ENOSPC);
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox(lines, len, "a\nb", out),
		     -ENOSPC);
	free(mb);
	/* Dovecot's records: no pad; shorter names still fit, B added last */
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox("Gg\nBFolder\n\n", 12, "A",
						out), 0);
	CHECK(memcmp(out, "Gg\nBA\n____\n\n", 12) == 0);
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox("Gg\n_____\n\n", 10, "AB",
						out), 0);
	CHECK(memcmp(out, "Gg\nBAB\n_\n\n", 10) == 0);
	/* lines that do not end where they should, v1 padding: untouched */
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox("Gg\nBF\n\nXx\n", 10, "A",
						out), -EINVAL);
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox("Gg\nBF\n", 7, "A", out),
		     -EINVAL);
	CHECK_EQ_INT(dbox_meta_set_orig_mailbox("Gg\nBF\n   \n\n", 11, "A",
						out), -EINVAL);
}

int main(void)
{
	RUN(test_file_header);
	RUN(test_meta_set_orig_mailbox);
	RUN(test_msg_header);
	RUN(test_meta);
	RUN(test_record_hostile_bodies);
	RUN(test_record_corrupt);
	RUN(test_big_message);
	RUN(test_vsize_chunks);
	RUN(test_compression_detect);
	RUN(test_guid);
	return CHECK_DONE();
}
