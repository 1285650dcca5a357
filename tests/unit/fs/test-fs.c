/* test-fs.c - the async fs layer: concurrency under latency, fairness,
 * fault injection, ordering, cancellation, shutdown, pool size. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dbox/fs.h"

static char tmpdir[256];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_files(int n, size_t size)
{
	char path[512], *buf = malloc(size);

	REQUIRE(buf != NULL);
	for (int i = 0; i < n; i++) {
		memset(buf, 'a' + i % 26, size);
		snprintf(path, sizeof(path), "%s/f%d", tmpdir, i);
		FILE *f = fopen(path, "w");

		REQUIRE(f != NULL);
		fwrite(buf, 1, size, f);
		fclose(f);
	}
	free(buf);
}

static struct dfs *new_fs(const char *config, unsigned int max_workers)
{
	struct dfs_settings set = { .max_workers = max_workers,
				    .random_seed = 12345 };
	struct dfs *fs;
	char err[256];

	REQUIRE(dfs_new(config, &set, &fs, err, sizeof(err)) == 0);
	return fs;
}

/* A counter that callbacks bump and a test waits on (bounded). */
struct done {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int count, errors;
	double last;
};

static void done_init(struct done *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
}

static void done_cb(void *ctx, const struct dfs_result *res)
{
	struct done *d = ctx;

	pthread_mutex_lock(&d->lock);
	d->count++;
	if (res->err < 0)
		d->errors++;
	d->last = now();
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static bool done_wait(struct done *d, int count, double timeout)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)timeout;
	pthread_mutex_lock(&d->lock);
	while (d->count < count &&
	       pthread_cond_timedwait(&d->cond, &d->lock, &until) == 0)
		;
	ok = d->count >= count;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static void done_destroy(struct done *d)
{
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
}

/* ---------------------------------------------------------------- tests */

static void test_config(void)
{
	static const char *const good[] = {
		NULL, "", "posix", "delay:5ms/posix", "delay:250us/posix",
		"delay:1s/posix", "randomfail:eio:1%/posix",
		"randomfail:enospc:5%:write/posix",
		"randomfail:eio:0.5%:read/delay:1ms/posix",
		"delay:1ms/randomfail:eacces:100%:meta/posix",
	};
	static const char *const bad[] = {
		"nfs", "delay:5ms", "delay/posix", "delay:5/posix",
		"delay:-1ms/posix", "delay:xms/posix", "randomfail:eio/posix",
		"randomfail:eio:1/posix", "randomfail:eio:101%/posix",
		"randomfail:ebogus:1%/posix", "randomfail:eio:1%:disk/posix",
		"posix/posix", "posix/delay:1ms", "posix:x", "delay:1ms//posix",
		"/posix", "posix/", "posix trailing",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err[0] = '\0';
		int ret = dfs_config_check(good[i], err, sizeof(err));

		if (ret != 0)
			fprintf(stderr, "good %s: %s\n", good[i], err);
		CHECK_EQ_INT(ret, 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(dfs_config_check(bad[i], err, sizeof(err)), -EINVAL);
		if (err[0] == '\0')
			fprintf(stderr, "no message for %s\n", bad[i]);
		CHECK(err[0] != '\0');
	}
	CHECK_EQ_INT(dfs_config_check("nfs/posix", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "nfs") != NULL);
}

struct slow_read {
	struct dfs_file *f;
	char buf[4096];
	struct done *d;
};

static double read_all(struct dfs *fs, int n, double *stat_done)
{
	struct slow_read *r = calloc((size_t)n, sizeof(*r));
	struct done d, ds;
	char path[512];
	double t0 = now(), elapsed;

	done_init(&d);
	done_init(&ds);
	REQUIRE(r != NULL);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%d", tmpdir, i);
		r[i].f = dfs_open(fs, path, O_RDONLY, 0, NULL, NULL);
	}
	if (stat_done != NULL) {
		/* the files are open: what follows are 64 queued reads */
		for (int i = 0; i < n; i++)
			REQUIRE(dfs_sync_fstat(r[i].f, &(struct stat){ 0 }) == 0);
		t0 = now();
	}
	for (int i = 0; i < n; i++)
		dfs_pread(r[i].f, r[i].buf, sizeof(r[i].buf), 0, done_cb, &d);
	if (stat_done != NULL) {
		/* submitted behind all the slow reads */
		dfs_stat(fs, tmpdir, done_cb, &ds);
		REQUIRE(done_wait(&ds, 1, 30));
		*stat_done = ds.last - t0;
	}
	REQUIRE(done_wait(&d, n, 60));
	CHECK_EQ_INT(d.errors, 0);
	elapsed = d.last - t0;  /* the closes below are not part of it */
	for (int i = 0; i < n; i++) {
		CHECK(r[i].buf[0] == 'a' + i % 26);
		dfs_close(r[i].f, NULL, NULL);
	}
	free(r);
	done_destroy(&d);
	done_destroy(&ds);
	return elapsed;
}

