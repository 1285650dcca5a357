/* test-fs-pool.c - the worker pool: it grows toward max_workers under load
 * and back to min_workers after idle_ms, also while a trickle of requests
 * keeps a few workers busy; a blocking wrapper inside a callback does not
 * deadlock a one-worker pool; cancellation answers at once. */
#include "fs-test.h"

#define NFILES 64

static struct dfs_file *files[NFILES];
static char bufs[NFILES][64];

/* Handles wrapped from descriptors: opening them takes no worker, so the
 * pool's size reflects the reads alone. */
static void open_all(struct dfs *fs, int n)
{
	char path[512];

	for (int i = 0; i < n; i++) {
		int fd = open(fst_path(path, sizeof(path), "f%d", i), O_RDONLY);

		REQUIRE(fd >= 0);
		files[i] = dfs_file_from_fd(fs, fd, path);
		REQUIRE(files[i] != NULL);
	}
}

static void close_all(int n)
{
	struct fst_tally t;
	struct fst_slot s[NFILES];

	fst_tally_init(&t);
	fst_slots_init(s, n, &t);
	for (int i = 0; i < n; i++)
		dfs_close(files[i], fst_cb, &s[i]);
	REQUIRE(fst_wait(&t, n, 30));
	CHECK_EQ_INT(t.errors, 0);
	fst_tally_destroy(&t);
}

static void read_burst(struct dfs *fs, int n)
{
	struct fst_tally t;
	struct fst_slot s[NFILES];

	(void)fs;
	fst_tally_init(&t);
	fst_slots_init(s, n, &t);
	for (int i = 0; i < n; i++)
		dfs_pread(files[i], bufs[i], sizeof(bufs[i]), 0, fst_cb, &s[i]);
	REQUIRE(fst_wait(&t, n, 60));
	CHECK_EQ_INT(t.errors, 0);
	fst_tally_destroy(&t);
}

static void test_grow_and_shrink(void)
{
	struct dfs_settings set = { .min_workers = 1, .max_workers = 16,
				    .idle_ms = 300 };
	struct dfs *fs = fst_new("delay:20ms/posix", &set);
	struct dfs_stats st;
	double t0;
	unsigned int left;

	open_all(fs, NFILES);
	read_burst(fs, NFILES);
	t0 = fst_now();
	dfs_get_stats(fs, &st);
	fprintf(stderr, "   peak %u workers, %u right after the burst\n",
		st.workers_peak, st.workers);
	/* reads are bulk: regular workers only, no reserve */
	CHECK(st.workers_peak >= 12 && st.workers_peak <= 16);
	left = fst_poll_workers(fs, 1, 10);
	fprintf(stderr, "   back to %u after %.0f ms (idle_ms 300)\n", left,
		(fst_now() - t0) * 1e3);
	CHECK_EQ_INT(left, 1);
	CHECK(fst_now() - t0 >= 0.3 * 0.9);   /* not before idle_ms */
	close_all(NFILES);
	dfs_free(fs);
}

/* After a burst, one request at a time keeps coming: the most recently
 * idle worker takes each, the others reach idle_ms and go. */
static void test_shrink_under_trickle(void)
{
	struct dfs_settings set = { .min_workers = 1, .max_workers = 32,
				    .idle_ms = 200 };
	struct dfs *fs = fst_new("delay:1ms/posix", &set);
	struct dfs_stats st;
	struct stat sb;
	double start, end;

	open_all(fs, 32);
	read_burst(fs, 32);
	dfs_get_stats(fs, &st);
	CHECK(st.workers >= 8);
	/* at least 1 s of trickle (5 x idle_ms); on a loaded machine an
	 * idle worker may need longer to be scheduled and go, so the
	 * trickle goes on (bounded) until they have */
	start = fst_now();
	end = start + 20.0;
	do {
		REQUIRE(dfs_sync_stat(fs, fst_dir, &sb) == 0);
		dfs_get_stats(fs, &st);
	} while (fst_now() < end &&
		 (fst_now() < start + 1.0 || st.workers > 3));
	fprintf(stderr, "   %u workers after %.1f s of one request at a "
		"time\n", st.workers, fst_now() - start);
	/* one runs the request, one may still be finishing the last */
	CHECK(st.workers <= 3);
	close_all(32);
	dfs_free(fs);
}

