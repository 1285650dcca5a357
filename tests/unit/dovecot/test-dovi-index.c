/* test-dovi-index.c - dovecot.index (dovecot-index.md 2) from hand-built
 * images: extensions, keywords, records, where replay starts (4, 5.1) and
 * the fallbacks for damaged files (6). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dbox/dovecot-index.h"
#include "dovi-build.h"

#define RSIZE 24        /* uid, flags, kw bitmap @5 (2), mdbox @8, pad */

/* keywords ext header with the given names (2.5) */
static struct buf kw_header(const char *const *names, unsigned n)
{
	struct buf h = { 0 }, strs = { 0 };

	buf_u32(&h, n);
	for (unsigned i = 0; i < n; i++) {
		buf_u32(&h, 0);
		buf_u32(&h, (uint32_t)strs.len);
		buf_add(&strs, names[i], strlen(names[i]) + 1);
	}
	buf_add(&h, strs.p, strs.len);
	buf_pad(&h, 4);
	buf_free(&strs);
	return h;
}

/* An mdbox-like dovecot.index: 3 messages, keywords, mdbox records; the
 * log position it reflects is (seq, head_off). */
static void make_index(struct buf *b, uint32_t seq, uint32_t head_off)
{
	static const char *const names[] = { "$Label1", "work" };
	struct buf kh = kw_header(names, 2);
	struct idx_ext exts[] = {
		{ "keywords", 0, (uint32_t)kh.len, kh.p, 5, 2, 1 },
		{ "mdbox", 0, 0, NULL, 8, 8, 4 },
		{ "mdbox-hdr", 0, 24, NULL, 0, 0, 0 },
	};
	static const uint16_t offs[] = { 5, 8 };
	static const uint16_t lens[] = { 2, 8 };

	idx_header(b, RSIZE, 6, 3, seq, head_off, exts, 3);
	for (uint32_t uid = 1; uid <= 5; uid += 2) {
		/* uid 1: $Label1 and work, uid 3: work */
		uint8_t kw = uid == 1 ? 0x3 : uid == 3 ? 0x2 : 0;
		uint8_t bits[2] = { kw, 0 };
		uint8_t mdbox[8] = { (uint8_t)(uid * 10), 0, 0, 0, 7, 0, 0, 0 };
		const void *data[] = { bits, mdbox };

		idx_record(b, RSIZE, uid, uid == 5 ? 0x08 : 0, 2, offs, data,
			   lens);
	}
	buf_free(&kh);
}

static struct dovi_index *open_ok(void)
{
	struct dbox_err err = { "" };
	struct dovi_index *idx = NULL;
	int ret = dovi_index_open(prefix(), &idx, &err);

	if (ret != 0)
		fprintf(stderr, "open: %d %s\n", ret, err.msg);
	REQUIRE(ret == 0);
	return idx;
}

static const char *describe(const struct dovi_index *idx)
{
	static char s[1024];
	size_t o = 0;

	s[0] = '\0';
	for (uint32_t i = 0; i < dovi_index_count(idx); i++) {
		uint32_t mu = 0, sd;

		(void)dovi_index_mdbox_rec(idx, i, &mu, &sd);
		o += (size_t)snprintf(s + o, sizeof(s) - o, "%s%u:%u:%u:",
				      i ? " " : "", dovi_index_uid(idx, i),
				      dovi_index_flags(idx, i), mu);
		for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++) {
			const char *kw = dovi_index_keyword(idx, k);

			if (dovi_index_has_keyword(idx, i, k))
				o += (size_t)snprintf(s + o, sizeof(s) - o,
						      "%s,", kw);
		}
	}
	return s;
}

/* log seq 2 (reset) holding the same history as make_index() up to
 * head_off_r, then more */
