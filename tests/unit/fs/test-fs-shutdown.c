/* test-fs-shutdown.c - dfs_free with requests queued, waiting on handles
 * and running: each completes or is cancelled exactly once, callbacks
 * that submit during the shutdown are answered too, files left open are
 * closed and uncommitted temp files removed.  Leaks show under ASan. */
#include <stdatomic.h>

#include "fs-test.h"

#define HANDLES 4
#define READS 300
#define N (READS + 50 + 20 + 20 + 2)

static struct dfs *fs;
static atomic_int follow_submitted;
static struct fst_slot follow_slots[N];

/* A callback that submits a stat; during the shutdown that one is
 * cancelled, but still answered once. */
static void follow_cb(void *ctx, const struct dfs_result *res)
{
	struct fst_slot *s = ctx;
	int i = atomic_fetch_add(&follow_submitted, 1);

	fst_cb(s, res);
	dfs_stat(fs, fst_dir, fst_cb, &follow_slots[i]);
}

static void test_free_in_flight(void)
{
	struct dfs_settings set = { .max_workers = 4 };
	struct dfs_file *files[HANDLES], *temp, *late;
	static struct fst_slot s[N];
	static char bufs[READS][32];
	struct fst_tally t;
	char path[512], dir[512];
	int fds_before = fst_open_fds(), i = 0, ok = 0, cancelled = 0;

	fst_tally_init(&t);
	fst_slots_init(s, N, &t);
	fst_slots_init(follow_slots, N, &t);
	fs = fst_new("delay:10ms/posix", &set);
	for (int h = 0; h < HANDLES; h++)
		REQUIRE(dfs_sync_open(fs, fst_path(path, sizeof(path), "f%d", h),
				      O_RDONLY, 0, &files[h]) == 0);
	REQUIRE(dfs_sync_open(fs, fst_path(dir, sizeof(dir), "out"),
			      O_WRONLY | DFS_O_TEMP, 0600, &temp) == 0);
	/* reads in the pool, some announcing a follow-up */
	for (int r = 0; r < READS; r++, i++)
		dfs_pread(files[r % HANDLES], bufs[r], sizeof(bufs[r]), 0,
			  r % 10 ? fst_cb : follow_cb, &s[i]);
	for (int r = 0; r < 50; r++, i++)
		dfs_stat(fs, fst_dir, fst_cb, &s[i]);
	/* appends waiting on their handle, one after the other */
	for (int r = 0; r < 20; r++, i++)
		dfs_append(temp, "0123456789", 10, fst_cb, &s[i]);
	/* reads waiting for an open that has not run */
	late = dfs_open(fs, fst_path(path, sizeof(path), "f0"), O_RDONLY, 0,
			fst_cb, &s[i++]);
	for (int r = 0; r < 20; r++, i++)
		dfs_pread(late, bufs[r], 8, 0, fst_cb, &s[i]);
	dfs_close(late, fst_cb, &s[i++]);
	REQUIRE(i == N);
	REQUIRE(fst_wait(&t, 1, 30));  /* something is surely running */
	dfs_free(fs);   /* handles files[], temp: left open on purpose */

	CHECK_EQ_INT(fst_slots_bad(s, N), 0);
	CHECK_EQ_INT(fst_slots_bad(follow_slots, follow_submitted),  0);
	for (int j = 0; j < N; j++) {
		CHECK(s[j].err == 0 || s[j].err == -ECANCELED);
		ok += s[j].err == 0;
		cancelled += s[j].err == -ECANCELED;
	}
	for (int j = 0; j < follow_submitted; j++)
		CHECK(follow_slots[j].err == 0 ||
		      follow_slots[j].err == -ECANCELED);
	fprintf(stderr, "   %d done, %d cancelled, %d follow-ups\n", ok,
		cancelled, (int)follow_submitted);
	CHECK(ok >= 1);
	CHECK(cancelled > N / 2);
	CHECK_EQ_INT(t.done, N + follow_submitted);
	/* every descriptor closed, the uncommitted temp file gone */
	CHECK_EQ_INT(fst_open_fds(), fds_before);
	CHECK_EQ_INT(fst_count_entries(fst_dir, ".temp."), 0);
	CHECK_EQ_INT(fst_count_entries(fst_dir, "out"), 0);
	fst_tally_destroy(&t);
}

/* Nothing in flight: open handles are closed, temp files removed. */
static void test_free_idle(void)
{
	int fds_before = fst_open_fds();
	struct dfs_file *f;
	char path[512];

	fs = fst_new("posix", NULL);
	for (int h = 0; h < HANDLES; h++)
		REQUIRE(dfs_sync_open(fs, fst_path(path, sizeof(path), "f%d", h),
				      O_RDONLY, 0, &f) == 0);
	REQUIRE(dfs_sync_open(fs, fst_path(path, sizeof(path), "idle"),
			      O_RDWR | DFS_O_TEMP, 0600, &f) == 0);
	CHECK_EQ_INT(dfs_sync_append(f, "x", 1, NULL), 0);
	CHECK_EQ_INT(fst_count_entries(fst_dir, ".temp."), 1);
	CHECK(fst_open_fds() > fds_before);
	dfs_free(fs);
	CHECK_EQ_INT(fst_open_fds(), fds_before);
	CHECK_EQ_INT(fst_count_entries(fst_dir, ".temp."), 0);
	CHECK_EQ_INT(fst_count_entries(fst_dir, "idle"), 0);
	dfs_free(NULL);   /* allowed, like free(NULL) */
}

/* Many times in a row, short: races between the shutdown and workers
 * that are just starting or timing out. */
static void test_free_repeatedly(void)
{
	for (int round = 0; round < 50; round++) {
		struct dfs_settings set = { .max_workers = 8, .idle_ms = 1 };
		struct fst_tally t;
		struct fst_slot s[40];

		fst_tally_init(&t);
		fst_slots_init(s, 40, &t);
		fs = fst_new(round % 2 ? "posix" : "delay:200us/posix", &set);
		for (int i = 0; i < 40; i++)
			dfs_stat(fs, fst_dir, fst_cb, &s[i]);
		dfs_free(fs);
		CHECK_EQ_INT(fst_slots_bad(s, 40), 0);
		fst_tally_destroy(&t);
	}
}

int main(void)
{
	fst_setup();
	fst_make_files(HANDLES, 100);
	RUN(test_free_in_flight);
	RUN(test_free_idle);
	RUN(test_free_repeatedly);
	return fst_teardown();
}
