/* test-dovi-logwrite.c - transactions appended to a Dovecot log
 * (dovecot-logwrite.c) read back by the reader as Dovecot would replay
 * them; logs it must not write (missing, marked corrupted, unfinished
 * transaction at the end, unsynced map, moved on, locked) stay as they
 * were. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-logwrite.h"
#include "dovi-build.h"

static const char *log_path(void)
{
	static char p[600];

	snprintf(p, sizeof(p), "%s.log", prefix());
	return p;
}

static off_t log_size(void)
{
	struct stat st;

	return stat(log_path(), &st) == 0 ? st.st_size : -1;
}

/* A mailbox log: uid_validity, three messages; indexid as given. */
static void make_log(uint32_t indexid, bool tail)
{
	struct buf log = { 0 };

	tmpdir_clean();
	log_header(&log, indexid, 2, 0, 0);
	REC(&log, T_HEADER_UPDATE | T_EXTERNAL, pl_hdr32(24, 1700000001));
	for (uint32_t uid = 1; uid <= 3; uid++)
		REC(&log, T_APPEND | T_EXTERNAL, pl_append(uid, 0));
	if (tail)   /* a sync's end: log_file_tail_offset = end of file */
		REC(&log, T_HEADER_UPDATE | T_EXTERNAL,
		    pl_hdr32(64, (uint32_t)log.len + 16));
	write_file("dovecot.index.log", &log);
	buf_free(&log);
}

static int commit(struct dovi_logwrite *w, char *msg, size_t len)
{
	struct dbox_err err = { "" };
	int ret = dovi_logwrite_commit(w, log_path(), 100, &err);

	snprintf(msg, len, "%s", err.msg);
	return ret;
}

static struct dovi_index *open_ok(void)
{
	struct dbox_err err = { "" };
	struct dovi_index *idx = NULL;
	int ret = dovi_index_open(prefix(), &idx, &err);

	if (ret != 0)
		fprintf(stderr, "open: %d %s\n", ret, err.msg);
	REQUIRE(ret == 0);
	CHECK_EQ_INT(dovi_index_error_count(idx), 0);
	return idx;
}

static void test_flags_keywords_expunge(void)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	uint8_t guid[16] = { 1, 2, 3 };
	struct dovi_index *idx;
	char msg[512];
	off_t before;
	uint32_t pos;

	make_log(TEST_INDEXID, false);
	before = log_size();
	dovi_logwrite_flags_add(w, 2, 2, 0x08 | 0x02, 0);
	dovi_logwrite_keyword_add(w, true, "$Label1", 2, 2);
	dovi_logwrite_keyword_add(w, false, "Work", 1, 1);
	dovi_logwrite_expunge_add(w, 3, guid);
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), 0);
	/* boundary, flags, 2 keywords (names padded), expunge */
	CHECK_EQ_INT(log_size() - before, 12 + 20 + 28 + 24 + 28);
	dovi_logwrite_free(w);

	idx = open_ok();
	CHECK_EQ_INT(dovi_index_count(idx), 2);
	REQUIRE(dovi_index_lookup(idx, 2, &pos));
	CHECK_EQ_INT(dovi_index_flags(idx, pos), 0x0a);
	/* a removal registers the name as well, as Dovecot's replay does */
	CHECK_EQ_INT(dovi_index_keyword_count(idx), 2);
	CHECK_STR(dovi_index_keyword(idx, 0), "$Label1");
	CHECK(dovi_index_has_keyword(idx, pos, 0));
	CHECK(!dovi_index_lookup(idx, 3, &pos));
	dovi_index_free(idx);
}

static void test_single_record_has_no_boundary(void)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	char msg[512];
	off_t before;

	make_log(TEST_INDEXID, false);
	before = log_size();
	dovi_logwrite_flags_add(w, 1, 1, 0x04, 0);
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(log_size() - before, 20);
	dovi_logwrite_free(w);
	/* nothing to write: nothing written */
	w = dovi_logwrite_new();
	before = log_size();
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(log_size(), before);
	dovi_logwrite_free(w);
}

/* Each bad log: the commit fails with want and the file is unchanged. */
static void refused(int want, const char *what)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	off_t before = log_size();
	char msg[512];

	dovi_logwrite_flags_add(w, 1, 1, 0x08, 0);
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), want);
	CHECK_EQ_INT(log_size(), before);
	fprintf(stderr, "   %s: %s\n", what, msg);
	dovi_logwrite_free(w);
}

static void test_bad_logs(void)
{
	struct buf junk = { 0 };
	int fd;

	tmpdir_clean();
	refused(-ENOENT, "missing");
	make_log(0, false);
	refused(-EBADMSG, "marked corrupted");
	make_log(TEST_INDEXID, false);
	/* an unfinished write: a zero size word */
	fd = open(log_path(), O_WRONLY | O_APPEND);
	REQUIRE(fd >= 0);
	buf_zero(&junk, 12);
	REQUIRE(write(fd, junk.p, junk.len) == (ssize_t)junk.len);
	close(fd);
	buf_free(&junk);
	refused(-EBADMSG, "unfinished transaction");
	/* not a log at all */
	junk.len = 0;
	buf_add(&junk, "garbage!", 8);
	write_file("dovecot.index.log", &junk);
	buf_free(&junk);
	refused(-EBADMSG, "not a log");
}

