/* test-dovi-log.c - every transaction log record type, replayed from
 * hand-built log images (dovecot-index.md 3.4), and the log-level corner
 * cases of 3.5/3.6. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dbox/dovecot-index.h"
#include "dovi-build.h"

/* Opens the index in test_dir; REQUIREs success. */
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

static int open_fails(char *msg, size_t len)
{
	struct dbox_err err = { "" };
	struct dovi_index *idx = NULL;
	int ret = dovi_index_open(prefix(), &idx, &err);

	snprintf(msg, len, "%s", err.msg);
	dovi_index_free(idx);
	CHECK(ret < 0);
	return ret;
}

/* A new log (seq 2, reset) with uid_validity set: like a new mailbox. */
static void new_log(struct buf *log)
{
	log_header(log, TEST_INDEXID, 2, 0, 0);
	REC(log, T_HEADER_UPDATE | T_EXTERNAL, pl_hdr32(24, 1700000001));
}

static void appends(struct buf *log, uint32_t first, uint32_t last,
		    uint8_t flags)
{
	for (uint32_t uid = first; uid <= last; uid++)
		REC(log, T_APPEND | T_EXTERNAL, pl_append(uid, flags));
}

/* "uid:flags uid:flags ..." of the current state */
static const char *summary(const struct dovi_index *idx)
{
	static char s[1024];
	size_t o = 0;

	s[0] = '\0';
	for (uint32_t i = 0; i < dovi_index_count(idx); i++)
		o += (size_t)snprintf(s + o, sizeof(s) - o, "%s%u:%u",
				      i ? " " : "", dovi_index_uid(idx, i),
				      dovi_index_flags(idx, i));
	return s;
}

/* "uid=kw,kw uid=..." of the messages' keywords */
static const char *kw_summary(const struct dovi_index *idx)
{
	static char s[1024];
	size_t o = 0;

	s[0] = '\0';
	for (uint32_t i = 0; i < dovi_index_count(idx); i++) {
		const char *sep = "";

		o += (size_t)snprintf(s + o, sizeof(s) - o, "%s%u=",
				      i ? " " : "", dovi_index_uid(idx, i));
		for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++) {
			if (!dovi_index_has_keyword(idx, i, k))
				continue;
			o += (size_t)snprintf(s + o, sizeof(s) - o, "%s%s", sep,
					      dovi_index_keyword(idx, k));
			sep = ",";
		}
	}
	return s;
}

static void test_append_flags_header(void)
{
	struct buf log = { 0 };
	struct dovi_header h;
	struct dovi_index *idx;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 3, 0);
	REC(&log, T_APPEND | T_EXTERNAL, pl_append(7, 0x08 | 0x02));
	REC(&log, T_FLAG_UPDATE, pl_flags(2, 3, 0x08, 0));
	REC(&log, T_FLAG_UPDATE, pl_flags(3, 7, 0x04, 0x08));
	/* uids that don't exist are skipped silently */
	REC(&log, T_FLAG_UPDATE, pl_flags(4, 6, 0x10, 0));
	/* backend bit (dbox ALT) is kept in the flag byte */
	REC(&log, T_FLAG_UPDATE, pl_flags(1, 1, 0x40, 0));
	/* first_recent_uid, and an attempt to lower next_uid */
	REC(&log, T_HEADER_UPDATE, pl_hdr32(48, 3));
	REC(&log, T_HEADER_UPDATE, pl_hdr32(28, 2));
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(summary(idx), "1:64 2:8 3:4 7:6");
	dovi_index_header(idx, &h);
	CHECK_EQ_INT(h.uid_validity, 1700000001);
	CHECK_EQ_INT(h.next_uid, 8);
	CHECK_EQ_INT(h.first_recent_uid, 3);
	CHECK_EQ_INT(h.indexid, TEST_INDEXID);
	CHECK_EQ_INT(h.log_file_seq, 2);
	CHECK_EQ_INT(h.log_file_head_offset, log.len);
	CHECK(!dovi_index_info(idx)->index_file);
	CHECK(dovi_index_info(idx)->reset);
	CHECK_EQ_INT(dovi_index_info(idx)->from_offset, 40);
	CHECK_EQ_INT(dovi_index_error_count(idx), 0);
	dovi_index_free(idx);
	buf_free(&log);
}