static void test_parallel_reads_under_delay(void)
{
	struct dfs *fs = new_fs("delay:20ms/posix", 64);
	double single, all, stat_at;

	make_files(64, 4096);
	single = read_all(fs, 1, NULL);
	all = read_all(fs, 64, NULL);
	fprintf(stderr, "   1 read %.3fs, 64 reads %.3fs\n", single, all);
	CHECK(single >= 0.02);
	CHECK(all < 64 * single / 4);
	dfs_free(fs);

	/* a stat queued behind 64 slow reads that fill every regular worker
	 * (8 here) still completes at once, on the reserve */
	fs = new_fs("delay:20ms/posix", 8);
	all = read_all(fs, 64, &stat_at);
	fprintf(stderr, "   stat after %.3fs, the reads after %.3fs\n", stat_at,
		all);
	CHECK(stat_at < all / 2);
	CHECK(stat_at < 0.1);
	dfs_free(fs);
}

static void test_randomfail(void)
{
	struct dfs *fs = new_fs("randomfail:eio:100%/posix", 4);
	struct dfs_file *f;
	struct stat st;
	char path[512], buf[16];
	size_t n;
	int fails = 0;

	make_files(4, 100);
	snprintf(path, sizeof(path), "%s/f0", tmpdir);
	CHECK_EQ_INT(dfs_sync_open(fs, path, O_RDONLY, 0, &f), -EIO);
	CHECK_EQ_INT(dfs_sync_stat(fs, path, &st), -EIO);
	dfs_free(fs);

	fs = new_fs("randomfail:eio:0%/posix", 4);
	REQUIRE(dfs_sync_open(fs, path, O_RDONLY, 0, &f) == 0);
	for (int i = 0; i < 200; i++)
		CHECK_EQ_INT(dfs_sync_pread(f, buf, 10, 0, &n), 0);
	dfs_sync_close(f);
	dfs_free(fs);

	/* 30%: every injected failure reaches the caller as an error, and
	 * what did not fail read correctly */
	fs = new_fs("randomfail:eio:30%:read/posix", 4);
	for (int i = 0; i < 100 && dfs_sync_open(fs, path, O_RDONLY, 0, &f) < 0;
	     i++)
		;  /* the open is a read too: it may fail like the rest */
	for (int i = 0; i < 1000; i++) {
		memset(buf, 0, sizeof(buf));
		int ret = dfs_sync_pread(f, buf, 10, 0, &n);

		if (ret < 0) {
			CHECK_EQ_INT(ret, -EIO);
			fails++;
		} else {
			CHECK(n == 10 && buf[0] == 'a');
		}
	}
	dfs_sync_close(f);
	fprintf(stderr, "   %d of 1000 reads failed\n", fails);
	CHECK(fails > 200 && fails < 400);
	{
		struct dfs_stats s;

		dfs_get_stats(fs, &s);
		CHECK(s.failed >= (uint64_t)fails);
	}
	dfs_free(fs);
}

