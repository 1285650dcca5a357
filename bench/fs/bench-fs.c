/* bench-fs.c - throughput of small reads through the async fs layer at a
 * given concurrency: `bench-fs CONFIG CONCURRENCY READS DIR`.  Keeps
 * CONCURRENCY preads of 4 KiB in flight over 64 files until READS
 * completed; prints reads per second. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbox/fs.h"

#define NFILES 64

struct bench {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dfs_file *files[NFILES];
	long submitted, completed, target;
	char buf[NFILES][4096];
	unsigned int next;
};

static void submit_one(struct bench *b);

static void read_done(void *ctx, const struct dfs_result *res)
{
	struct bench *b = ctx;

	if (res->err < 0) {
		fprintf(stderr, "read failed: %d\n", res->err);
		exit(1);
	}
	pthread_mutex_lock(&b->lock);
	b->completed++;
	if (b->submitted < b->target)
		submit_one(b);
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* b->lock held */
static void submit_one(struct bench *b)
{
	unsigned int i = b->next++ % NFILES;

	b->submitted++;
	dfs_pread(b->files[i], b->buf[i], sizeof(b->buf[i]), 0, read_done, b);
}

int main(int argc, char **argv)
{
	struct dfs_settings set = { .max_workers = 128 };
	struct bench b = { .lock = PTHREAD_MUTEX_INITIALIZER,
			   .cond = PTHREAD_COND_INITIALIZER };
	struct timespec t0, t1;
	char err[256], path[4096];
	struct dfs *fs;
	long conc;

	if (argc != 5) {
		fprintf(stderr, "usage: bench-fs CONFIG CONCURRENCY READS DIR\n");
		return 2;
	}
	conc = atol(argv[2]);
	b.target = atol(argv[3]);
	if (dfs_new(argv[1], &set, &fs, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/f%d", argv[4], i);
		if (dfs_sync_open(fs, path, O_RDONLY, 0, &b.files[i]) < 0) {
			fprintf(stderr, "open %s failed\n", path);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&b.lock);
	for (long i = 0; i < conc && b.submitted < b.target; i++)
		submit_one(&b);
	while (b.completed < b.target)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f\n", (double)b.target / ((double)(t1.tv_sec - t0.tv_sec) +
					     (double)(t1.tv_nsec - t0.tv_nsec) / 1e9));
	for (int i = 0; i < NFILES; i++)
		dfs_sync_close(b.files[i]);
	dfs_free(fs);
	return 0;
}