static void test_min_workers_kept(void)
{
	struct dfs_settings set = { .min_workers = 3, .max_workers = 8,
				    .idle_ms = 50 };
	struct dfs *fs = fst_new("delay:5ms/posix", &set);
	struct dfs_stats st;

	dfs_get_stats(fs, &st);
	CHECK_EQ_INT(st.workers, 3);
	open_all(fs, 16);
	read_burst(fs, 16);
	dfs_get_stats(fs, &st);
	CHECK(st.workers_peak >= 6);
	CHECK_EQ_INT(fst_poll_workers(fs, 3, 10), 3);
	close_all(16);
	dfs_free(fs);
}

/* ------------------------------------------------------ sync in callback */

struct nested {
	struct dfs *fs;
	struct fst_tally *t;
	int stat_err, open_err, read_err, close_err;
	size_t n;
};

/* Blocking wrappers on a worker of a pool of one: the pool must lend
 * another worker instead of waiting for itself. */
static void nested_cb(void *ctx, const struct dfs_result *res)
{
	struct nested *x = ctx;
	struct dfs_file *f = NULL;
	struct stat st;
	char path[512], buf[8];

	(void)res;
	x->stat_err = dfs_sync_stat(x->fs, fst_dir, &st);
	x->open_err = dfs_sync_open(x->fs, fst_path(path, sizeof(path), "f1"),
				    O_RDONLY, 0, &f);
	if (x->open_err == 0) {
		x->read_err = dfs_sync_pread(f, buf, sizeof(buf), 0, &x->n);
		x->close_err = dfs_sync_close(f);
	}
	pthread_mutex_lock(&x->t->lock);
	x->t->done++;
	pthread_cond_broadcast(&x->t->cond);
	pthread_mutex_unlock(&x->t->lock);
}

static void test_sync_inside_callback(void)
{
	struct dfs_settings set = { .min_workers = 1, .max_workers = 1 };
	struct dfs *fs = fst_new("delay:1ms/posix", &set);
	struct fst_tally t;
	struct nested x = { .fs = fs, .t = &t, .stat_err = 1, .open_err = 1,
			    .read_err = 1, .close_err = 1 };

	fst_tally_init(&t);
	dfs_stat(fs, fst_dir, nested_cb, &x);
	REQUIRE(fst_wait(&t, 1, 30));
	CHECK_EQ_INT(x.stat_err, 0);
	CHECK_EQ_INT(x.open_err, 0);
	CHECK_EQ_INT(x.read_err, 0);
	CHECK_EQ_INT(x.close_err, 0);
	CHECK_EQ_INT(x.n, 8);
	dfs_free(fs);
	fst_tally_destroy(&t);
}

/* ---------------------------------------------------------- reserve */

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int inside;         /* callbacks holding their worker */
	int left;           /* callbacks that went on */
	bool open;
};

/* Holds its worker until the gate opens (bounded, so a broken fs fails
 * the test instead of hanging it). */
static void gate_cb(void *ctx, const struct dfs_result *res)
{
	struct gate *g = ctx;
	struct timespec until;

	(void)res;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&g->lock);
	g->inside++;
	pthread_cond_broadcast(&g->cond);
	while (!g->open &&
	       pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0)
		;
	g->left++;
	pthread_mutex_unlock(&g->lock);
}

static bool gate_wait_inside(struct gate *g, int n)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&g->lock);
	while (g->inside < n &&
	       pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0)
		;
	pthread_mutex_unlock(&g->lock);
	return g->inside >= n;
}

/* Every regular worker is held (by callbacks of reads that block): a stat
 * and an open still complete, on the reserve; a read does not, until a
 * regular worker is free again. */
