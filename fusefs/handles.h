/* handles.h - open file handles (fi->fh) and the list of them. */
#ifndef DBOXFS_HANDLES_H
#define DBOXFS_HANDLES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backing.h"

enum fh_type { FH_MSG = 1, FH_FD, FH_KWFILE, FH_DIR };

struct fh {
	enum fh_type type;
	int fd;                   /* FH_FD */
	bool wrote;
	/* FH_FD of a file created in cur/ or new/ under its final name:
	 * committed as a message when it is closed */
	bool commit_on_release;
	int64_t box;
	enum backing_area area;
	char name[DBOX_NAME_MAX + 48];
	uint64_t ino;
	struct fh *prev, *next;   /* list of open handles */
};

/* Every open handle is on a list, so that those the kernel never releases
 * (a lazy unmount with files open) are freed at exit.  In struct dboxfs. */
struct fh_list {
	pthread_mutex_t lock;
	struct fh *head;
};

struct dboxfs;

void fh_track(struct dboxfs *fs, struct fh *fh);
void fh_untrack(struct dboxfs *fs, struct fh *fh);
/* At exit: frees every handle left on the list; directory handles with
 * free_dir (readdir.c's, passed down by the entry point). */
void fh_free_all(struct dboxfs *fs, void (*free_dir)(struct fh *fh));

#endif