static void test_append_below_next_uid(void)
{
	struct buf log = { 0 };
	struct dovi_index *idx;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 5, 5, 0);
	REC(&log, T_APPEND | T_EXTERNAL, pl_append(4, 0));
	appends(&log, 6, 6, 0);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(summary(idx), "5:0 6:0");
	CHECK_EQ_INT(dovi_index_error_count(idx), 1);
	dovi_index_free(idx);
	buf_free(&log);
}

static void test_expunges(void)
{
	struct buf log = { 0 }, p = { 0 };
	struct dovi_index *idx;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 8, 0);
	/* a request (no EXTERNAL) changes nothing (4.3) */
	REC(&log, T_EXPUNGE, pl_range(1, 8));
	REC(&log, T_EXPUNGE_GUID, pl_guid_expunge(2));
	REC(&log, T_EXPUNGE | T_EXTERNAL, pl_range(2, 3));
	REC(&log, T_EXPUNGE_GUID | T_EXTERNAL, pl_guid_expunge(5));
	/* two ranges in one record */
	buf_u32(&p, 6);
	buf_u32(&p, 6);
	buf_u32(&p, 8);
	buf_u32(&p, 100);
	log_rec(&log, T_EXPUNGE | T_EXTERNAL, &p);
	/* ext updates for expunged uids are skipped, not errors */
	REC(&log, T_FLAG_UPDATE, pl_flags(1, 8, 0x08, 0));
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(summary(idx), "1:8 4:8 7:8");
	CHECK_EQ_INT(dovi_index_error_count(idx), 0);
	dovi_index_free(idx);
	buf_free(&log);
	buf_free(&p);
}

static void test_keywords(void)
{
	struct buf log = { 0 };
	struct dovi_index *idx;
	char name[16];

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 3, 0);
	REC(&log, T_KEYWORD_UPDATE, pl_keyword(0, "$Label1", 1, 2));
	REC(&log, T_KEYWORD_UPDATE, pl_keyword(0, "foo", 2, 3));
	/* same keyword, other case */
	REC(&log, T_KEYWORD_UPDATE, pl_keyword(0, "FOO", 1, 1));
	REC(&log, T_KEYWORD_UPDATE, pl_keyword(1, "$label1", 2, 2));
	/* a removal still adds the name to the list */
	REC(&log, T_KEYWORD_UPDATE, pl_keyword(1, "never", 1, 3));
	/* enough names for a bitmap wider than one byte */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "k%02d", i);
		REC(&log, T_KEYWORD_UPDATE, pl_keyword(0, name, 3, 3));
	}
	REC(&log, T_KEYWORD_UPDATE, pl_keyword(1, "k05", 3, 3));
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_EQ_INT(dovi_index_keyword_count(idx), 23);
	CHECK_STR(dovi_index_keyword(idx, 0), "$Label1");
	CHECK_STR(dovi_index_keyword(idx, 1), "foo");
	CHECK_STR(dovi_index_keyword(idx, 2), "never");
	CHECK_STR(kw_summary(idx), "1=$Label1,foo 2=foo 3=foo,k00,k01,k02,"
		  "k03,k04,k06,k07,k08,k09,k10,k11,k12,k13,k14,k15,k16,k17,"
		  "k18,k19");
	/* the keywords ext took the next map extension index */
	CHECK(dovi_index_ext(idx, "keywords") >= 0);
	dovi_index_free(idx);

	/* keyword reset clears all keywords of the range */
	REC(&log, T_KEYWORD_RESET, pl_range(2, 3));
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(kw_summary(idx), "1=$Label1,foo 2= 3=");
	CHECK_EQ_INT(dovi_index_keyword_count(idx), 23);
	dovi_index_free(idx);
	buf_free(&log);
}

