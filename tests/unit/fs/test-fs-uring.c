/* test-fs-uring.c - the io_uring backend: the same results as posix, reads
 * that wait in the kernel without holding a worker, wrappers on top of
 * it, and the fallback to posix where io_uring is refused. */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "fs-test.h"
#include "fs/dfs-build.h"

#define NFILES 64

/* Whether this kernel lets this process set up an io_uring. */
static bool kernel_has_uring(void)
{
	struct io_uring_params p;
	long fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

/* A pread on a pipe: io_uring reads it (waiting for data), posix refuses
 * it with ESPIPE.  That tells which backend really ran. */
static bool pipe_read_works(struct dfs *fs)
{
	int p[2];
	struct dfs_file *f;
	char buf[4];
	size_t n = 0;
	int ret;

	REQUIRE(pipe(p) == 0);
	REQUIRE(write(p[1], "ping", 4) == 4);
	f = dfs_file_from_fd(fs, p[0], "pipe");
	ret = dfs_sync_pread(f, buf, 4, 0, &n);
	CHECK(ret == 0 || ret == -ESPIPE);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	close(p[1]);
	return ret == 0 && n == 4 && memcmp(buf, "ping", 4) == 0;
}

static void test_active_here(void)
{
	struct dfs *fs = fst_new("uring", NULL);
	bool active = pipe_read_works(fs);

	fprintf(stderr, "   liburing %s, kernel io_uring %s, uring backend %s\n",
		DFS_HAVE_URING ? "built in" : "missing",
		kernel_has_uring() ? "available" : "refused",
		active ? "active" : "falling back to posix");
	CHECK(active == (DFS_HAVE_URING && kernel_has_uring()));
	dfs_free(fs);
}

/* Everything posix does, through uring: reads (whole, at the end, past
 * the end, large), positional writes, appends, fsync, temp commit. */
static void test_same_results(void)
{
	struct dfs *fs = fst_new("uring", NULL);
	size_t big = 3 * 1024 * 1024 + 17, n;
	char *data = malloc(big), *back = malloc(big), path[512], buf[64];
	struct dfs_file *f;
	struct stat st;
	off_t off;

	REQUIRE(data != NULL && back != NULL);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)(i * 7 + i / 4096);
	fst_path(path, sizeof(path), "big");
	REQUIRE(dfs_sync_open(fs, path, O_RDWR | DFS_O_TEMP, 0600, &f) == 0);
	CHECK_EQ_INT(dfs_sync_pwrite(f, data, big, 0), 0);
	CHECK_EQ_INT(dfs_sync_fsync(f), 0);
	CHECK_EQ_INT(dfs_sync_append(f, "tail", 4, &off), 0);
	CHECK_EQ_INT(off, big);
	CHECK_EQ_INT(dfs_sync_pread(f, back, big, 0, &n), 0);
	CHECK_EQ_INT(n, big);
	CHECK(memcmp(back, data, big) == 0);
	/* a read across the end stops there; past it reads nothing */
	CHECK_EQ_INT(dfs_sync_pread(f, buf, sizeof(buf), (off_t)big, &n), 0);
	CHECK_EQ_INT(n, 4);
	CHECK(memcmp(buf, "tail", 4) == 0);
	CHECK_EQ_INT(dfs_sync_pread(f, buf, sizeof(buf), (off_t)big + 100, &n),
		     0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(dfs_sync_commit(f, NULL), 0);
	CHECK_EQ_INT(dfs_sync_fstat(f, &st), 0);
	CHECK_EQ_INT(st.st_size, big + 4);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	CHECK(stat(path, &st) == 0 && st.st_size == (off_t)big + 4);
	CHECK_EQ_INT(fst_count_entries(fst_dir, ".temp."), 0);
	/* errors come back as from posix */
	f = dfs_file_from_fd(fs, open(path, O_RDONLY), path);
	CHECK_EQ_INT(dfs_sync_pwrite(f, "x", 1, 0), -EBADF);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	dfs_free(fs);
	free(data);
	free(back);
}

/* Many reads at once, under a delay: they overlap as with posix, and
 * every one reads its own file. */
static void test_concurrent_reads_with_delay(void)
{
	struct dfs_settings set = { .max_workers = 64 };
	struct dfs *fs = fst_new("delay:20ms/uring", &set);
	static char bufs[NFILES][100];
	struct dfs_file *files[NFILES];
	struct fst_tally tally;
	struct fst_slot s[NFILES];
	char path[512];
	double t0, took = 0;

	for (int i = 0; i < NFILES; i++) {
		int fd = open(fst_path(path, sizeof(path), "f%d", i), O_RDONLY);

		files[i] = dfs_file_from_fd(fs, fd, path);
	}
	/* best of 3, as in test-fs-latency.c */
	for (int attempt = 0; attempt < 3; attempt++) {
		double t;

		fst_tally_init(&tally);
		fst_slots_init(s, NFILES, &tally);
		memset(bufs, 0, sizeof(bufs));
		t0 = fst_now();
		for (int i = 0; i < NFILES; i++)
			dfs_pread(files[i], bufs[i], sizeof(bufs[i]), 0, fst_cb,
				  &s[i]);
		REQUIRE(fst_wait(&tally, NFILES, 30));
		t = fst_now() - t0;
		took = attempt == 0 || t < took ? t : took;
		CHECK_EQ_INT(tally.errors, 0);
		for (int i = 0; i < NFILES; i++) {
			CHECK_EQ_INT(s[i].n, 100);
			CHECK(bufs[i][0] == 'a' + i % 26 &&
			      bufs[i][99] == 'a' + i % 26);
		}
		fst_tally_destroy(&tally);
	}
	fprintf(stderr, "   %d reads through delay:20ms/uring: %.1f ms\n",
		NFILES, took * 1e3);
	CHECK(took >= 0.020);
	CHECK(took < NFILES * 0.020 / 4);
	for (int i = 0; i < NFILES; i++)
		dfs_close(files[i], NULL, NULL);
	dfs_free(fs);
}

/* Waits (bounded) until nothing is left to read in a pipe. */
static bool pipe_drained(int fd, double timeout)
{
	double end = fst_now() + timeout;
	int left = -1;

	while (ioctl(fd, FIONREAD, &left) == 0 && left > 0 && fst_now() < end)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	return left == 0;
}

/* Reads waiting in the kernel for data hold no worker: with one regular
 * worker, a file read queued behind eight pipe reads (bulk requests run in
 * order) completes while they still wait.  Then a read that gets only part
 * of its bytes is continued until it has all of them. */
static void test_waiting_reads_hold_no_worker(void)
{
	enum { R = 8 };
	struct dfs_settings set = { .min_workers = 1, .max_workers = 1 };
	struct dfs *fs = fst_new("uring", &set);
	struct fst_tally reads, other;
	struct fst_slot rs[R], os;
	struct dfs_file *f, *file;
	char buf[R][4], fbuf[10], path[512], all[R * 4];
	const char *text = "0123456789abcdefghijklmnopqrstuv";
	int p[2];

	if (!pipe_read_works(fs)) {
		fprintf(stderr, "   io_uring unavailable here: nothing to test\n");
		dfs_free(fs);
		return;
	}
	REQUIRE(pipe(p) == 0);
	f = dfs_file_from_fd(fs, p[0], "pipe");
	file = dfs_file_from_fd(fs, open(fst_path(path, sizeof(path), "f3"),
					 O_RDONLY), path);
	fst_tally_init(&reads);
	fst_tally_init(&other);
	fst_slots_init(rs, R, &reads);
	fst_slots_init(&os, 1, &other);
	for (int i = 0; i < R; i++)
		dfs_pread(f, buf[i], 4, 0, fst_cb, &rs[i]);
	dfs_pread(file, fbuf, sizeof(fbuf), 0, fst_cb, &os);
	REQUIRE(fst_wait(&other, 1, 30));
	CHECK_EQ_INT(os.err, 0);
	CHECK(os.n == 10 && fbuf[0] == 'd');
	pthread_mutex_lock(&reads.lock);
	CHECK_EQ_INT(reads.done, 0);    /* still waiting for data */
	pthread_mutex_unlock(&reads.lock);
	/* 3 bytes: some read gets less than it asked for and goes on; the
	 * rest is written once the kernel took those 3 from the pipe */
	REQUIRE(write(p[1], text, 3) == 3);
	CHECK(pipe_drained(p[0], 30));
	REQUIRE(write(p[1], text + 3, 29) == 29);
	REQUIRE(fst_wait(&reads, R, 30));
	CHECK_EQ_INT(reads.errors, 0);
	for (int i = 0; i < R; i++) {
		CHECK_EQ_INT(rs[i].n, 4);
		memcpy(all + i * 4, buf[i], 4);
	}
	/* every byte written was read once (in some order) */
	for (int i = 0; i < R * 4; i++)
		CHECK(memchr(all, text[i], sizeof(all)) != NULL);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	CHECK_EQ_INT(dfs_sync_close(file), 0);
	close(p[1]);
	fst_tally_destroy(&reads);
	fst_tally_destroy(&other);
	dfs_free(fs);
}

/* Wrappers over uring: injected failures are all seen, and nothing else
 * fails. */
static void test_randomfail_over_uring(void)
{
	enum { N = 2000 };
	struct dfs_settings set = { .max_workers = 8, .random_seed = 5 };
	struct dfs *fs = fst_new("randomfail:eio:30%/uring", &set);
	struct fst_slot *s = calloc(N, sizeof(*s));
	char (*bufs)[8] = calloc(N, 8), path[512];
	struct dfs_file *f;
	struct fst_tally t;
	struct dfs_stats st;
	int seen = 0;

	REQUIRE(s != NULL && bufs != NULL);
	f = dfs_file_from_fd(fs, open(fst_path(path, sizeof(path), "f2"),
				      O_RDONLY), path);
	fst_tally_init(&t);
	fst_slots_init(s, N, &t);
	for (int i = 0; i < N; i++)
		dfs_pread(f, bufs[i], 8, 0, fst_cb, &s[i]);
	REQUIRE(fst_wait(&t, N, 60));
	for (int i = 0; i < N; i++) {
		CHECK(s[i].err == 0 || s[i].err == -EIO);
		seen += s[i].err < 0;
		if (s[i].err == 0)
			CHECK(s[i].n == 8 && bufs[i][0] == 'c');
	}
	dfs_get_stats(fs, &st);
	CHECK_EQ_INT(st.injected, seen);
	CHECK_EQ_INT(st.failed, seen);
	CHECK(seen > N / 4 && seen < N * 35 / 100);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	dfs_free(fs);
	fst_tally_destroy(&t);
	free(s);
	free(bufs);
}

/* dfs_free while requests are in the ring and in the pool: each is
 * answered once. */
static void test_free_with_requests_in_ring(void)
{
	enum { N = 500 };
	struct dfs_settings set = { .max_workers = 4 };
	struct dfs *fs = fst_new("uring", &set);
	static struct fst_slot s[N];
	static char bufs[N][100];
	struct dfs_file *f;
	struct fst_tally t;
	char path[512];

	fst_tally_init(&t);
	fst_slots_init(s, N, &t);
	f = dfs_file_from_fd(fs, open(fst_path(path, sizeof(path), "f1"),
				      O_RDONLY), path);
	for (int i = 0; i < N; i++)
		dfs_pread(f, bufs[i], sizeof(bufs[i]), 0, fst_cb, &s[i]);
	dfs_free(fs);
	CHECK_EQ_INT(fst_slots_bad(s, N), 0);
	for (int i = 0; i < N; i++)
		CHECK(s[i].err == 0 || s[i].err == -ECANCELED);
	fst_tally_destroy(&t);
}

/* In a child that the kernel refuses io_uring to (seccomp): "uring"
 * still works, as posix.  Run before any thread exists. */
static void test_fallback_without_uring(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
	int status;
	pid_t pid = fork();

	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct dfs *fs;
		struct dfs_file *f;
		char path[512], buf[10];
		size_t n;

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
			_exit(3);
		if (kernel_has_uring())
			_exit(4);
		fs = fst_new("delay:1ms/uring", NULL);
		if (pipe_read_works(fs))
			_exit(5);     /* still io_uring: no fallback */
		if (dfs_sync_open(fs, fst_path(path, sizeof(path), "f0"),
				  O_RDONLY, 0, &f) != 0 ||
		    dfs_sync_pread(f, buf, sizeof(buf), 0, &n) != 0 || n != 10 ||
		    buf[0] != 'a' || dfs_sync_close(f) != 0)
			_exit(6);
		dfs_free(fs);
		_exit(check_failures == 0 ? 0 : 7);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "   child: status %d\n", status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
	fst_setup();
	fst_make_files(NFILES, 100);
	RUN(test_fallback_without_uring);
	RUN(test_active_here);
	RUN(test_same_results);
	RUN(test_concurrent_reads_with_delay);
	RUN(test_waiting_reads_hold_no_worker);
	RUN(test_randomfail_over_uring);
	RUN(test_free_with_requests_in_ring);
	return fst_teardown();
}