static void make_log(struct buf *log, uint32_t *head_off_r)
{
	uint8_t mdbox[8] = { 0, 0, 0, 0, 7, 0, 0, 0 };

	log_header(log, TEST_INDEXID, 2, 0, 0);
	REC(log, T_HEADER_UPDATE | T_EXTERNAL, pl_hdr32(24, 1700000001));
	REC(log, T_EXT_INTRO, pl_intro("mdbox-hdr", 0, 24, 0, 0));
	for (uint32_t uid = 1; uid <= 5; uid += 2) {
		REC(log, T_APPEND | T_EXTERNAL,
		    pl_append(uid, uid == 5 ? 0x08 : 0));
		REC(log, T_EXT_INTRO, pl_intro("mdbox", 0, 0, 8, 4));
		mdbox[0] = (uint8_t)(uid * 10);
		REC(log, T_EXT_REC_UPDATE, pl_rec_update(uid, mdbox, 8));
	}
	REC(log, T_KEYWORD_UPDATE, pl_keyword(0, "$Label1", 1, 1));
	REC(log, T_KEYWORD_UPDATE, pl_keyword(0, "work", 1, 3));
	*head_off_r = (uint32_t)log->len;
	/* after the index's position */
	REC(log, T_FLAG_UPDATE, pl_flags(3, 3, 0x02, 0));
	REC(log, T_KEYWORD_UPDATE, pl_keyword(0, "WORK", 5, 5));
}

static const char *const FULL = "1:0:10:$Label1,work, 3:2:30:work, "
	"5:8:50:work,";

static void test_index_and_log(void)
{
	struct buf idxb = { 0 }, log = { 0 };
	struct dovi_index *idx;
	uint32_t head;
	struct dovi_header h;

	tmpdir_clean();
	make_log(&log, &head);
	make_index(&idxb, 2, head);
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(describe(idx), FULL);
	CHECK(dovi_index_info(idx)->index_file);
	CHECK(!dovi_index_info(idx)->reset);
	CHECK_EQ_INT(dovi_index_info(idx)->from_offset, head);
	dovi_index_header(idx, &h);
	CHECK_EQ_INT(h.next_uid, 6);
	CHECK_EQ_INT(h.uid_validity, 1700000001);
	CHECK_EQ_INT(dovi_index_error_count(idx), 0);
	dovi_index_free(idx);

	/* the same without dovecot.index: the log alone gives the same */
	tmpdir_clean();
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(describe(idx), FULL);
	CHECK(!dovi_index_info(idx)->index_file);
	dovi_index_free(idx);

	/* index alone: no log is a warning, not an error (3.6) */
	tmpdir_clean();
	write_file("dovecot.index", &idxb);
	idx = open_ok();
	CHECK_STR(describe(idx), "1:0:10:$Label1,work, 3:0:30:work, 5:8:50:");
	CHECK_STR(dovi_index_info(idx)->warning, "no transaction log");
	CHECK(!dovi_index_info(idx)->replayed);
	/* ... and a log appearing later is picked up by a refresh */
	{
		bool changed;

		write_file("dovecot.index.log", &log);
		CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
		CHECK(changed);
		CHECK_STR(describe(idx), FULL);
	}
	dovi_index_free(idx);
	buf_free(&idxb);
	buf_free(&log);
}

/* 5.1 step 3 and 6.3: an index at the very end of .log.2, or inside it */
static void test_index_positions(void)
{
	struct buf idxb = { 0 }, l2 = { 0 }, l3 = { 0 };
	struct dovi_index *idx;
	uint32_t head;
	char msg[256];

	tmpdir_clean();
	make_log(&l2, &head);
	log_header(&l3, TEST_INDEXID, 3, 2, (uint32_t)l2.len);
	REC(&l3, T_FLAG_UPDATE, pl_flags(1, 1, 0x10, 0));

	/* stale index pointing into .log.2: replay the rest of it, then .log */
	make_index(&idxb, 2, head);
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log.2", &l2);
	write_file("dovecot.index.log", &l3);
	idx = open_ok();
	CHECK_STR(describe(idx), "1:16:10:$Label1,work, 3:2:30:work, "
		  "5:8:50:work,");
	CHECK_EQ_INT(dovi_index_info(idx)->from_seq, 2);
	dovi_index_free(idx);

	/* the index ends exactly where .log starts: .log.2 not needed */
	buf_free(&idxb);
	make_index(&idxb, 2, (uint32_t)l2.len);
	write_file("dovecot.index", &idxb);
	tmpdir_clean();
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log", &l3);
	idx = open_ok();
	CHECK_STR(describe(idx), "1:16:10:$Label1,work, 3:0:30:work, 5:8:50:");
	CHECK_EQ_INT(dovi_index_info(idx)->from_seq, 3);
	CHECK_EQ_INT(dovi_index_info(idx)->from_offset, 40);
	dovi_index_free(idx);

	/* index pointing into a .log.2 that is gone: history lost (6.1) */
	buf_free(&idxb);
	make_index(&idxb, 2, head);
	write_file("dovecot.index", &idxb);
	{
		struct dbox_err err = { "" };

		CHECK_EQ_INT(dovi_index_open(prefix(), &idx, &err), -EBADMSG);
		snprintf(msg, sizeof(msg), "%s", err.msg);
		CHECK(strstr(msg, "missing") != NULL);
	}
	/* index newer than the newest log */
	buf_free(&idxb);
	make_index(&idxb, 9, 40);
	write_file("dovecot.index", &idxb);
	CHECK_EQ_INT(dovi_index_open(prefix(), &idx, NULL), -EBADMSG);
	/* indexid mismatch between index and log (6.4) */
	buf_free(&idxb);
	make_index(&idxb, 3, 40);
	buf_set32(&idxb, 16, TEST_INDEXID + 5);
	write_file("dovecot.index", &idxb);
	CHECK_EQ_INT(dovi_index_open(prefix(), &idx, NULL), -EBADMSG);
	buf_free(&idxb);
	buf_free(&l2);
	buf_free(&l3);
}