/* mdbox-style: map + ref extensions with rec updates and atomic incs */
static void test_ext_records(void)
{
	struct buf log = { 0 }, p = { 0 };
	struct dovi_index *idx;
	uint8_t rec[12];
	uint32_t fid, off, size, pos;
	uint16_t ref, one = 1;
	bool have_ref;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 2, 0);
	/* one EXT_INTRO payload introducing two exts: cur = the last */
	intro_add(&p, 0xffffffffu, 0, 8, 12, 4, 1, "map");
	intro_add(&p, 0xffffffffu, 0, 0, 2, 2, 1, "ref");
	log_rec(&log, T_EXT_INTRO, &p);
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(1, &one, 2));
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(2, &one, 2));
	REC(&log, T_EXT_ATOMIC_INC, pl_atomic_inc(1, 1));
	REC(&log, T_EXT_ATOMIC_INC, pl_atomic_inc(2, -1));
	/* below zero: an error, value kept */
	REC(&log, T_EXT_ATOMIC_INC, pl_atomic_inc(2, -1));
	/* by map extension index: "map" is ext 0 */
	buf_free(&p);
	intro_add(&p, 0, 0, 8, 12, 4, 1, "");
	log_rec(&log, T_EXT_INTRO, &p);
	memcpy(rec, "\x03\0\0\0\x10\0\0\0\x20\x01\0\0", 12);
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(1, rec, 12));
	memcpy(rec, "\x04\0\0\0\x30\0\0\0\x40\0\0\0", 12);
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(2, rec, 12));
	/* header: highest_file_id = 4 */
	{
		struct buf h = { 0 };

		buf_u16(&h, 0);
		buf_u16(&h, 4);
		buf_u32(&h, 4);
		log_rec(&log, T_EXT_HDR_UPDATE, &h);
		buf_free(&h);
	}
	/* uid >= next_uid in a rec update: error, rest of record skipped */
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(9, rec, 12));
	write_file("dovecot.map.index.log", &log);
	{
		struct dbox_err err = { "" };
		char pfx[512];

		snprintf(pfx, sizeof(pfx), "%s/dovecot.map.index", test_dir);
		REQUIRE(dovi_index_open(pfx, &idx, &err) == 0);
	}
	REQUIRE(dovi_index_lookup(idx, 1, &pos));
	REQUIRE(dovi_index_map_rec(idx, pos, &fid, &off, &size, &have_ref,
				   &ref));
	CHECK_EQ_INT(fid, 3);
	CHECK_EQ_INT(off, 16);
	CHECK_EQ_INT(size, 288);
	CHECK(have_ref);
	CHECK_EQ_INT(ref, 2);
	REQUIRE(dovi_index_lookup(idx, 2, &pos));
	REQUIRE(dovi_index_map_rec(idx, pos, &fid, &off, &size, &have_ref,
				   &ref));
	CHECK_EQ_INT(fid, 4);
	CHECK_EQ_INT(ref, 0);
	{
		uint32_t highest = 0, rebuilds = 1;

		CHECK(dovi_index_map_hdr(idx, &highest, &rebuilds));
		CHECK_EQ_INT(highest, 4);
		CHECK_EQ_INT(rebuilds, 0);
	}
	CHECK_EQ_INT(dovi_index_error_count(idx), 2);
	dovi_index_free(idx);
	buf_free(&log);
	buf_free(&p);
}