/* A temp file written until a failure is rolled back: nothing remains. */
static void test_failed_temp_file_rolls_back(void)
{
	char path[512], cmd[600];
	int leftovers = 0;

	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	mkdir(path, 0700);
	for (int run = 0; run < 50; run++) {
		struct dfs *fs = new_fs("randomfail:enospc:20%:write/posix", 2);
		struct dfs_file *f;
		char data[1000];
		int ret;

		memset(data, 'x', sizeof(data));
		snprintf(path, sizeof(path), "%s/sub/final%d", tmpdir, run);
		ret = dfs_sync_open(fs, path, O_WRONLY | DFS_O_TEMP, 0600, &f);
		if (ret < 0) {
			CHECK_EQ_INT(ret, -ENOSPC);
			dfs_free(fs);
			continue;
		}
		for (int i = 0; ret == 0 && i < 20; i++)
			ret = dfs_sync_append(f, data, sizeof(data), NULL);
		if (ret == 0) {
			CHECK_EQ_INT(dfs_sync_commit(f, NULL), 0);
			CHECK(access(path, F_OK) == 0);
		} else {
			CHECK_EQ_INT(ret, -ENOSPC);
			CHECK_EQ_INT(dfs_sync_rollback(f), 0);
			CHECK(access(path, F_OK) < 0);
		}
		dfs_sync_close(f);
		dfs_free(fs);
	}
	/* no .temp.* file survived, committed or not */
	snprintf(cmd, sizeof(cmd), "ls -A %s/sub | grep -c '^\\.temp' || true",
		 tmpdir);
	FILE *p = popen(cmd, "r");

	REQUIRE(p != NULL);
	REQUIRE(fscanf(p, "%d", &leftovers) == 1);
	pclose(p);
	CHECK_EQ_INT(leftovers, 0);
}

struct order_ctx {
	pthread_mutex_t lock;
	off_t offsets[256];
	int count;
	int errs[256];
};

static void order_cb(void *ctx, const struct dfs_result *res)
{
	struct order_ctx *o = ctx;

	pthread_mutex_lock(&o->lock);
	o->offsets[o->count] = res->offset;
	o->errs[o->count++] = res->err;
	pthread_mutex_unlock(&o->lock);
}

