/* test-fs-inline.c - sync_inline: a blocking wrapper's request runs on
 * the calling thread when its handle is idle (no hand-over to a worker),
 * and still waits its turn behind what is in flight on the handle. */
#include "fs-test.h"

/* The inode of /proc/thread-self/NAME: different for every thread, so a
 * request that opened or looked it up tells which thread ran it. */
static ino_t own_ino(const char *name)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/thread-self/%s", name);
	REQUIRE(stat(path, &st) == 0);
	return st.st_ino;
}

/* true if a stat and an open of the wrappers ran on this thread */
static void ran_here(bool inline_on, bool *stat_r, bool *open_r)
{
	struct dfs_settings set = { .sync_inline = inline_on };
	struct dfs *fs = fst_new("posix", &set);
	struct dfs_file *f;
	struct stat st;

	REQUIRE(dfs_sync_stat(fs, "/proc/thread-self/comm", &st) == 0);
	*stat_r = st.st_ino == own_ino("comm");
	REQUIRE(dfs_sync_open(fs, "/proc/thread-self/stat", O_RDONLY, 0,
			      &f) == 0);
	REQUIRE(dfs_sync_fstat(f, &st) == 0);
	*open_r = st.st_ino == own_ino("stat");
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	dfs_free(fs);
}

static void test_runs_on_the_caller(void)
{
	bool on_stat, on_open, off_stat, off_open;

	ran_here(true, &on_stat, &on_open);
	ran_here(false, &off_stat, &off_open);
	CHECK(on_stat);
	CHECK(on_open);
	/* the check itself: without the setting a worker runs them */
	CHECK(!off_stat);
	CHECK(!off_open);
}

/* An append still in flight (slow): a blocking read of the handle waits
 * for it and sees its bytes, instead of running at once beside it. */
static void test_waits_its_turn(void)
{
	struct dfs_settings set = { .sync_inline = true };
	struct dfs *fs = fst_new("delay:50ms/posix", &set);
	struct fst_tally t;
	struct fst_slot app;
	struct dfs_file *f;
	char path[512], buf[8] = "";
	size_t n = 0;

	fst_tally_init(&t);
	fst_slots_init(&app, 1, &t);
	fst_path(path, sizeof(path), "inline");
	REQUIRE(dfs_sync_open(fs, path, O_RDWR | O_CREAT | O_TRUNC, 0600,
			      &f) == 0);
	REQUIRE(dfs_append(f, "abcd", 4, fst_cb, &app) != 0);
	CHECK_EQ_INT(dfs_sync_pread(f, buf, sizeof(buf), 0, &n), 0);
	CHECK_EQ_INT(n, 4);
	CHECK(memcmp(buf, "abcd", 4) == 0);
	REQUIRE(fst_wait(&t, 1, 30));
	CHECK_EQ_INT(t.errors, 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	fst_tally_destroy(&t);
	dfs_free(fs);
}

/* An asynchronous request right after a blocking one runs on a worker as
 * before (the flag is the blocking wrapper's only). */
static void test_async_stays_async(void)
{
	struct dfs_settings set = { .sync_inline = true };
	struct dfs *fs = fst_new("posix", &set);
	struct fst_tally t;
	struct fst_slot s;
	struct stat st;

	fst_tally_init(&t);
	fst_slots_init(&s, 1, &t);
	REQUIRE(dfs_sync_stat(fs, "/proc/thread-self/comm", &st) == 0);
	REQUIRE(dfs_stat(fs, "/proc/thread-self/comm", fst_cb, &s) != 0);
	REQUIRE(fst_wait(&t, 1, 30));
	CHECK_EQ_INT(t.errors, 0);
	CHECK(s.st.st_ino != own_ino("comm"));
	fst_tally_destroy(&t);
	dfs_free(fs);
}

int main(void)
{
	fst_setup();
	RUN(test_runs_on_the_caller);
	RUN(test_waits_its_turn);
	RUN(test_async_stays_async);
	return fst_teardown();
}