/* ext reset, stale intros, resize, header updates (16 and 32 bit) */
static void test_ext_reset_and_resize(void)
{
	struct buf log = { 0 }, p = { 0 };
	struct dovi_index *idx;
	uint32_t v = 0x11223344, pos;
	const uint8_t *d;
	size_t len;
	uint8_t hdr[16];
	int ext;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 1, 0);
	REC(&log, T_EXT_INTRO, pl_intro("test", 5, 8, 4, 4));
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(1, &v, 4));
	/* preserve_data: reset_id changes, data stays */
	buf_u32(&p, 6);
	buf_u8(&p, 1);
	buf_zero(&p, 3);
	log_rec(&log, T_EXT_RESET, &p);
	/* stale intro (old reset_id): its updates are ignored */
	REC(&log, T_EXT_INTRO, pl_intro("test", 5, 8, 4, 4));
	v = 0x55;
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(1, &v, 4));
	/* current intro growing the record to 8 bytes keeps old bytes */
	REC(&log, T_EXT_INTRO, pl_intro("test", 6, 16, 8, 4));
	{
		struct buf h = { 0 };

		buf_u32(&h, 12);        /* EXT_HDR_UPDATE32 */
		buf_u32(&h, 4);
		buf_u32(&h, 0xcafe);
		log_rec(&log, T_EXT_HDR_UPDATE32, &h);
		buf_free(&h);
	}
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	ext = dovi_index_ext(idx, "test");
	REQUIRE(ext >= 0);
	REQUIRE(dovi_index_lookup(idx, 1, &pos));
	d = dovi_index_ext_record(idx, ext, pos, &len);
	REQUIRE(d != NULL);
	CHECK_EQ_INT(len, 8);
	CHECK_EQ_INT(d[0], 0x44);
	CHECK_EQ_INT(d[3], 0x11);
	CHECK_EQ_INT(d[4], 0);
	CHECK_EQ_INT(dovi_index_ext_header(idx, ext, 0, hdr, 16), 16);
	CHECK_EQ_INT(hdr[12], 0xfe);
	dovi_index_free(idx);

	/* reset without preserve zeroes header and records */
	buf_free(&p);
	buf_u32(&p, 7);
	buf_zero(&p, 4);
	log_rec(&log, T_EXT_RESET, &p);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	d = dovi_index_ext_record(idx, ext, 0, &len);
	CHECK(d != NULL && d[0] == 0 && d[3] == 0);
	dovi_index_ext_header(idx, ext, 0, hdr, 16);
	CHECK_EQ_INT(hdr[12], 0);
	CHECK_EQ_INT(dovi_index_error_count(idx), 0);
	dovi_index_free(idx);
	buf_free(&log);
	buf_free(&p);
}

static void test_ext_errors(void)
{
	struct buf log = { 0 }, p = { 0 };
	struct dovi_index *idx;
	uint32_t v = 1;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 1, 0);
	/* updates without any intro */
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(1, &v, 4));
	/* unknown ext id, keywords by intro, invalid sizes, invalid name */
	intro_add(&p, 42, 0, 4, 0, 0, 0, "");
	log_rec(&log, T_EXT_INTRO, &p);
	REC(&log, T_EXT_REC_UPDATE, pl_rec_update(1, &v, 4));
	REC(&log, T_EXT_INTRO, pl_intro("keywords", 0, 4, 0, 0));
	REC(&log, T_EXT_INTRO, pl_intro("zero", 0, 0, 0, 0));
	REC(&log, T_EXT_INTRO, pl_intro("bad/name", 0, 4, 0, 0));
	REC(&log, T_EXT_INTRO, pl_intro("align", 0, 0, 4, 9));
	/* header update beyond the header */
	REC(&log, T_EXT_INTRO, pl_intro("small", 0, 4, 0, 0));
	{
		struct buf h = { 0 };

		buf_u16(&h, 2);
		buf_u16(&h, 4);
		buf_u32(&h, 1);
		log_rec(&log, T_EXT_HDR_UPDATE, &h);
		buf_free(&h);
	}
	/* base header update outside the base header */
	REC(&log, T_HEADER_UPDATE, pl_hdr32(118, 1));
	/* unknown record type */
	REC(&log, 0x4000, pl_range(1, 1));
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_EQ_INT(dovi_index_error_count(idx), 9);
	CHECK_STR(summary(idx), "1:0");
	CHECK(dovi_index_ext(idx, "small") >= 0);
	CHECK(dovi_index_ext(idx, "zero") < 0);
	CHECK(dovi_index_ext(idx, "keywords") < 0);
	dovi_index_free(idx);
	buf_free(&log);
	buf_free(&p);
}

