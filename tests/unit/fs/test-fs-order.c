/* test-fs-order.c - the order of requests on one handle: before and after
 * the open, appends in submission order, reads in parallel, ordered
 * requests as barriers, requests after a close; and the semantics of
 * temp files, commit, rollback and locks. */
#include "fs-test.h"

static struct dfs *new_fs(const char *config, unsigned int max_workers)
{
	struct dfs_settings set = { .max_workers = max_workers };

	return fst_new(config, &set);
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* 200 appends submitted right after the open, before it completed, land
 * in submission order and report their offsets. */
static void test_appends_in_order(void)
{
	enum { N = 200 };
	struct dfs *fs = new_fs("delay:1ms/posix", 32);
	struct fst_tally t;
	struct fst_slot open_slot, s[N];
	char path[512], want[N * 2], got[N * 2 + 10];
	struct dfs_file *f;
	size_t n;

	fst_tally_init(&t);
	fst_slots_init(&open_slot, 1, &t);
	fst_slots_init(s, N, &t);
	fst_path(path, sizeof(path), "appended");
	f = dfs_open(fs, path, O_RDWR | O_CREAT | O_TRUNC, 0600, fst_cb,
		     &open_slot);
	REQUIRE(f != NULL);
	for (int i = 0; i < N; i++) {
		want[i * 2] = (char)('A' + i % 26);
		want[i * 2 + 1] = (char)('a' + i % 26);
		REQUIRE(dfs_append(f, want + i * 2, 2, fst_cb, &s[i]) != 0);
	}
	REQUIRE(fst_wait(&t, N + 1, 30));
	CHECK_EQ_INT(t.errors, 0);
	CHECK(dfs_file_fd(f) >= 0);
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(s[i].offset, i * 2);
		CHECK_EQ_INT(s[i].n, 2);
	}
	CHECK_EQ_INT(dfs_sync_pread(f, got, sizeof(got), 0, &n), 0);
	CHECK_EQ_INT(n, N * 2);
	CHECK(memcmp(got, want, N * 2) == 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	fst_tally_destroy(&t);
	dfs_free(fs);
}

/* Reads and an fstat submitted before the open completed work. */
static void test_reads_before_open(void)
{
	struct dfs *fs = new_fs("delay:5ms/posix", 8);
	struct fst_tally t;
	struct fst_slot s[5];
	char path[512], buf[4][32];
	struct dfs_file *f;

	fst_tally_init(&t);
	fst_slots_init(s, 5, &t);
	f = dfs_open(fs, fst_path(path, sizeof(path), "f3"), O_RDONLY, 0,
		     NULL, NULL);
	for (int i = 0; i < 4; i++)
		dfs_pread(f, buf[i], sizeof(buf[i]), i * 10, fst_cb, &s[i]);
	dfs_fstat(f, fst_cb, &s[4]);
	REQUIRE(fst_wait(&t, 5, 30));
	CHECK_EQ_INT(t.errors, 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(s[i].n, 32);
		CHECK(buf[i][0] == 'd' && buf[i][31] == 'd');
	}
	CHECK_EQ_INT(s[4].st.st_size, 100);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	fst_tally_destroy(&t);
	dfs_free(fs);
}

/* Requests queued behind a failed open fail with its error; closing such
 * a handle succeeds. */
static void test_failed_open_fails_queue(void)
{
	struct dfs *fs = new_fs("delay:5ms/posix", 8);
	struct fst_tally t;
	struct fst_slot s[8];
	char path[512], buf[16];
	struct dfs_file *f;

	fst_tally_init(&t);
	fst_slots_init(s, 8, &t);
	f = dfs_open(fs, fst_path(path, sizeof(path), "no/such/file"),
		     O_RDWR, 0, fst_cb, &s[0]);
	CHECK_EQ_INT(dfs_file_fd(f), -1);   /* before or after, no fd */
	dfs_pread(f, buf, sizeof(buf), 0, fst_cb, &s[1]);
	dfs_append(f, "x", 1, fst_cb, &s[2]);
	dfs_fstat(f, fst_cb, &s[3]);
	dfs_commit(f, NULL, fst_cb, &s[4]);
	dfs_try_lock(f, fst_cb, &s[5]);
	dfs_pwrite(f, "y", 1, 0, fst_cb, &s[6]);
	dfs_close(f, fst_cb, &s[7]);
	REQUIRE(fst_wait(&t, 8, 30));
	CHECK_EQ_INT(fst_slots_bad(s, 8), 0);
	for (int i = 0; i < 7; i++)
		CHECK_EQ_INT(s[i].err, -ENOENT);
	CHECK_EQ_INT(s[7].err, 0);
	fst_tally_destroy(&t);

	/* the same through the blocking wrappers */
	CHECK_EQ_INT(dfs_sync_open(fs, path, O_RDONLY, 0, &f), -ENOENT);
	/* a handle wrapped from a bad descriptor fails like that */
	f = dfs_file_from_fd(fs, -1, "bad");
	CHECK_EQ_INT(dfs_sync_pread(f, buf, 1, 0, NULL), -EBADF);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	dfs_free(fs);
}

/* Reads on one handle overlap; an append waits for the reads before it
 * and the reads after it wait for the append (which the data they read
 * shows, whatever order the callbacks ran in). */
static void test_reads_parallel_ordered_barrier(void)
{
	enum { R = 16 };
	struct dfs *fs = new_fs("delay:20ms/posix", 64);
	struct fst_tally t;
	struct fst_slot before[R], app, after[R];
	char path[512], buf[2 * R][8];
	struct dfs_file *f;
	double t0, reads = 0;
	int fd;

	fst_path(path, sizeof(path), "barrier");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0 && write(fd, "12345678", 8) == 8);
	close(fd);
	REQUIRE(dfs_sync_open(fs, path, O_RDWR, 0, &f) == 0);
	fst_tally_init(&t);
	fst_slots_init(before, R, &t);
	fst_slots_init(&app, 1, &t);
	fst_slots_init(after, R, &t);
	/* best of 3: one at a time they would take 16 x 20 ms every time */
	for (int attempt = 0; attempt < 3; attempt++) {
		double took;

		t.done = 0;
		fst_slots_init(before, R, &t);
		t0 = fst_now();
		for (int i = 0; i < R; i++)
			dfs_pread(f, buf[i], 8, 0, fst_cb, &before[i]);
		REQUIRE(fst_wait(&t, R, 30));
		took = fst_now() - t0;
		reads = attempt == 0 || took < reads ? took : reads;
	}
	fprintf(stderr, "   %d reads on one handle: %.1f ms\n", R, reads * 1e3);
	CHECK(reads < R * 0.020 / 4);

