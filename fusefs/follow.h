/* follow.h - changes that reach the store by another path (a running
 * Dovecot, dboxctl) show on the mount within a second: a thread notices
 * them (inotify on Dovecot's index logs plus a periodic check) and drops
 * the kernel's cached attributes of the folders that changed, from a
 * thread that serves no request (maildir-view.md section 6). */
#ifndef DBOXFS_FOLLOW_H
#define DBOXFS_FOLLOW_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* The directories of the folder tree as the follower's last check saw
 * them, sorted by name (follow.c). */
struct follow_dir_set {
	struct follow_dir *e;
	size_t count, cap;
};

/* In struct dboxfs: the follower thread, and what its last check saw of
 * each mailbox and of the folder tree (the thread's own, so unlocked). */
struct follower {
	pthread_t thread;
	int stop_pipe[2];
	bool running;
	struct box_seen *seen;
	size_t seen_count, seen_cap;
	struct follow_dir_set dirs;
	bool dirs_loaded;
};

struct dboxfs;

int follow_start(struct dboxfs *fs);
void follow_stop(struct dboxfs *fs);

#endif