static void test_index_deleted(void)
{
	struct buf log = { 0 }, p = { 0 };
	struct dovi_index *idx;

	tmpdir_clean();
	new_log(&log);
	buf_u32(&p, 0);
	log_rec(&log, T_INDEX_DELETED, &p);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK(!dovi_index_deleted(idx));        /* only a request */
	dovi_index_free(idx);
	log_rec(&log, T_INDEX_DELETED | T_EXTERNAL, &p);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK(dovi_index_deleted(idx));
	dovi_index_free(idx);
	log_rec(&log, T_INDEX_UNDELETED, &p);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK(!dovi_index_deleted(idx));
	dovi_index_free(idx);
	buf_free(&log);
	buf_free(&p);
}

/* 3.5: a transaction still being written and unwritten bytes are not
 * applied; once complete they are (also through a refresh). */
static void test_partial_transaction(void)
{
	struct buf log = { 0 }, p = { 0 };
	struct dovi_index *idx;
	size_t before;
	bool changed;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 1, 0);
	before = log.len;
	/* BOUNDARY announcing 8 + 16 + 20 bytes, only the first two there */
	buf_u32(&p, 8 + 16 + 20);
	log_rec(&log, T_BOUNDARY | T_EXTERNAL, &p);
	REC(&log, T_APPEND | T_EXTERNAL, pl_append(2, 0));
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	CHECK_STR(summary(idx), "1:0");
	CHECK_EQ_INT(dovi_index_info(idx)->to_offset, before);
	/* zero bytes of an unfinished write after it: still nothing */
	buf_zero(&log, 12);
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
	CHECK(!changed);
	log.len -= 12;
	REC(&log, T_FLAG_UPDATE, pl_flags(1, 2, 0x08, 0));
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
	CHECK(changed);
	CHECK_STR(summary(idx), "1:8 2:8");
	dovi_index_free(idx);
	buf_free(&log);
	buf_free(&p);
}

/* 3.6/5.1: .log.2 + .log chain, reset logs, stale and missing files */
static void test_chain(void)
{
	struct buf l2 = { 0 }, l3 = { 0 }, stale = { 0 };
	struct dovi_index *idx;
	char msg[256];

	tmpdir_clean();
	new_log(&l2);
	appends(&l2, 1, 2, 0);
	log_header(&l3, TEST_INDEXID, 3, 2, (uint32_t)l2.len);
	appends(&l3, 3, 3, 0x08);
	REC(&l3, T_FLAG_UPDATE, pl_flags(1, 1, 0x02, 0));
	write_file("dovecot.index.log.2", &l2);
	write_file("dovecot.index.log", &l3);
	idx = open_ok();
	CHECK_STR(summary(idx), "1:2 2:0 3:8");
	CHECK_EQ_INT(dovi_index_info(idx)->from_seq, 2);
	CHECK_EQ_INT(dovi_index_info(idx)->to_seq, 3);
	dovi_index_free(idx);

	/* .log.2 not ending where .log says: corrupted chain */
	buf_zero(&l2, 0);
	appends(&l2, 9, 9, 0);
	write_file("dovecot.index.log.2", &l2);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "prev_file_offset") != NULL);

	/* missing middle file: history lost (6.1) */
	tmpdir_clean();
	write_file("dovecot.index.log", &l3);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "missing") != NULL);

	/* a stale .log.2 (seq not below .log's) is ignored; a reset .log
	 * stands alone */
	log_header(&stale, TEST_INDEXID, 5, 0, 0);
	appends(&stale, 1, 1, 0);
	write_file("dovecot.index.log.2", &stale);
	buf_free(&l3);
	log_header(&l3, TEST_INDEXID, 4, 0, 0);
	appends(&l3, 10, 11, 0);
	write_file("dovecot.index.log", &l3);
	idx = open_ok();
	CHECK_STR(summary(idx), "10:0 11:0");
	dovi_index_free(idx);

	/* a .log.2 of another index (indexid) is not used */
	buf_free(&stale);
	log_header(&stale, TEST_INDEXID + 1, 3, 0, 0);
	write_file("dovecot.index.log.2", &stale);
	idx = open_ok();
	CHECK_STR(summary(idx), "10:0 11:0");
	dovi_index_free(idx);

	/* indexid 0 = marked corrupted by Dovecot */
	buf_set32(&l3, 4, 0);
	write_file("dovecot.index.log", &l3);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "corrupted") != NULL);
	buf_free(&l2);
	buf_free(&l3);
	buf_free(&stale);
}