	t.done = 0;
	fst_slots_init(before, R, &t);
	/* slow reads of where the append will write, the append, more */
	for (int i = 0; i < R; i++)
		dfs_pread(f, buf[i], 8, 8, fst_cb, &before[i]);
	dfs_append(f, "abcdefgh", 8, fst_cb, &app);
	for (int i = 0; i < R; i++)
		dfs_pread(f, buf[R + i], 8, 8, fst_cb, &after[i]);
	REQUIRE(fst_wait(&t, 2 * R + 1, 30));
	CHECK_EQ_INT(t.errors, 0);
	for (int i = 0; i < R; i++) {
		/* the reads before it ran before it: end of file */
		CHECK_EQ_INT(before[i].n, 0);
		/* the reads after it ran after it: its data */
		CHECK_EQ_INT(after[i].n, 8);
		CHECK(memcmp(buf[R + i], "abcdefgh", 8) == 0);
	}
	CHECK_EQ_INT(app.offset, 8);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	fst_tally_destroy(&t);
	dfs_free(fs);
}

/* append, truncate, append: the truncate sits between them. */
static void test_truncate_between_appends(void)
{
	struct dfs *fs = new_fs("delay:2ms/posix", 8);
	struct fst_tally t;
	struct fst_slot s[4];
	char path[512], buf[8] = "";
	struct dfs_file *f;

	fst_tally_init(&t);
	fst_slots_init(s, 4, &t);
	f = dfs_open(fs, fst_path(path, sizeof(path), "trunc"),
		     O_RDWR | O_CREAT | O_TRUNC, 0600, NULL, NULL);
	dfs_append(f, "abc", 3, fst_cb, &s[0]);
	dfs_truncate(f, 1, fst_cb, &s[1]);
	dfs_append(f, "x", 1, fst_cb, &s[2]);
	dfs_pread(f, buf, sizeof(buf), 0, fst_cb, &s[3]);
	REQUIRE(fst_wait(&t, 4, 30));
	CHECK_EQ_INT(t.errors, 0);
	CHECK_EQ_INT(s[2].offset, 1);
	CHECK_EQ_INT(s[3].n, 2);
	CHECK_STR(buf, "ax");
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	fst_tally_destroy(&t);
	dfs_free(fs);
}

/* A callback that holds its request, and so the handle, until the test
 * opens the gate: this keeps a closed handle valid for the test. */
struct gate {
	struct fst_slot *slot;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
};