/* 6.5: a damaged dovecot.index is ignored when the log chain reaches a
 * reset log; otherwise the mailbox is unusable. */
static void check_damaged(const char *what, size_t off, const void *bytes,
			  size_t n, size_t new_len)
{
	struct buf idxb = { 0 }, log = { 0 };
	struct dovi_index *idx = NULL;
	uint32_t head;

	tmpdir_clean();
	make_log(&log, &head);
	make_index(&idxb, 2, head);
	if (n > 0)
		memcpy(idxb.p + off, bytes, n);
	if (new_len > 0)
		idxb.len = new_len;
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log", &log);
	if (dovi_index_open(prefix(), &idx, NULL) != 0) {
		fprintf(stderr, "damaged index (%s): open failed\n", what);
		CHECK(0);
		goto out;
	}
	if (strcmp(describe(idx), FULL) != 0 ||
	    dovi_index_info(idx)->index_ignored[0] == '\0') {
		fprintf(stderr, "damaged index (%s): %s / ignored=\"%s\"\n",
			what, describe(idx),
			dovi_index_info(idx)->index_ignored);
		CHECK(0);
	}
	dovi_index_free(idx);
	/* without a reset log in reach: unusable */
	tmpdir_clean();
	write_file("dovecot.index", &idxb);
	/* continues seq 1 (not a reset), which is gone */
	buf_set32(&log, 12, 1);
	buf_set32(&log, 16, 1234);
	write_file("dovecot.index.log", &log);
	idx = NULL;
	if (dovi_index_open(prefix(), &idx, NULL) != -EBADMSG) {
		fprintf(stderr, "damaged index (%s): usable without reset\n",
			what);
		CHECK(0);
	}
out:
	dovi_index_free(idx);
	buf_free(&idxb);
	buf_free(&log);
}

static void test_damaged_index(void)
{
	static const uint8_t zero4[4] = { 0 }, big4[4] = { 0xff, 0xff, 0, 0 };
	static const uint8_t two = 2, zero = 0, corrupted = 1;
	static const uint8_t rsize7[4] = { 7, 0, 0, 0 };
	static const uint8_t badname = '/', roff[2] = { 23, 0 };
	static const uint8_t huge_hdr[4] = { 0, 0, 0, 0x01 };

	check_damaged("major version", 0, &two, 1, 0);
	check_damaged("compat flags", 12, &zero, 1, 0);
	check_damaged("corrupted flag", 20, &corrupted, 1, 0);
	check_damaged("header_size > file", 4, big4, 4, 0);
	check_damaged("record_size < 8", 8, rsize7, 4, 0);
	check_damaged("too short", 0, NULL, 0, 100);
	/* first ext descriptor at 120: hdr_size, reset_id, roff, rsize,
	 * ralign, name_size, name at 136 */
	check_damaged("ext name", 136, &badname, 1, 0);
	check_damaged("ext record offset", 128, roff, 2, 0);
	check_damaged("ext header size", 120, huge_hdr, 4, 0);
	check_damaged("keywords count", 144, big4, 4, 0);
	check_damaged("ext name_size", 134, big4, 2, 0);
	(void)zero4;
}

