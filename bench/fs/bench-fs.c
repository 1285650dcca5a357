/* bench-fs.c - throughput of small reads through the async fs layer at a
 * fixed concurrency:
 *
 *   bench-fs CONFIG CONCURRENCY READS DIR
 *
 * Keeps CONCURRENCY preads of 4 KiB in flight, spread over the 64 files
 * DIR/f0..f63, until READS have completed (each completion submits the
 * next one from its callback), checks every read, and prints reads per
 * second. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbox/fs.h"

#define NFILES 64
#define READ_SIZE 4096
#define MAX_CONC 1024

struct bench {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dfs_file *files[NFILES];
	long submitted, completed, target;
	unsigned int next;
	bool failed;
};

/* One in-flight read; reused for the next one when it completes. */
struct slot {
	struct bench *b;
	unsigned int file;
	char buf[READ_SIZE];
};

static void submit(struct slot *s);

static void read_done(void *ctx, const struct dfs_result *res)
{
	struct slot *s = ctx;
	struct bench *b = s->b;
	bool more;

	pthread_mutex_lock(&b->lock);
	if (res->err < 0 || res->n != READ_SIZE ||
	    s->buf[0] != (char)('a' + s->file % 26))
		b->failed = true;
	b->completed++;
	more = b->submitted < b->target && !b->failed;
	if (more)
		b->submitted++;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (more)
		submit(s);
}

static void submit(struct slot *s)
{
	struct bench *b = s->b;

	pthread_mutex_lock(&b->lock);
	s->file = b->next++ % NFILES;
	pthread_mutex_unlock(&b->lock);
	if (dfs_pread(b->files[s->file], s->buf, READ_SIZE, 0, read_done, s) == 0)
		abort();
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct dfs_settings set = { .max_workers = 64 };
	struct bench b = { .lock = PTHREAD_MUTEX_INITIALIZER,
			   .cond = PTHREAD_COND_INITIALIZER };
	struct slot *slots;
	char err[256], path[4096];
	struct dfs *fs;
	long conc;
	double t0, t1;

	if (argc != 5 || (conc = atol(argv[2])) < 1 || conc > MAX_CONC ||
	    (b.target = atol(argv[3])) < conc) {
		fprintf(stderr, "usage: bench-fs CONFIG CONCURRENCY(1-%d) READS"
			"(>= CONCURRENCY) DIR\n", MAX_CONC);
		return 2;
	}
	if (dfs_new(argv[1], &set, &fs, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench-fs: %s\n", err);
		return 1;
	}
	for (int i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/f%d", argv[4], i);
		if (dfs_sync_open(fs, path, O_RDONLY, 0, &b.files[i]) < 0) {
			fprintf(stderr, "bench-fs: cannot open %s\n", path);
			return 1;
		}
	}
	slots = calloc((size_t)conc, sizeof(*slots));
	if (slots == NULL)
		return 1;
	t0 = now();
	b.submitted = conc;
	for (long i = 0; i < conc; i++) {
		slots[i].b = &b;
		submit(&slots[i]);
	}
	pthread_mutex_lock(&b.lock);
	while (b.completed < b.submitted)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	t1 = now();
	if (b.failed) {
		fprintf(stderr, "bench-fs: a read failed or read wrong data\n");
		return 1;
	}
	printf("%.1f\n", (double)b.target / (t1 - t0));
	for (int i = 0; i < NFILES; i++)
		dfs_sync_close(b.files[i]);
	dfs_free(fs);
	free(slots);
	return 0;
}