static void gate_cb(void *ctx, const struct dfs_result *res)
{
	struct gate *g = ctx;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;   /* bounded: a broken fs fails, not hangs */
	pthread_mutex_lock(&g->lock);
	while (!g->open &&
	       pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0)
		;
	pthread_mutex_unlock(&g->lock);
	fst_cb(g->slot, res);
}

/* Requests submitted after a close fail with EBADF, whether the close
 * completed yet or not; every callback still runs once. */
static void test_after_close(void)
{
	struct dfs *fs = new_fs("delay:5ms/posix", 8);
	struct fst_tally t;
	struct fst_slot s[4];
	struct gate g = { .slot = &s[0], .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER };
	char path[512], buf[8];
	struct dfs_file *f;

	fst_tally_init(&t);
	fst_slots_init(s, 4, &t);
	REQUIRE(dfs_sync_open(fs, fst_path(path, sizeof(path), "f1"), O_RDONLY,
			      0, &f) == 0);
	dfs_pread(f, buf, sizeof(buf), 0, gate_cb, &g);
	dfs_close(f, fst_cb, &s[1]);
	CHECK_EQ_INT(dfs_file_fd(f), -1);   /* closing: no descriptor */
	dfs_pread(f, buf, sizeof(buf), 0, fst_cb, &s[2]);
	dfs_append(f, "x", 1, fst_cb, &s[3]);
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_signal(&g.cond);
	pthread_mutex_unlock(&g.lock);
	REQUIRE(fst_wait(&t, 4, 30));
	CHECK_EQ_INT(fst_slots_bad(s, 4), 0);
	CHECK_EQ_INT(s[0].err, 0);
	CHECK_EQ_INT(s[1].err, 0);
	CHECK_EQ_INT(s[2].err, -EBADF);
	CHECK_EQ_INT(s[3].err, -EBADF);
	fst_tally_destroy(&t);
	dfs_free(fs);
}

