/* test-fs-faults.c - randomfail: every injected failure reaches the caller
 * as that error, the counts of failures seen and injected agree, classes
 * filter, and a temp file whose writing failed leaves nothing behind. */
#include "fs-test.h"

/* ops on an open handle and on paths, each of which randomfail may fail */
enum { OP_PREAD, OP_PWRITE, OP_APPEND, OP_TRUNCATE, OP_FSYNC, OP_COMMIT,
	OP_FSTAT, OP_TRY_LOCK, OP_STAT, OP_MKDIR, OP_RENAME, OP_UNLINK,
	OP_FSYNC_DIR, OP_OPEN_READ, OP_OPEN_WRITE, OP_COUNT };
static const char *const op_names[OP_COUNT] = {
	"pread", "pwrite", "append", "truncate", "fsync", "commit", "fstat",
	"try_lock", "stat", "mkdir", "rename", "unlink", "fsync_dir",
	"open-read", "open-write",
};
static const unsigned int op_class[OP_COUNT] = {
	DFS_CLASS_READ, DFS_CLASS_WRITE, DFS_CLASS_WRITE, DFS_CLASS_WRITE,
	DFS_CLASS_SYNC, DFS_CLASS_SYNC, DFS_CLASS_READ, DFS_CLASS_META,
	DFS_CLASS_READ, DFS_CLASS_WRITE, DFS_CLASS_META, DFS_CLASS_META,
	DFS_CLASS_SYNC, DFS_CLASS_READ, DFS_CLASS_WRITE,
};

static const char data[8] = "DATADATA";

/* Runs one op synchronously; f is an open handle on fst_dir/data.
 * Returns its error. */
static int run_op(struct dfs *fs, struct dfs_file *f, int op, int i)
{
	char buf[16], a[512], b[512];
	struct stat st;
	struct dfs_file *g;
	size_t n;
	int ret;

	switch (op) {
	case OP_PREAD: return dfs_sync_pread(f, buf, 8, 0, &n);
	case OP_PWRITE: return dfs_sync_pwrite(f, data, 8, 8);
	case OP_APPEND: return dfs_sync_append(f, data, 8, NULL);
	case OP_TRUNCATE: return dfs_sync_truncate(f, 16);
	case OP_FSYNC: return dfs_sync_fsync(f);
	case OP_COMMIT: return dfs_sync_commit(f, NULL);
	case OP_FSTAT: return dfs_sync_fstat(f, &st);
	case OP_TRY_LOCK:
		ret = dfs_sync_try_lock(f);
		if (ret == 0)
			CHECK_EQ_INT(dfs_sync_unlock(f), 0);
		return ret;
	case OP_STAT: return dfs_sync_stat(fs, fst_dir, &st);
	case OP_MKDIR:
		ret = dfs_sync_mkdir(fs, fst_path(a, sizeof(a), "d%d", i), 0700);
		if (ret == 0)
			rmdir(a);
		return ret;
	case OP_RENAME:
		fclose(fopen(fst_path(a, sizeof(a), "r%d", i), "w"));
		ret = dfs_sync_rename(fs, a, fst_path(b, sizeof(b), "s%d", i));
		unlink(a);
		unlink(b);
		return ret;
	case OP_UNLINK:
		fclose(fopen(fst_path(a, sizeof(a), "u%d", i), "w"));
		ret = dfs_sync_unlink(fs, a);
		unlink(a);
		return ret;
	case OP_FSYNC_DIR: return dfs_sync_fsync_dir(fs, fst_dir);
	case OP_OPEN_READ:
	case OP_OPEN_WRITE:
		ret = dfs_sync_open(fs, fst_path(a, sizeof(a), "data"),
				    op == OP_OPEN_READ ? O_RDONLY : O_RDWR, 0, &g);
		if (ret == 0)
			CHECK_EQ_INT(dfs_sync_close(g), 0);
		return ret;
	}
	return -ENOSYS;
}

