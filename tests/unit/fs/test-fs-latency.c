/* test-fs-latency.c - under added latency, requests overlap: 64 reads of
 * 64 files cost about one read, and a stat or a close submitted behind 64
 * slow reads does not wait for them. */
#include "fs-test.h"

#define NFILES 64
#define DELAY 0.020

static struct dfs_file *files[NFILES];
static char bufs[NFILES][4096];

/* Opens (and later closes) all files at once, not one delay after the
 * other. */
static void open_all(struct dfs *fs)
{
	struct fst_tally t;
	struct fst_slot s[NFILES];
	char path[512];

	fst_tally_init(&t);
	fst_slots_init(s, NFILES, &t);
	for (int i = 0; i < NFILES; i++)
		files[i] = dfs_open(fs, fst_path(path, sizeof(path), "f%d", i),
				    O_RDONLY, 0, fst_cb, &s[i]);
	REQUIRE(fst_wait(&t, NFILES, 30));
	REQUIRE(t.errors == 0);
	fst_tally_destroy(&t);
}

static void close_all(void)
{
	struct fst_tally t;
	struct fst_slot s[NFILES];

	fst_tally_init(&t);
	fst_slots_init(s, NFILES, &t);
	for (int i = 0; i < NFILES; i++)
		dfs_close(files[i], fst_cb, &s[i]);
	REQUIRE(fst_wait(&t, NFILES, 30));
	CHECK_EQ_INT(t.errors, 0);
	fst_tally_destroy(&t);
}

static void check_data(int n)
{
	for (int i = 0; i < n; i++) {
		CHECK(bufs[i][0] == 'a' + i % 26);
		CHECK(bufs[i][sizeof(bufs[i]) - 1] == 'a' + i % 26);
	}
}

/* Submits n reads at once; returns when the last completed. */
static double read_n(int n)
{
	struct fst_tally t;
	struct fst_slot s[NFILES];
	double t0, took;

	fst_tally_init(&t);
	fst_slots_init(s, n, &t);
	memset(bufs, 0, sizeof(bufs));
	t0 = fst_now();
	for (int i = 0; i < n; i++)
		REQUIRE(dfs_pread(files[i], bufs[i], sizeof(bufs[i]), 0, fst_cb,
				  &s[i]) != 0);
	REQUIRE(fst_wait(&t, n, 30));
	took = t.last - t0;
	CHECK_EQ_INT(t.errors, 0);
	CHECK_EQ_INT(fst_slots_bad(s, n), 0);
	for (int i = 0; i < n; i++)
		CHECK_EQ_INT(s[i].n, sizeof(bufs[i]));
	check_data(n);
	fst_tally_destroy(&t);
	return took;
}

/* Timing on a loaded machine is noisy, so each measurement is the best of
 * a few attempts.  That cannot hide a fault: an implementation that
 * serialises the reads, or queues the stat behind them, fails every
 * attempt by a factor of several. */
#define ATTEMPTS 3

static void test_parallel_reads(void)
{
	struct dfs_settings set = { .max_workers = 64, .idle_ms = 10000 };
	struct dfs *fs = fst_new("delay:20ms/posix", &set);
	double single = 1e9, all = 1e9;

	open_all(fs);
	for (int i = 0; i < ATTEMPTS; i++) {
		double t1 = read_n(1), tn = read_n(NFILES);

		single = t1 < single ? t1 : single;
		all = tn < all ? tn : all;
	}
	fprintf(stderr, "   1 read %.1f ms, %d concurrent reads %.1f ms "
		"(best of %d)\n", single * 1e3, NFILES, all * 1e3, ATTEMPTS);
	CHECK(single >= DELAY);          /* the delay is really there */
	CHECK(all >= DELAY);
	CHECK(all < NFILES * single / 4);
	close_all();
	dfs_free(fs);
}

struct fairness {
	double reads;           /* when the last read completed */
	double other[4];        /* stat, fstat, close, open */
	int reads_before[4];    /* reads completed before each of those */
};

/* 64 slow reads, then a stat, an fstat and a close of another handle and
 * an open; when did each complete, and after how many of the reads? */
static void fairness_run(struct dfs *fs, struct fairness *r)
{
	struct fst_tally reads, other;
	struct fst_slot rs[NFILES], os[4];
	struct dfs_file *extra, *reopened;
	char path[512];
	double t0;

	REQUIRE(dfs_sync_open(fs, fst_path(path, sizeof(path), "f0"), O_RDONLY,
			      0, &extra) == 0);
	fst_tally_init(&reads);
	fst_tally_init(&other);
	fst_slots_init(rs, NFILES, &reads);
	fst_slots_init(os, 4, &other);
	t0 = fst_now();
	for (int i = 0; i < NFILES; i++)
		dfs_pread(files[i], bufs[i], sizeof(bufs[i]), 0, fst_cb, &rs[i]);
	dfs_stat(fs, fst_dir, fst_cb, &os[0]);
	dfs_fstat(extra, fst_cb, &os[1]);
	dfs_close(extra, fst_cb, &os[2]);
	reopened = dfs_open(fs, path, O_RDONLY, 0, fst_cb, &os[3]);
	REQUIRE(fst_wait(&other, 4, 30));
	REQUIRE(fst_wait(&reads, NFILES, 30));
	CHECK_EQ_INT(other.errors, 0);
	CHECK_EQ_INT(reads.errors, 0);
	check_data(NFILES);
	r->reads = reads.last - t0;
	for (int k = 0; k < 4; k++) {
		r->other[k] = os[k].at - t0;
		r->reads_before[k] = 0;
		for (int i = 0; i < NFILES; i++)
			r->reads_before[k] += rs[i].at < os[k].at;
	}
	CHECK_EQ_INT(dfs_sync_close(reopened), 0);
	fst_tally_destroy(&reads);
	fst_tally_destroy(&other);
}

static bool fair_enough(const struct fairness *r)
{
	/* the close waits for the fstat on its handle: two delays */
	static const double share[4] = { 1.0 / 3, 1.0 / 3, 1.0 / 2, 1.0 / 3 };

	for (int k = 0; k < 4; k++) {
		if (r->other[k] >= r->reads * share[k] ||
		    r->reads_before[k] >= NFILES / 2)
			return false;
	}
	return true;
}

/* With only 8 regular workers, 64 reads take 8 rounds of 20 ms; what is
 * submitted after them must not wait for those rounds. */
static void test_short_ops_not_behind_reads(void)
{
	static const char *const names[4] = { "stat", "fstat", "close", "open" };
	struct dfs_settings set = { .max_workers = 8, .idle_ms = 10000 };
	struct dfs *fs = fst_new("delay:20ms/posix", &set);
	struct fairness r;
	bool ok = false;

	open_all(fs);
	for (int attempt = 0; attempt < ATTEMPTS && !ok; attempt++) {
		fairness_run(fs, &r);
		fprintf(stderr, "   reads done after %.1f ms;", r.reads * 1e3);
		for (int k = 0; k < 4; k++)
			fprintf(stderr, " %s %.1f ms (%d reads before)",
				names[k], r.other[k] * 1e3, r.reads_before[k]);
		fprintf(stderr, "\n");
		CHECK(r.reads >= 8 * DELAY);   /* they did queue up */
		ok = fair_enough(&r);
	}
	CHECK(ok);
	close_all();
	dfs_free(fs);
}

int main(void)
{
	fst_setup();
	fst_make_files(NFILES, sizeof(bufs[0]));
	RUN(test_parallel_reads);
	RUN(test_short_ops_not_behind_reads);
	return fst_teardown();
}