static void test_temp_commit(void)
{
	struct dfs *fs = new_fs("posix", 4);
	char dir[512], final[600], other[600], buf[16] = "";
	struct dfs_file *f;
	off_t off;
	int fd;

	fst_path(dir, sizeof(dir), "tmpdir");
	REQUIRE(mkdir(dir, 0700) == 0);
	snprintf(final, sizeof(final), "%s/final", dir);
	snprintf(other, sizeof(other), "%s/other", dir);

	/* while written it is a ".temp." file next to the final name */
	REQUIRE(dfs_sync_open(fs, final, O_WRONLY | DFS_O_TEMP, 0640, &f) == 0);
	CHECK_EQ_INT(dfs_sync_append(f, "hello ", 6, &off), 0);
	CHECK_EQ_INT(off, 0);
	CHECK_EQ_INT(dfs_sync_append(f, "world", 5, &off), 0);
	CHECK_EQ_INT(off, 6);
	CHECK_EQ_INT(fst_count_entries(dir, ".temp."), 1);
	CHECK_EQ_INT(file_size(final), -1);
	CHECK_EQ_INT(dfs_sync_commit(f, NULL), 0);
	CHECK_EQ_INT(fst_count_entries(dir, ".temp."), 0);
	CHECK_EQ_INT(file_size(final), 11);
	/* a committed temp file has nothing left to roll back */
	CHECK_EQ_INT(dfs_sync_rollback(f), 0);
	CHECK_EQ_INT(file_size(final), 11);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	fd = open(final, O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 11);
	CHECK_STR(buf, "hello world");
	close(fd);

	/* commit under another name */
	REQUIRE(dfs_sync_open(fs, final, O_RDWR | DFS_O_TEMP, 0640, &f) == 0);
	CHECK_EQ_INT(dfs_sync_pwrite(f, "abc", 3, 0), 0);
	CHECK_EQ_INT(dfs_sync_commit(f, other), 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	CHECK_EQ_INT(file_size(other), 3);
	CHECK_EQ_INT(file_size(final), 11);

	/* rolled back, or closed uncommitted: gone */
	REQUIRE(dfs_sync_open(fs, final, O_WRONLY | DFS_O_TEMP, 0640, &f) == 0);
	CHECK_EQ_INT(dfs_sync_append(f, "junk", 4, NULL), 0);
	CHECK_EQ_INT(dfs_sync_rollback(f), 0);
	CHECK_EQ_INT(fst_count_entries(dir, ".temp."), 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	REQUIRE(dfs_sync_open(fs, final, O_WRONLY | DFS_O_TEMP, 0640, &f) == 0);
	CHECK_EQ_INT(dfs_sync_append(f, "junk", 4, NULL), 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	CHECK_EQ_INT(fst_count_entries(dir, ""), 2);   /* final and other */
	CHECK_EQ_INT(file_size(final), 11);
	dfs_free(fs);
}

/* Without DFS_O_TEMP, rollback truncates to the size at open, or at the
 * last commit. */
static void test_rollback_plain(void)
{
	struct dfs *fs = new_fs("posix", 4);
	char path[512];
	struct dfs_file *f;

	fst_path(path, sizeof(path), "plain");
	REQUIRE(dfs_sync_open(fs, path, O_RDWR | O_CREAT, 0600, &f) == 0);
	CHECK_EQ_INT(dfs_sync_append(f, "hello", 5, NULL), 0);
	CHECK_EQ_INT(dfs_sync_rollback(f), 0);
	CHECK_EQ_INT(file_size(path), 0);
	CHECK_EQ_INT(dfs_sync_append(f, "hello", 5, NULL), 0);
	CHECK_EQ_INT(dfs_sync_commit(f, NULL), 0);
	CHECK_EQ_INT(dfs_sync_append(f, " world", 6, NULL), 0);
	CHECK_EQ_INT(file_size(path), 11);
	CHECK_EQ_INT(dfs_sync_rollback(f), 0);
	CHECK_EQ_INT(file_size(path), 5);
	CHECK_EQ_INT(dfs_sync_close(f), 0);

	REQUIRE(dfs_sync_open(fs, path, O_RDWR, 0, &f) == 0);
	CHECK_EQ_INT(dfs_sync_append(f, "!!!", 3, NULL), 0);
	CHECK_EQ_INT(dfs_sync_rollback(f), 0);
	CHECK_EQ_INT(file_size(path), 5);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	dfs_free(fs);
}

static void test_locks(void)
{
	struct dfs *fs = new_fs("posix", 4);
	struct dfs_file *a, *b;
	char path[512];

	fst_path(path, sizeof(path), "f2");
	REQUIRE(dfs_sync_open(fs, path, O_RDONLY, 0, &a) == 0);
	REQUIRE(dfs_sync_open(fs, path, O_RDONLY, 0, &b) == 0);
	CHECK_EQ_INT(dfs_sync_try_lock(a), 0);
	CHECK_EQ_INT(dfs_sync_try_lock(b), -EWOULDBLOCK);
	CHECK_EQ_INT(dfs_sync_unlock(a), 0);
	CHECK_EQ_INT(dfs_sync_try_lock(b), 0);
	CHECK_EQ_INT(dfs_sync_try_lock(a), -EWOULDBLOCK);
	/* closing releases the lock */
	CHECK_EQ_INT(dfs_sync_close(b), 0);
	CHECK_EQ_INT(dfs_sync_try_lock(a), 0);
	CHECK_EQ_INT(dfs_sync_close(a), 0);
	dfs_free(fs);
}

static void test_path_ops(void)
{
	struct dfs *fs = new_fs("posix", 4);
	char d[512], a[600], b[600];
	struct stat st;

	fst_path(d, sizeof(d), "paths");
	snprintf(a, sizeof(a), "%s/a", d);
	snprintf(b, sizeof(b), "%s/b", d);
	CHECK_EQ_INT(dfs_sync_mkdir(fs, d, 0700), 0);
	CHECK_EQ_INT(dfs_sync_mkdir(fs, d, 0700), -EEXIST);
	CHECK_EQ_INT(dfs_sync_stat(fs, d, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	fclose(fopen(a, "w"));
	CHECK_EQ_INT(dfs_sync_rename(fs, a, b), 0);
	CHECK_EQ_INT(dfs_sync_stat(fs, a, &st), -ENOENT);
	CHECK_EQ_INT(dfs_sync_fsync_dir(fs, d), 0);
	CHECK_EQ_INT(dfs_sync_unlink(fs, b), 0);
	CHECK_EQ_INT(dfs_sync_unlink(fs, b), -ENOENT);
	CHECK_EQ_INT(dfs_sync_fsync_dir(fs, b), -ENOENT);
	dfs_free(fs);
}

int main(void)
{
	fst_setup();
	fst_make_files(4, 100);
	RUN(test_appends_in_order);
	RUN(test_reads_before_open);
	RUN(test_failed_open_fails_queue);
	RUN(test_reads_parallel_ordered_barrier);
	RUN(test_truncate_between_appends);
	RUN(test_after_close);
	RUN(test_temp_commit);
	RUN(test_rollback_plain);
	RUN(test_locks);
	RUN(test_path_ops);
	return fst_teardown();
}