/* 6.5: fewer records than messages_count */
static void test_truncated_index(void)
{
	struct buf idxb = { 0 }, log = { 0 };
	struct dovi_index *idx;
	uint32_t head;

	tmpdir_clean();
	make_log(&log, &head);
	make_index(&idxb, 2, head);
	idxb.len -= 3;                  /* the last record is cut */
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	/* the chain reaches a reset log: full replay, nothing lost */
	CHECK_STR(describe(idx), FULL);
	CHECK_STR(dovi_index_info(idx)->index_ignored, "truncated index");
	dovi_index_free(idx);

	/* no reset in reach: the records that are there, then the log */
	buf_set32(&log, 12, 1);
	buf_set32(&log, 16, 1234);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(describe(idx), "1:0:10:$Label1,work, 3:2:30:work,");
	CHECK(dovi_index_info(idx)->index_file);
	CHECK_EQ_INT(dovi_index_error_count(idx), 1);
	dovi_index_free(idx);

	/* a hostile messages_count: same thing, no huge allocation */
	buf_free(&idxb);
	make_index(&idxb, 2, head);
	buf_set32(&idxb, 32, 0xffffffffu);
	write_file("dovecot.index", &idxb);
	idx = open_ok();
	CHECK_EQ_INT(dovi_index_count(idx), 3);
	dovi_index_free(idx);
	buf_free(&idxb);
	buf_free(&log);
}

/* fsck-like repairs: zero and non-increasing uids dropped, next_uid
 * raised above the last uid */
static void test_uid_repairs(void)
{
	struct buf idxb = { 0 }, log = { 0 };
	struct dovi_index *idx;
	struct idx_ext none[1] = { { "x", 0, 0, NULL, 0, 0, 0 } };
	struct dovi_header h;
	static const uint32_t uids[] = { 4, 0, 9, 9, 7, 12 };

	tmpdir_clean();
	idx_header(&idxb, 8, 5, 6, 2, 40, none, 0);
	for (unsigned i = 0; i < 6; i++)
		idx_record(&idxb, 8, uids[i], 0, 0, NULL, NULL, NULL);
	/* not a reset log: a reset at the index's position would discard
	 * the index (5.1 step 5) */
	log_header(&log, TEST_INDEXID, 2, 1, 0);
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_EQ_INT(dovi_index_count(idx), 3);
	CHECK_EQ_INT(dovi_index_uid(idx, 2), 12);
	dovi_index_header(idx, &h);
	CHECK_EQ_INT(h.next_uid, 13);
	CHECK_EQ_INT(dovi_index_error_count(idx), 4);
	dovi_index_free(idx);
	buf_free(&idxb);
	buf_free(&log);
}

/* A main file ending at uid 2^32-1 wraps next_uid to 0: a later append
 * must still not put a lower uid after it (found by fuzz-dovi). */
static void test_uid_max_then_append(void)
{
	struct buf idxb = { 0 }, log = { 0 };
	struct dovi_index *idx;
	struct idx_ext none[1] = { { "x", 0, 0, NULL, 0, 0, 0 } };
	uint32_t pos;

	tmpdir_clean();
	idx_header(&idxb, 8, 5, 2, 2, 40, none, 0);
	idx_record(&idxb, 8, 3, 0, 0, NULL, NULL, NULL);
	idx_record(&idxb, 8, UINT32_MAX, 0, 0, NULL, NULL, NULL);
	log_header(&log, TEST_INDEXID, 2, 1, 0);
	REC(&log, T_APPEND | T_EXTERNAL, pl_append(4, 0));
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_EQ_INT(dovi_index_count(idx), 2);
	CHECK_EQ_INT(dovi_index_uid(idx, 0), 3);
	CHECK_EQ_INT(dovi_index_uid(idx, 1), UINT32_MAX);
	CHECK(!dovi_index_lookup(idx, 4, &pos));
	dovi_index_free(idx);
	buf_free(&idxb);
	buf_free(&log);
}