static void test_invalid_records(void)
{
	struct buf log = { 0 }, p = { 0 };
	char msg[256];

	/* record size 4: corrupt, unusable */
	tmpdir_clean();
	new_log(&log);
	buf_add(&log, "\x80\x80\x80\x81", 4);
	buf_u32(&log, T_APPEND);
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	/* expunge without its protection bits */
	buf_free(&log);
	new_log(&log);
	REC(&log, 0x1 | T_EXTERNAL, pl_range(1, 1));
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "invalid record") != NULL);
	/* ranges not sorted */
	buf_free(&log);
	new_log(&log);
	buf_u32(&p, 5);
	buf_u32(&p, 6);
	buf_u32(&p, 2);
	buf_u32(&p, 3);
	log_rec(&log, T_FLAG_UPDATE, &p);
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	/* keyword name running past the record */
	buf_free(&log);
	buf_free(&p);
	new_log(&log);
	buf_u8(&p, 0);
	buf_u8(&p, 0);
	buf_u16(&p, 200);
	buf_add(&p, "abcd", 4);
	log_rec(&log, T_KEYWORD_UPDATE, &p);
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	/* bad log header: major version, little-endian flag, too short */
	buf_free(&log);
	new_log(&log);
	log.p[0] = 2;
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	log.p[0] = 1;
	log.p[32] = 0;
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	log.len = 20;
	write_file("dovecot.index.log", &log);
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -EBADMSG);
	/* nothing at all */
	tmpdir_clean();
	CHECK_EQ_INT(open_fails(msg, sizeof(msg)), -ENOENT);
	buf_free(&log);
	buf_free(&p);
}

