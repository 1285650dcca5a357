/* test-invariants.c - the daemon's invariant asserts are on and hold
 * (issue 12): a request replied twice, or not at all by an entry point
 * that kept it, stops the daemon (fusefs/reply.c); so does a forget of
 * more lookups than the kernel had (fusefs/backing.c), and a function
 * that runs under a lock called without it (DBOXFS_ASSERT_LOCKED).  Each
 * violation runs in a child, which must die of SIGABRT; the lawful
 * sequences run here. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "backing.h"
#include "check.h"
#include "dboxfs.h"
#include "reply.h"

/* requests are compared, never read: any distinct pointers do */
static char req_a, req_b;
#define REQ_A ((fuse_req_t)(void *)&req_a)
#define REQ_B ((fuse_req_t)(void *)&req_b)

static bool aborts(void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	REQUIRE(pid >= 0);
	if (pid == 0) {
		/* the assert's message is expected: not in the test's log */
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDERR_FILENO);
		fn();
		_exit(0);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void replied_twice(void)
{
	reply_scope_begin(REQ_A);
	reply_counted(REQ_A);
	reply_counted(REQ_A);
	reply_scope_end(REQ_A);
}

static void never_replied(void)
{
	reply_scope_begin(REQ_A);
	reply_scope_end(REQ_A);
}

static void test_reply_once(void)
{
	CHECK(aborts(replied_twice));
	CHECK(aborts(never_replied));
	/* one reply; another request's reply (a flusher's waiter) is not
	 * this one's */
	reply_scope_begin(REQ_A);
	reply_counted(REQ_B);
	reply_counted(REQ_A);
	reply_scope_end(REQ_A);
	/* handed to the committer: replied there, or already (inline) */
	reply_scope_begin(REQ_A);
	reply_handed_off(REQ_A);
	reply_scope_end(REQ_A);
	reply_scope_begin(REQ_B);
	reply_handed_off(REQ_B);
	reply_counted(REQ_B);
	reply_scope_end(REQ_B);
	/* outside any entry point (the committer's thread): not counted */
	reply_counted(REQ_A);
	reply_counted(REQ_A);
}

static struct dboxfs fs = {
	.backing.lock = PTHREAD_MUTEX_INITIALIZER,
	.backing.files_fd = -1,
	.backing.spool_fd = -1,
};
static int dir_fd;
static uint64_t ino;

static void forget_too_many(void)
{
	backing_forget(&fs, ino, 2);
}

static void test_forget_count(void)
{
	char root[] = "/tmp/test-invariants.XXXXXX";
	struct binode *bi;
	struct stat st;
	int fd;

	REQUIRE(mkdtemp(root) != NULL);
	REQUIRE(backing_init(&fs, root) == 0);
	dir_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(dir_fd >= 0);
	fd = openat(dir_fd, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	REQUIRE(backing_lookup(&fs, dir_fd, "f", 1, AREA_FILES, &bi,
			       &st) == 0);
	ino = bi->ino;
	/* one lookup: a forget of two is a broken count */
	CHECK(aborts(forget_too_many));
	backing_forget(&fs, ino, 1);
	backing_shutdown(&fs);
	unlinkat(dir_fd, "f", 0);
	unlinkat(dir_fd, "files", AT_REMOVEDIR);
	unlinkat(dir_fd, "spool", AT_REMOVEDIR);
	close(dir_fd);
	CHECK(rmdir(root) == 0);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void unlocked(void)
{
	DBOXFS_ASSERT_LOCKED(&lock);
}

static void test_lock_held(void)
{
	CHECK(aborts(unlocked));
	pthread_mutex_lock(&lock);
	DBOXFS_ASSERT_LOCKED(&lock);
	pthread_mutex_unlock(&lock);
}

int main(void)
{
	RUN(test_reply_once);
	RUN(test_forget_count);
	RUN(test_lock_held);
	return CHECK_DONE();
}