/* Hostile sizes that must neither crash nor allocate without bound. */
static void test_hostile_sizes(void)
{
	struct buf log = { 0 }, p = { 0 };
	struct dovi_index *idx;
	uint8_t b[4];
	int ext;

	tmpdir_clean();
	log_header(&log, TEST_INDEXID, 2, 0, 0);
	REC(&log, T_APPEND | T_EXTERNAL, pl_append(1, 0));
	/* the largest allowed ext header, written at its very end */
	REC(&log, T_EXT_INTRO, pl_intro("big", 0, 16 * 1024 * 1024 - 1, 0, 0));
	buf_u32(&p, 16 * 1024 * 1024 - 5);
	buf_u32(&p, 4);
	buf_u32(&p, 0x01020304);
	log_rec(&log, T_EXT_HDR_UPDATE32, &p);
	buf_free(&p);
	/* one past it: refused */
	buf_u32(&p, 16 * 1024 * 1024 - 4);
	buf_u32(&p, 4);
	buf_u32(&p, 0x01020304);
	log_rec(&log, T_EXT_HDR_UPDATE32, &p);
	/* an intro whose name_size runs past the record: invalid record is
	 * tested in test-dovi-log; here sizes beyond the limits */
	REC(&log, T_EXT_INTRO, pl_intro("huge", 0, 16 * 1024 * 1024, 0, 0));
	REC(&log, T_EXT_INTRO, pl_intro("wide", 0, 0, 40000, 4));
	/* an append at the largest uid would wrap next_uid */
	REC(&log, T_APPEND | T_EXTERNAL, pl_append(0xffffffffu, 0));
	REC(&log, T_APPEND | T_EXTERNAL, pl_append(2, 0));
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	ext = dovi_index_ext(idx, "big");
	REQUIRE(ext >= 0);
	CHECK_EQ_INT(dovi_index_ext_header(idx, ext, 16 * 1024 * 1024 - 5, b,
					   4), 4);
	CHECK_EQ_INT(b[0], 4);
	CHECK(dovi_index_ext(idx, "huge") < 0);
	CHECK(dovi_index_ext(idx, "wide") < 0);
	CHECK_EQ_INT(dovi_index_count(idx), 2);
	CHECK_EQ_INT(dovi_index_error_count(idx), 4);
	dovi_index_free(idx);

	/* a log header claiming more header than the file has */
	buf_free(&log);
	log_header(&log, TEST_INDEXID, 2, 0, 0);
	log.p[2] = 0xff;
	log.p[3] = 0xff;
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_EQ_INT(dovi_index_count(idx), 0);
	dovi_index_free(idx);
	buf_free(&log);
	buf_free(&p);
}

/* record_offset 0 is not bounds-checked by Dovecot; data past the record
 * must not be read (the reader keeps it short, as the reference does). */
static void test_record_offset_zero(void)
{
	struct buf idxb = { 0 }, log = { 0 };
	struct idx_ext exts[] = { { "mdbox", 0, 0, NULL, 0, 16, 4 } };
	struct dovi_index *idx;
	const uint8_t *d;
	size_t len;
	uint32_t mu, sd;

	tmpdir_clean();
	idx_header(&idxb, 8, 3, 2, 2, 40, exts, 1);
	idx_record(&idxb, 8, 1, 0, 0, NULL, NULL, NULL);
	idx_record(&idxb, 8, 2, 0, 0, NULL, NULL, NULL);
	log_header(&log, TEST_INDEXID, 2, 1, 0);
	write_file("dovecot.index", &idxb);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	d = dovi_index_ext_record(idx, dovi_index_ext(idx, "mdbox"), 1, &len);
	CHECK(d != NULL);
	CHECK_EQ_INT(len, 8);
	CHECK_EQ_INT(d[0], 2);  /* the uid: offset 0 overlaps it */
	CHECK(dovi_index_mdbox_rec(idx, 1, &mu, &sd));
	dovi_index_free(idx);
	buf_free(&idxb);
	buf_free(&log);
}

int main(void)
{
	tmpdir_make();
	RUN(test_index_and_log);
	RUN(test_index_positions);
	RUN(test_damaged_index);
	RUN(test_truncated_index);
	RUN(test_uid_repairs);
	RUN(test_uid_max_then_append);
	RUN(test_hostile_sizes);
	RUN(test_record_offset_zero);
	tmpdir_remove();
	return CHECK_DONE();
}
