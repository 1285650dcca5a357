/* fs-test.h - helpers shared by the tests of the async fs layer: a scratch
 * directory, test files, and per-request result slots whose callbacks
 * count how often they ran, with bounded waits for them. */
#ifndef FS_TEST_H
#define FS_TEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dbox/fs.h"

static char fst_dir[256];

static inline double fst_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int fst_rm_one(const char *path, const struct stat *st,
			     int type, struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;
	return remove(path);
}

static inline void fst_setup(void)
{
	snprintf(fst_dir, sizeof(fst_dir), "/tmp/dfs-test.XXXXXX");
	REQUIRE(mkdtemp(fst_dir) != NULL);
}

static inline int fst_teardown(void)
{
	nftw(fst_dir, fst_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return CHECK_DONE();
}

/* buf = fst_dir/<printf(fmt, ...)>; returns buf. */
static inline const char *fst_path(char *buf, size_t size, const char *fmt,
				   ...) __attribute__((format(printf, 3, 4)));
static inline const char *fst_path(char *buf, size_t size, const char *fmt,
				   ...)
{
	int n = snprintf(buf, size, "%s/", fst_dir);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + n, size - (size_t)n, fmt, ap);
	va_end(ap);
	return buf;
}

/* n files "f<i>" of `size` bytes, all 'a' + i % 26. */
static inline void fst_make_files(int n, size_t size)
{
	char path[512], *buf = malloc(size);

	REQUIRE(buf != NULL);
	for (int i = 0; i < n; i++) {
		FILE *f;

		memset(buf, 'a' + i % 26, size);
		f = fopen(fst_path(path, sizeof(path), "f%d", i), "w");
		REQUIRE(f != NULL);
		REQUIRE(fwrite(buf, 1, size, f) == size);
		fclose(f);
	}
	free(buf);
}

static inline struct dfs *fst_new(const char *config,
				  const struct dfs_settings *set)
{
	struct dfs *fs = NULL;
	char err[256] = "";
	int ret = dfs_new(config, set, &fs, err, sizeof(err));

	if (ret != 0)
		fprintf(stderr, "dfs_new(%s): %s\n", config, err);
	REQUIRE(ret == 0);
	return fs;
}

/* Entries of a directory whose names start with `prefix`. */
static inline int fst_count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	REQUIRE(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
		    strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static inline int fst_open_fds(void)
{
	return fst_count_entries("/proc/self/fd", "");
}

/* ------------------------------------------------------- result slots */

struct fst_tally {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, errors, seq;
	double last;            /* time of the latest completion */
};

struct fst_slot {
	struct fst_tally *t;
	int calls;              /* under t->lock, like the rest */
	int seq;                /* order of completion, from 1 */
	int err;
	ssize_t n;
	off_t offset;
	struct stat st;
	double at;
};

static inline void fst_tally_init(struct fst_tally *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
}

static inline void fst_tally_destroy(struct fst_tally *t)
{
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}

static inline void fst_slots_init(struct fst_slot *s, int n,
				  struct fst_tally *t)
{
	memset(s, 0, sizeof(*s) * (size_t)n);
	for (int i = 0; i < n; i++)
		s[i].t = t;
}

static inline void fst_cb(void *ctx, const struct dfs_result *res)
{
	struct fst_slot *s = ctx;
	struct fst_tally *t = s->t;

	pthread_mutex_lock(&t->lock);
	s->calls++;
	s->seq = ++t->seq;
	s->err = res->err;
	s->n = res->n;
	s->offset = res->offset;
	s->st = res->st;
	s->at = t->last = fst_now();
	t->done++;
	if (res->err < 0)
		t->errors++;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Waits until `count` callbacks ran, at most `timeout` seconds. */
static inline bool fst_wait(struct fst_tally *t, int count, double timeout)
{
	double end = fst_now() + timeout;
	bool ok;

	pthread_mutex_lock(&t->lock);
	while (t->done < count && fst_now() < end) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	ok = t->done >= count;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

/* Every slot's callback ran exactly once. */
static inline int fst_slots_bad(struct fst_slot *s, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&s[i].t->lock);
		if (s[i].calls != 1) {
			if (bad++ < 5)
				fprintf(stderr, "   slot %d: %d callbacks\n", i,
					s[i].calls);
		}
		pthread_mutex_unlock(&s[i].t->lock);
	}
	return bad;
}

/* Polls the number of workers (a condition, not a duration) until it is
 * at most `want` or `timeout` seconds passed; returns the last count. */
static inline unsigned int fst_poll_workers(struct dfs *fs, unsigned int want,
					    double timeout)
{
	double end = fst_now() + timeout;
	struct dfs_stats st;

	for (;;) {
		dfs_get_stats(fs, &st);
		if (st.workers <= want || fst_now() > end)
			return st.workers;
		nanosleep(&(struct timespec){ 0, 5 * 1000000 }, NULL);
	}
}

#endif