static void test_lock_is_waited_for(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	make_log(TEST_INDEXID, false);
	/* a process lock, as Dovecot's: it conflicts with ours even in the
	 * same process */
	fd = open(log_path(), O_RDWR);
	REQUIRE(fd >= 0);
	REQUIRE(fcntl(fd, F_SETLK, &fl) == 0);
	refused(-ETIMEDOUT, "locked");
	close(fd);
}

static void test_synced(void)
{
	struct dovi_logwrite *w;
	char msg[512];
	off_t before;
	uint8_t tail[16];
	int fd;

	make_log(TEST_INDEXID, false);
	w = dovi_logwrite_new();
	dovi_logwrite_set_synced(w);
	dovi_logwrite_flags_add(w, 1, 1, 0x08, 0);
	before = log_size();
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), -EBADMSG);
	CHECK_EQ_INT(log_size(), before);

	make_log(TEST_INDEXID, true);
	before = log_size();
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(log_size(), before + 20 + 16);
	fd = open(log_path(), O_RDONLY);
	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, tail, 16, log_size() - 16) == 16);
	close(fd);
	/* HEADER_UPDATE (external) of offset 64, 4 bytes: the new end */
	CHECK_EQ_INT(tail[4] | tail[7] << 24, 0x20 | 0x10 << 24);
	CHECK_EQ_INT(tail[8], 64);
	CHECK_EQ_INT(tail[10], 4);
	CHECK_EQ_INT(tail[12] | tail[13] << 8, log_size());
	/* and the log is synced again: a second one goes on */
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), 0);
	dovi_logwrite_free(w);
	dovi_index_free(open_ok());
}

static void test_expected_end(void)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	uint32_t seq;
	uint64_t start, end;
	char msg[512];
	off_t before;

	make_log(TEST_INDEXID, false);
	before = log_size();
	dovi_logwrite_append_add(w, 4, 0);
	dovi_logwrite_expect(w, 2, (uint64_t)before - 4, (uint64_t)before - 4);
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), -EAGAIN);
	CHECK_EQ_INT(log_size(), before);
	dovi_logwrite_expect(w, 3, (uint64_t)before, (uint64_t)before);
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), -EAGAIN);
	dovi_logwrite_expect(w, 2, 0, (uint64_t)before);
	CHECK_EQ_INT(commit(w, msg, sizeof(msg)), 0);
	dovi_logwrite_end(w, &seq, &start, &end);
	CHECK_EQ_INT(seq, 2);
	CHECK_EQ_INT(start, before);
	CHECK_EQ_INT(end, log_size());
	dovi_logwrite_free(w);
	dovi_index_free(open_ok());
}

/* A new mailbox's first log as the mount makes it: read back with its
 * uid_validity, next uid and dbox-hdr; a second one is refused, and so
 * is one while Dovecot makes its own. */
static void test_create_first_log(void)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	struct dbox_err err = { "" };
	struct dovi_index *idx;
	struct dovi_header hdr;
	uint8_t ext[24] = { 0 }, got[24];
	char lock[700];
	off_t before;
	int fd;

	tmpdir_clean();
	memset(ext + 4, 0xab, 16);
	dovi_logwrite_ext_intro_add(w, "dbox-hdr", 0, sizeof(ext), 0, 0);
	dovi_logwrite_ext_hdr_add(w, 0, ext, sizeof(ext));
	dovi_logwrite_header_add(w, 24, 1700000042);
	dovi_logwrite_header_add(w, 28, 1);
	/* while Dovecot holds its lock on making the log, none is made and
	 * its lock stays */
	snprintf(lock, sizeof(lock), "%s.newlock", log_path());
	fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(dovi_logwrite_create(w, log_path(), &err), -EBUSY);
	CHECK_EQ_INT(log_size(), -1);
	CHECK(access(lock, F_OK) == 0);
	unlink(lock);
	CHECK_EQ_INT(dovi_logwrite_create(w, log_path(), &err), 0);
	CHECK(access(lock, F_OK) < 0);
	before = log_size();
	CHECK_EQ_INT(dovi_logwrite_create(w, log_path(), &err), -EEXIST);
	CHECK_EQ_INT(log_size(), before);
	dovi_logwrite_free(w);

	idx = open_ok();
	dovi_index_header(idx, &hdr);
	CHECK_EQ_INT(hdr.uid_validity, 1700000042);
	CHECK_EQ_INT(hdr.next_uid, 1);
	CHECK_EQ_INT(dovi_index_count(idx), 0);
	CHECK_EQ_INT(dovi_index_ext_header(idx, dovi_index_ext(idx,
			"dbox-hdr"), 0, got, sizeof(got)), sizeof(got));
	CHECK(memcmp(got, ext, sizeof(ext)) == 0);
	dovi_index_free(idx);

	/* an empty or unbuildable transaction makes no log */
	tmpdir_clean();
	w = dovi_logwrite_new();
	CHECK_EQ_INT(dovi_logwrite_create(w, log_path(), &err), -EINVAL);
	dovi_logwrite_ext_hdr_add(w, 65535, ext, sizeof(ext));
	CHECK_EQ_INT(dovi_logwrite_create(w, log_path(), &err), -EINVAL);
	CHECK_EQ_INT(log_size(), -1);
	dovi_logwrite_free(w);
}

int main(void)
{
	tmpdir_make();
	RUN(test_flags_keywords_expunge);
	RUN(test_single_record_has_no_boundary);
	RUN(test_bad_logs);
	RUN(test_lock_is_waited_for);
	RUN(test_synced);
	RUN(test_expected_end);
	RUN(test_create_first_log);
	tmpdir_remove();
	return CHECK_DONE();
}