/* A handle that randomfail cannot fail at open: wrapped from an fd. */
static struct dfs_file *data_handle(struct dfs *fs)
{
	char path[512];
	int fd = open(fst_path(path, sizeof(path), "data"),
		      O_RDWR | O_CREAT | O_TRUNC, 0600);

	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "0123456789abcdef", 16) == 16);
	return dfs_file_from_fd(fs, fd, path);
}

/* Every op once under a 100% or 0% failure config; checks each against
 * what the class filter says and the counters against what was seen. */
static void all_ops(const char *config, unsigned int failing, int err)
{
	struct dfs_settings set = { .max_workers = 4, .random_seed = 7 };
	struct dfs *fs = fst_new(config, &set);
	struct dfs_file *f = data_handle(fs);
	struct dfs_stats st;
	int seen = 0;

	for (int op = 0; op < OP_COUNT; op++) {
		int ret = run_op(fs, f, op, op);
		int want = (op_class[op] & failing) != 0 ? err : 0;

		if (ret != want)
			fprintf(stderr, "   %s under %s: %d, expected %d\n",
				op_names[op], config, ret, want);
		CHECK_EQ_INT(ret, want);
		seen += ret < 0;
	}
	/* cleanup is never failed on purpose */
	CHECK_EQ_INT(dfs_sync_rollback(f), 0);
	CHECK_EQ_INT(dfs_sync_unlock(f), 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	dfs_get_stats(fs, &st);
	CHECK_EQ_INT(st.injected, seen);
	CHECK_EQ_INT(st.failed, seen);
	dfs_free(fs);
}

static void test_all_or_nothing(void)
{
	unsigned int all = DFS_CLASS_READ | DFS_CLASS_WRITE | DFS_CLASS_SYNC |
		DFS_CLASS_META;
	char path[512], buf[17] = "";
	int fd;

	all_ops("randomfail:eio:100%/posix", all, -EIO);
	/* nothing failed reached the disk: the data file is as written */
	fd = open(fst_path(path, sizeof(path), "data"), O_RDONLY);
	REQUIRE(fd >= 0);
	CHECK_EQ_INT(read(fd, buf, 16), 16);
	CHECK_STR(buf, "0123456789abcdef");
	close(fd);
	all_ops("randomfail:eio:0%/posix", 0, 0);
	all_ops("randomfail:enospc:100%:write/posix", DFS_CLASS_WRITE, -ENOSPC);
	all_ops("randomfail:eacces:100%:read/posix", DFS_CLASS_READ, -EACCES);
	all_ops("randomfail:erofs:100%:meta/posix", DFS_CLASS_META, -EROFS);
	all_ops("randomfail:enomem:100%:sync/posix", DFS_CLASS_SYNC, -ENOMEM);
	all_ops("randomfail:eagain:100%/delay:100us/posix", all, -EAGAIN);
}

/* Async requests at a fraction: every failure the callbacks see was
 * injected and every injected one was seen, with the configured errors;
 * the reads that did not fail read the right bytes. */
static void test_fraction(const char *config, double lo, double hi)
{
	enum { N = 3000 };
	struct dfs_settings set = { .max_workers = 8, .random_seed = 99 };
	struct dfs *fs = fst_new(config, &set);
	struct dfs_file *f = data_handle(fs);
	struct fst_slot *s = calloc(N, sizeof(*s));
	char (*bufs)[8] = calloc(N, 8);
	struct fst_tally t;
	struct dfs_stats st;
	int seen = 0, eio = 0, enospc = 0;

	REQUIRE(s != NULL && bufs != NULL);
	fst_tally_init(&t);
	fst_slots_init(s, N, &t);
	for (int i = 0; i < N; i++) {
		if (i % 3 == 0)
			dfs_stat(fs, fst_dir, fst_cb, &s[i]);
		else
			dfs_pread(f, bufs[i], 8, 0, fst_cb, &s[i]);
	}
	REQUIRE(fst_wait(&t, N, 60));
	CHECK_EQ_INT(fst_slots_bad(s, N), 0);
	for (int i = 0; i < N; i++) {
		seen += s[i].err < 0;
		eio += s[i].err == -EIO;
		enospc += s[i].err == -ENOSPC;
		if (s[i].err == 0 && i % 3 != 0)
			CHECK(memcmp(bufs[i], "01234567", 8) == 0);
	}
	CHECK_EQ_INT(seen, eio + enospc);
	dfs_get_stats(fs, &st);
	fprintf(stderr, "   %s: %d of %d failed (%d eio, %d enospc), %llu "
		"injected\n", config, seen, N, eio, enospc,
		(unsigned long long)st.injected);
	CHECK_EQ_INT(st.injected, seen);
	CHECK_EQ_INT(st.failed, seen);
	CHECK_EQ_INT(st.completed, N);
	CHECK(seen > lo * N && seen < hi * N);
	dfs_sync_close(f);
	dfs_free(fs);
	fst_tally_destroy(&t);
	free(s);
	free(bufs);
}

static void test_fractions(void)
{
	test_fraction("randomfail:eio:30%/posix", 0.25, 0.35);
	/* two layers: 1 - 0.5 * 0.5 of the requests fail, both errors */
	test_fraction("randomfail:eio:50%/delay:50us/randomfail:enospc:50%/posix",
		      0.70, 0.80);
	/* the read class only: reads fail, stats (also reads) too */
	test_fraction("randomfail:eio:10%:read/posix", 0.07, 0.13);
}

/* One message written to a temp file and committed, under injected
 * failures; on the first failure the writer rolls back (or only closes,
 * or even leaves it to dfs_free).  Returns 1 if it was committed. */
static int write_one(struct dfs *fs, const char *final, int how)
{
	char chunk[1000];
	struct dfs_file *f;
	int ret;

	memset(chunk, 'x', sizeof(chunk));
	ret = dfs_sync_open(fs, final, O_WRONLY | DFS_O_TEMP, 0600, &f);
	if (ret < 0)
		return 0;
	for (int i = 0; i < 10 && ret == 0; i++)
		ret = dfs_sync_append(f, chunk, sizeof(chunk), NULL);
	if (ret == 0)
		ret = dfs_sync_commit(f, NULL);
	if (ret == 0) {
		CHECK_EQ_INT(dfs_sync_close(f), 0);
		return 1;
	}
	CHECK(ret == -ENOSPC || ret == -EIO);
	if (how == 0)
		CHECK_EQ_INT(dfs_sync_rollback(f), 0);
	if (how <= 1)
		CHECK_EQ_INT(dfs_sync_close(f), 0);
	return 0;
}

static void test_failed_temp_leaves_nothing(void)
{
	char dir[512], final[600];
	int committed = 0, failed = 0;

	fst_path(dir, sizeof(dir), "mail");
	REQUIRE(mkdir(dir, 0700) == 0);
	for (int run = 0; run < 90; run++) {
		struct dfs_settings set = { .max_workers = 2,
					    .random_seed = (uint64_t)run + 1 };
		struct dfs *fs = fst_new(run % 2 ? "randomfail:enospc:5%:write/posix"
					 : "randomfail:eio:4%/posix", &set);
		struct stat st;
		int ok;

		snprintf(final, sizeof(final), "%s/msg%d", dir, run);
		ok = write_one(fs, final, run % 3);
		dfs_free(fs);
		committed += ok;
		failed += !ok;
		/* committed: all of it under its name; else no trace */
		if (ok) {
			CHECK(stat(final, &st) == 0 && st.st_size == 10000);
		} else {
			CHECK(stat(final, &st) < 0 && errno == ENOENT);
		}
		CHECK_EQ_INT(fst_count_entries(dir, ".temp."), 0);
		CHECK_EQ_INT(fst_count_entries(dir, ""), committed);
	}
	fprintf(stderr, "   %d committed, %d failed and left nothing\n",
		committed, failed);
	CHECK(committed > 5 && failed > 5);   /* both paths were taken */
}

int main(void)
{
	fst_setup();
	RUN(test_all_or_nothing);
	RUN(test_fractions);
	RUN(test_failed_temp_leaves_nothing);
	return fst_teardown();
}