/* 5.3: following a growing, rotated, reset, truncated log */
static void test_refresh(void)
{
	struct buf l2 = { 0 }, l3 = { 0 };
	struct dovi_index *idx;
	char from[512], to[512];
	bool changed;

	tmpdir_clean();
	new_log(&l2);
	appends(&l2, 1, 1, 0);
	write_file("dovecot.index.log", &l2);
	idx = open_ok();
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
	CHECK(!changed);
	/* appended in place (same inode: rewrite through the same path) */
	{
		FILE *f;

		snprintf(from, sizeof(from), "%s/dovecot.index.log", test_dir);
		f = fopen(from, "r+b");
		REQUIRE(f != NULL);
		appends(&l2, 2, 2, 0);
		REQUIRE(fwrite(l2.p, 1, l2.len, f) == l2.len);
		fclose(f);
	}
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
	CHECK(changed);
	CHECK_STR(summary(idx), "1:0 2:0");
	/* rotation: more records in the old file, then .log -> .log.2 and
	 * a new .log continuing it */
	{
		FILE *f = fopen(from, "r+b");

		REQUIRE(f != NULL);
		REC(&l2, T_FLAG_UPDATE, pl_flags(1, 1, 0x08, 0));
		REQUIRE(fwrite(l2.p, 1, l2.len, f) == l2.len);
		fclose(f);
	}
	snprintf(to, sizeof(to), "%s/dovecot.index.log.2", test_dir);
	REQUIRE(rename(from, to) == 0);
	log_header(&l3, TEST_INDEXID, 3, 2, (uint32_t)l2.len);
	appends(&l3, 3, 3, 0x02);
	write_file("dovecot.index.log", &l3);
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
	CHECK(changed);
	CHECK_STR(summary(idx), "1:8 2:0 3:2");
	CHECK_EQ_INT(dovi_index_info(idx)->to_seq, 3);
	/* a reset log (force-resync) replaces everything */
	buf_free(&l3);
	log_header(&l3, TEST_INDEXID, 4, 0, 0);
	appends(&l3, 7, 7, 0);
	REQUIRE(unlink(from) == 0);
	write_file("dovecot.index.log", &l3);
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
	CHECK(changed);
	CHECK_STR(summary(idx), "7:0");
	/* the log shrinks below what was applied: reload */
	{
		struct buf small = { 0 };

		log_header(&small, TEST_INDEXID, 4, 0, 0);
		REQUIRE(truncate(from, 0) == 0);
		{
			FILE *f = fopen(from, "r+b");

			REQUIRE(f != NULL);
			REQUIRE(fwrite(small.p, 1, small.len, f) == small.len);
			fclose(f);
		}
		CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), 0);
		CHECK(changed);
		CHECK_STR(summary(idx), "");
		buf_free(&small);
	}
	/* indexid set to 0 in place: error, the old state stays */
	{
		FILE *f = fopen(from, "r+b");
		uint8_t zero[4] = { 0 };

		REQUIRE(f != NULL);
		REQUIRE(fseek(f, 4, SEEK_SET) == 0);
		REQUIRE(fwrite(zero, 1, 4, f) == 4);
		fclose(f);
	}
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), -EBADMSG);
	CHECK_STR(summary(idx), "");
	dovi_index_free(idx);
	buf_free(&l2);
	buf_free(&l3);
}

/* A bad record appended later is refused without touching the state;
 * the records before it are not lost either. */
static void test_refresh_bad_record(void)
{
	struct buf log = { 0 };
	struct dovi_index *idx;
	bool changed;

	tmpdir_clean();
	new_log(&log);
	appends(&log, 1, 1, 0);
	write_file("dovecot.index.log", &log);
	idx = open_ok();
	REC(&log, T_FLAG_UPDATE, pl_flags(1, 1, 0x08, 0));
	REC(&log, 0x1 | T_EXTERNAL, pl_range(1, 1));
	{
		char path[512];
		FILE *f;

		snprintf(path, sizeof(path), "%s/dovecot.index.log", test_dir);
		f = fopen(path, "r+b");
		REQUIRE(f != NULL);
		REQUIRE(fwrite(log.p, 1, log.len, f) == log.len);
		fclose(f);
	}
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), -EBADMSG);
	CHECK_STR(summary(idx), "1:0");
	CHECK_EQ_INT(dovi_index_refresh(idx, &changed, NULL), -EBADMSG);
	CHECK_STR(summary(idx), "1:0");
	dovi_index_free(idx);
	buf_free(&log);
}

int main(void)
{
	tmpdir_make();
	RUN(test_append_flags_header);
	RUN(test_append_below_next_uid);
	RUN(test_expunges);
	RUN(test_keywords);
	RUN(test_ext_records);
	RUN(test_ext_reset_and_resize);
	RUN(test_ext_errors);
	RUN(test_index_deleted);
	RUN(test_partial_transaction);
	RUN(test_chain);
	RUN(test_invalid_records);
	RUN(test_refresh);
	RUN(test_refresh_bad_record);
	tmpdir_remove();
	return CHECK_DONE();
}
