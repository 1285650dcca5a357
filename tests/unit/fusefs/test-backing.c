/* test-backing.c - the table of backing inodes (fusefs/backing.c) under
 * concurrent lookups and forgets, on real files.
 *
 * A lookup of a file the table knows already must return that binode,
 * read while the table is locked: glibc's tdelete frees the tree node
 * of the successor of a key it deletes (its key moves into the deleted
 * key's node), so a node pointer read after the unlock may be freed
 * memory (ASan: heap-use-after-free) or another file's binode. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "backing.h"
#include "check.h"
#include "dboxfs.h"

#define LOOKERS 2
#define CHURNERS 2
#define CHURN_FILES 48
#define SECONDS 6

/* the daemon's state: only its table (fs->backing) is used here */
static struct dboxfs fs = {
	.backing.lock = PTHREAD_MUTEX_INITIALIZER,
	.backing.files_fd = -1,
	.backing.spool_fd = -1,
};
static int dir_fd;
static uint64_t held_ino;         /* the file every lookup below finds */
static atomic_bool stop;
static atomic_int wrong;          /* lookups that returned another binode */

static void make_file(const char *name)
{
	int fd = openat(dir_fd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	REQUIRE(fd >= 0);
	close(fd);
}

static void *lookup_held(void *arg)
{
	struct binode *bi;
	struct stat st;

	(void)arg;
	while (!stop) {
		REQUIRE(backing_lookup(&fs, dir_fd, "held", 1, AREA_FILES,
				       &bi, &st) == 0);
		if (bi->ino != held_ino || st.st_ino != held_ino)
			wrong++;
		backing_forget(&fs, held_ino, 1);
	}
	return NULL;
}

/* Files around the held one come and go: every forget deletes a key of
 * the tree, and some delete frees the held binode's tree node. */
static void *churn(void *arg)
{
	uint64_t inos[CHURN_FILES];
	char name[32];
	int t = (int)(intptr_t)arg;

	while (!stop) {
		for (int i = 0; i < CHURN_FILES; i++) {
			struct binode *bi;
			struct stat st;

			snprintf(name, sizeof(name), "c%d.%d", t, i);
			REQUIRE(backing_lookup(&fs, dir_fd, name, 1,
					       AREA_FILES, &bi, &st) == 0);
			inos[i] = bi->ino;
		}
		for (int i = 0; i < CHURN_FILES; i++)
			backing_forget(&fs, inos[i], 1);
	}
	return NULL;
}

static void test_lookup_during_forgets(void)
{
	char root[] = "/tmp/test-backing.XXXXXX", name[32];
	pthread_t lookers[LOOKERS], churners[CHURNERS];
	struct binode *held;
	struct stat st;
	struct timespec end;

	REQUIRE(mkdtemp(root) != NULL);
	REQUIRE(backing_init(&fs, root) == 0);
	dir_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(dir_fd >= 0);
	/* the held file's inode number falls among the churned ones' */
	for (int t = 0; t < CHURNERS; t++) {
		for (int i = 0; i < CHURN_FILES; i++) {
			snprintf(name, sizeof(name), "c%d.%d", t, i);
			make_file(name);
			if (t == 0 && i == CHURN_FILES / 2)
				make_file("held");
		}
	}
	REQUIRE(backing_lookup(&fs, dir_fd, "held", 1, AREA_FILES, &held,
			       &st) == 0);
	held_ino = held->ino;

	for (int t = 0; t < LOOKERS; t++)
		REQUIRE(pthread_create(&lookers[t], NULL, lookup_held,
				       NULL) == 0);
	for (int t = 0; t < CHURNERS; t++)
		REQUIRE(pthread_create(&churners[t], NULL, churn,
				       (void *)(intptr_t)t) == 0);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += SECONDS;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end,
			       NULL) == EINTR)
		;
	stop = true;
	for (int t = 0; t < LOOKERS; t++)
		pthread_join(lookers[t], NULL);
	for (int t = 0; t < CHURNERS; t++)
		pthread_join(churners[t], NULL);
	CHECK_EQ_INT(wrong, 0);

	backing_forget(&fs, held_ino, 1);
	backing_shutdown(&fs);
	for (int t = 0; t < CHURNERS; t++) {
		for (int i = 0; i < CHURN_FILES; i++) {
			snprintf(name, sizeof(name), "c%d.%d", t, i);
			unlinkat(dir_fd, name, 0);
		}
	}
	unlinkat(dir_fd, "held", 0);
	unlinkat(dir_fd, "files", AT_REMOVEDIR);
	unlinkat(dir_fd, "spool", AT_REMOVEDIR);
	close(dir_fd);
	CHECK(rmdir(root) == 0);
}

int main(void)
{
	RUN(test_lookup_during_forgets);
	return CHECK_DONE();
}