static void test_reserve_serves_short_ops(void)
{
	enum { MAXW = 4 };
	struct dfs_settings set = { .min_workers = 1, .max_workers = MAXW };
	struct dfs *fs = fst_new("posix", &set);
	struct gate g = { .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER };
	struct fst_tally t;
	struct fst_slot s[3];
	struct dfs_file *f = NULL;
	struct dfs_stats st;
	char path[512];

	open_all(fs, MAXW + 1);
	fst_tally_init(&t);
	fst_slots_init(s, 3, &t);
	for (int i = 0; i < MAXW; i++)
		dfs_pread(files[i], bufs[i], 8, 0, gate_cb, &g);
	REQUIRE(gate_wait_inside(&g, MAXW));
	dfs_stat(fs, fst_dir, fst_cb, &s[0]);
	f = dfs_open(fs, fst_path(path, sizeof(path), "f0"), O_RDONLY, 0,
		     fst_cb, &s[1]);
	dfs_pread(files[MAXW], bufs[MAXW], 8, 0, fst_cb, &s[2]);
	/* well within the gate's own time limit */
	REQUIRE(fst_wait(&t, 2, 20));
	pthread_mutex_lock(&g.lock);
	CHECK_EQ_INT(g.left, 0);        /* every regular worker still held */
	pthread_mutex_unlock(&g.lock);
	CHECK_EQ_INT(s[0].calls, 1);
	CHECK_EQ_INT(s[1].calls, 1);
	CHECK_EQ_INT(s[0].err, 0);
	CHECK_EQ_INT(s[1].err, 0);
	pthread_mutex_lock(&t.lock);
	CHECK_EQ_INT(s[2].calls, 0);    /* bulk: not on the reserve */
	pthread_mutex_unlock(&t.lock);
	dfs_get_stats(fs, &st);
	CHECK(st.workers > MAXW && st.workers <= MAXW + 4);
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	REQUIRE(fst_wait(&t, 3, 30));
	CHECK_EQ_INT(s[2].err, 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	close_all(MAXW + 1);
	dfs_free(fs);
	fst_tally_destroy(&t);
}

/* ---------------------------------------------------------- cancel */

static void test_cancel(void)
{
	enum { R = 20 };
	struct dfs_settings set = { .max_workers = 1 };
	struct dfs *fs = fst_new("delay:50ms/posix", &set);
	struct fst_tally t;
	struct fst_slot s[R + 1];
	dfs_req_id ids[R];
	struct dfs_stats st;
	int cancelled = 0;
	double t0;

	open_all(fs, 1);
	fst_tally_init(&t);
	fst_slots_init(s, R + 1, &t);
	t0 = fst_now();
	for (int i = 0; i < R; i++)
		ids[i] = dfs_pread(files[0], bufs[0], 8, 0, fst_cb, &s[i]);
	/* the last one, behind 19 x 50 ms, is answered at once */
	CHECK(dfs_cancel(fs, ids[R - 1]));
	CHECK(!dfs_cancel(fs, ids[R - 1]));    /* only once */
	CHECK(!dfs_cancel(fs, 0));
	CHECK(!dfs_cancel(fs, ids[R - 1] + 1000));
	REQUIRE(fst_wait(&t, 2, 30));
	CHECK_EQ_INT(s[R - 1].err, -ECANCELED);
	CHECK_EQ_INT(s[0].err, 0);
	/* it came long before its turn: even before the second read */
	CHECK(s[R - 1].seq <= 2);
	CHECK(s[R - 1].at - t0 < (R - 1) * 0.050 / 2);
	/* the first one is done: too late to cancel it */
	CHECK(!dfs_cancel(fs, ids[0]));
	for (int i = 2; i < R - 1; i++)
		cancelled += dfs_cancel(fs, ids[i]);
	REQUIRE(fst_wait(&t, R, 30));
	CHECK_EQ_INT(fst_slots_bad(s, R), 0);
	for (int i = 2; i < R - 1; i++)
		CHECK_EQ_INT(s[i].err, s[i].err == 0 ? 0 : -ECANCELED);
	dfs_get_stats(fs, &st);
	CHECK_EQ_INT(st.cancelled, 1 + cancelled);
	CHECK(cancelled >= (R - 3) / 2);
	/* a close is never cancelled */
	{
		dfs_req_id id = dfs_close(files[0], fst_cb, &s[R]);

		CHECK(!dfs_cancel(fs, id));
		REQUIRE(fst_wait(&t, R + 1, 30));
		CHECK_EQ_INT(s[R].err, 0);
	}
	dfs_free(fs);
	fst_tally_destroy(&t);
}

int main(void)
{
	fst_setup();
	fst_make_files(NFILES, 100);
	RUN(test_grow_and_shrink);
	RUN(test_shrink_under_trickle);
	RUN(test_min_workers_kept);
	RUN(test_sync_inside_callback);
	RUN(test_reserve_serves_short_ops);
	RUN(test_cancel);
	return fst_teardown();
}
