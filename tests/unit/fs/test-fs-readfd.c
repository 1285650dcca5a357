/* test-fs-readfd.c - dfs_read_fd: a reader that moves the bytes itself
 * runs on a worker with the open descriptor, after the drivers. */
#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>

#include "fs-test.h"

struct sink {
	char buf[64];
	atomic_int runs;
	pthread_t thread;
};

static ssize_t sink_read(void *arg, int fd, size_t len, off_t off)
{
	struct sink *s = arg;
	ssize_t n = pread(fd, s->buf, len < sizeof(s->buf) ? len :
			  sizeof(s->buf), off);

	s->thread = pthread_self();
	atomic_fetch_add(&s->runs, 1);
	return n;
}

static void test_reader_runs_with_the_fd(void)
{
	struct dfs *fs = fst_new("delay:20ms/posix", NULL);
	struct fst_tally t;
	struct fst_slot slot;
	struct sink s = { .runs = 0 };
	struct dfs_file *f;
	char path[512];
	double t0;

	fst_make_files(2, 100);
	fst_tally_init(&t);
	fst_slots_init(&slot, 1, &t);
	/* submitted before the open completed: waits for it */
	f = dfs_open(fs, fst_path(path, sizeof(path), "f1"), O_RDONLY, 0, NULL,
		     NULL);
	t0 = fst_now();
	dfs_read_fd(f, 10, 5, sink_read, &s, fst_cb, &slot);
	REQUIRE(fst_wait(&t, 1, 10));
	CHECK_EQ_INT(slot.err, 0);
	CHECK_EQ_INT(slot.n, 10);
	CHECK(memcmp(s.buf, "bbbbbbbbbb", 10) == 0);
	CHECK_EQ_INT(atomic_load(&s.runs), 1);
	CHECK(!pthread_equal(s.thread, pthread_self()));
	CHECK(slot.at - t0 >= 0.02);   /* the delay driver applies */
	dfs_sync_close(f);
	dfs_free(fs);
	fst_tally_destroy(&t);
}

static void test_failure_before_the_reader(void)
{
	struct dfs *fs = fst_new("randomfail:eio:100%:read/posix", NULL);
	struct dfs_file *f = dfs_file_from_fd(fs, open(fst_path((char[512]){ 0 },
		512, "f0"), O_RDONLY), "f0");
	struct fst_tally t;
	struct fst_slot slot;
	struct sink s = { .runs = 0 };

	fst_tally_init(&t);
	fst_slots_init(&slot, 1, &t);
	dfs_read_fd(f, 10, 0, sink_read, &s, fst_cb, &slot);
	REQUIRE(fst_wait(&t, 1, 10));
	CHECK_EQ_INT(slot.err, -EIO);
	CHECK_EQ_INT(atomic_load(&s.runs), 0);   /* it never ran */
	dfs_sync_close(f);
	dfs_free(fs);
	fst_tally_destroy(&t);
}

int main(void)
{
	fst_setup();
	RUN(test_reader_runs_with_the_fd);
	RUN(test_failure_before_the_reader);
	return fst_teardown();
}