static void test_ordering(void)
{
	struct dfs *fs = new_fs("delay:1ms/posix", 32);
	struct order_ctx o = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char path[512], want[200], got[200];
	struct dfs_file *f;
	struct done d;
	size_t n;

	/* appends submitted before the open completed, in order */
	snprintf(path, sizeof(path), "%s/ordered", tmpdir);
	f = dfs_open(fs, path, O_RDWR | O_CREAT | O_TRUNC, 0600, NULL, NULL);
	for (int i = 0; i < 100; i++) {
		want[i * 2] = (char)('A' + i % 26);
		want[i * 2 + 1] = (char)('a' + i % 26);
		dfs_append(f, want + i * 2, 2, order_cb, &o);
	}
	CHECK_EQ_INT(dfs_sync_pread(f, got, sizeof(got), 0, &n), 0);
	CHECK_EQ_INT(n, 200);
	CHECK(memcmp(got, want, 200) == 0);
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(o.offsets[i], i * 2);
	dfs_sync_close(f);

	/* a failed open fails what was queued behind it */
	done_init(&d);
	snprintf(path, sizeof(path), "%s/no/such/dir/file", tmpdir);
	f = dfs_open(fs, path, O_RDONLY, 0, done_cb, &d);
	o.count = 0;
	for (int i = 0; i < 5; i++)
		dfs_pread(f, got, 10, 0, order_cb, &o);
	dfs_close(f, done_cb, &d);
	REQUIRE(done_wait(&d, 2, 30));
	CHECK_EQ_INT(d.errors, 1);   /* the open; close of it succeeds */
	CHECK_EQ_INT(o.count, 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(o.errs[i], -ENOENT);
	done_destroy(&d);
	dfs_free(fs);
}

/* ------------------------------------------------------- stress (TSan) */

struct stress {
	struct dfs *fs;
	atomic_int callbacks, submitted, cancelled_ok;
	int seed;
};

static void stress_cb(void *ctx, const struct dfs_result *res)
{
	struct stress *s = ctx;

	(void)res;
	atomic_fetch_add(&s->callbacks, 1);
}

struct stress_thread {
	struct stress *s;
	int id;
};

static void *stress_main(void *arg)
{
	struct stress_thread *t = arg;
	struct stress *s = t->s;
	char path[512];
	unsigned int r = (unsigned int)t->id * 7919u + 1;

	snprintf(path, sizeof(path), "%s/f%d", tmpdir, t->id % 8);
	for (int round = 0; round < 50; round++) {
		struct dfs_file *f = dfs_open(s->fs, path, O_RDONLY, 0,
					      stress_cb, s);
		dfs_req_id ids[20];

		atomic_fetch_add(&s->submitted, 1);
		for (int i = 0; i < 20; i++) {
			r = r * 1103515245u + 12345u;
			switch (r % 4) {
			case 0:
				ids[i] = dfs_stat(s->fs, path, stress_cb, s);
				break;
			case 1:
				ids[i] = dfs_fstat(f, stress_cb, s);
				break;
			default:
				ids[i] = dfs_pread(f, NULL, 0, 0, stress_cb, s);
				break;
			}
			atomic_fetch_add(&s->submitted, 1);
		}
		for (int i = 0; i < 20; i += 3) {
			if (dfs_cancel(s->fs, ids[i]))
				atomic_fetch_add(&s->cancelled_ok, 1);
		}
		dfs_close(f, stress_cb, s);
		atomic_fetch_add(&s->submitted, 1);
	}
	return NULL;
}

static void test_stress(void)
{
	struct stress s = { .fs = new_fs("posix", 8) };
	struct stress_thread t[6];
	pthread_t th[6];

	make_files(8, 100);
	for (int i = 0; i < 6; i++) {
		t[i] = (struct stress_thread){ &s, i };
		pthread_create(&th[i], NULL, stress_main, &t[i]);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	dfs_free(s.fs);  /* waits for every request */
	CHECK_EQ_INT(atomic_load(&s.callbacks), atomic_load(&s.submitted));
	CHECK_EQ_INT(atomic_load(&s.submitted), 6 * 50 * 22);
	fprintf(stderr, "   %d requests, %d cancelled\n",
		atomic_load(&s.submitted), atomic_load(&s.cancelled_ok));
}

/* dfs_free with requests queued and running: each completes once. */
static void test_shutdown_in_flight(void)
{
	struct dfs *fs = new_fs("delay:10ms/posix", 4);
	struct done d;
	char path[512], buf[8][64];
	struct dfs_file *f;

	done_init(&d);
	make_files(1, 100);
	snprintf(path, sizeof(path), "%s/f0", tmpdir);
	f = dfs_open(fs, path, O_RDONLY, 0, done_cb, &d);
	for (int i = 0; i < 200; i++)
		dfs_pread(f, buf[i % 8], 10, 0, done_cb, &d);
	for (int i = 0; i < 50; i++)
		dfs_stat(fs, path, done_cb, &d);
	dfs_free(fs);      /* f is closed by it */
	CHECK_EQ_INT(d.count, 251);
	CHECK(d.errors > 0);   /* most were cancelled */
	done_destroy(&d);
}

static void test_pool_grows_and_shrinks(void)
{
	struct dfs_settings set = { .max_workers = 16, .min_workers = 1,
				    .idle_ms = 200 };
	struct dfs_stats st;
	struct dfs *fs;
	char err[128];
	double deadline;

	REQUIRE(dfs_new("delay:20ms/posix", &set, &fs, err, sizeof(err)) == 0);
	make_files(32, 100);
	read_all(fs, 32, NULL);
	dfs_get_stats(fs, &st);
	fprintf(stderr, "   peak %u workers\n", st.workers_peak);
	CHECK(st.workers_peak >= 12 && st.workers_peak <= 16 + 4);
	deadline = now() + 10;
	do {
		dfs_get_stats(fs, &st);
		if (st.workers <= 1)
			break;
		usleep(20000);  /* polling a condition with a deadline */
	} while (now() < deadline);
	CHECK_EQ_INT(st.workers, 1);
	dfs_free(fs);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dfs-test.XXXXXX");
	REQUIRE(mkdtemp(tmpdir) != NULL);
#define MAYBE(fn) do { if (only == NULL || strcmp(only, #fn) == 0) RUN(fn); } while (0)
	MAYBE(test_config);
	MAYBE(test_parallel_reads_under_delay);
	MAYBE(test_randomfail);
	MAYBE(test_failed_temp_file_rolls_back);
	MAYBE(test_ordering);
	MAYBE(test_stress);
	MAYBE(test_shutdown_in_flight);
	MAYBE(test_pool_grows_and_shrinks);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return CHECK_DONE();
}
