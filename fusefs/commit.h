/* commit.h - turning delivered files into messages, with group commit.
 *
 * A rename (or link) from tmp/ into new/ or cur/ becomes a commit job.  One
 * batch is committed at a time: a job that finds no commit running and
 * none queued is committed at once on the thread that made it; others
 * queue, and the committer thread takes every job queued at that moment
 * and commits them in one save transaction: one SQLite commit and one
 * round of parallel fsyncs for all of them (group commit), while every
 * message still is all or nothing.  If the batch fails, its jobs are
 * retried one by one so that one bad file cannot fail the others.  The reply to each request is sent
 * only after its message is durable in the dbox files and the index.
 *
 * The daemon sends no kernel cache invalidations: one sent for a
 * directory that a request waiting for the committer has locked in the
 * kernel (a rename) would wait for that lock forever, unkillably.
 */
#ifndef DBOXFS_COMMIT_H
#define DBOXFS_COMMIT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312   /* as dboxfs.h, which includes this */
#endif
#include <fuse_lowlevel.h>

#include "view.h"

struct dboxfs;

struct dbox_save_txn;

struct binode;

struct commit_job {
	fuse_req_t req;            /* replied by the committer; NULL: none */
	int fd;                    /* the file's bytes; closed by the committer */
	int64_t box;
	char base[DBOX_NAME_MAX + 1];
	uint32_t flags, keywords;
	bool in_new;
	bool new_info;             /* in new/ named BASE:2,FLAGS */
	uint32_t mode;             /* the file's st_mode; 0: the default */
	uint32_t resv_uid;         /* the uid it reserved (backing.h), 0 */
	/* committed at its close where it was listed already: the times of
	 * its directory stay (nothing changed in it for the client) */
	bool keep_dir_mtime;
	int64_t received, received_ns;
	/* after success: unlink src_name in src_dirfd (a rename), and tell
	 * the binode it is a message now */
	int src_dirfd;             /* -1: keep the source (a link) */
	char src_name[NAME_MAX + 1];
	uint64_t src_ino;          /* binode of the source, 0 if none */
	struct binode *src;        /* it, referenced while the job lives */
	bool reply_entry;          /* a link: reply with the new entry */
	/* what prepare.h wrote of it ahead, taken by the committer */
	struct dbox_save_txn *prepared;
	/* result */
	int ret;
	uint32_t uid;
	bool replaced;             /* a message of its name was expunged */
	struct commit_job *next;
};

/* Jobs taken into one transaction at the most. */
#define COMMIT_BATCH_MAX 512

/* In struct dboxfs: the queue of jobs and the committer thread. */
struct committer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct commit_job *head, **tail;
	bool stop;
	/* a batch is being committed (by the committer thread or inline
	 * by a submitter): one at a time, in queue order */
	bool busy;
	pthread_t thread;
	bool started;
	/* the batch being committed: the committer thread's, and
	 * commit_queued's (start-up, before the thread runs) */
	struct commit_job *batch[COMMIT_BATCH_MAX];
	struct commit_job *queued_batch[COMMIT_BATCH_MAX];
	/* a file's chmod/utimensat against its becoming a message: held
	 * by node_plain_setattr_of from its check to its change, and by the
	 * committer while the message takes over what was set meanwhile */
	pthread_mutex_t attr_lock;
};

int commit_start(struct dboxfs *fs);
/* Commits what is queued, in the calling thread: for start-up, before
 * commit_start. */
void commit_queued(struct dboxfs *fs);
void commit_stop(struct dboxfs *fs);
/* The commit job of the file now named src_name in src_dirfd (a backing
 * binode src_ino, 0: found from the file) as the message `name` in sub of
 * mailbox box; unlink_src: a rename (the source goes after the commit),
 * else a link.  The job holds the file open and a reference on its
 * binode. */
int commit_job_make(struct dboxfs *fs, int src_dirfd, const char *src_name,
		    uint64_t src_ino, int64_t box, enum view_sub sub,
		    const char *name, bool unlink_src,
		    struct commit_job **job_r);
/* Queues a job, or commits it on the calling thread when nothing is
 * queued or being committed (no hand-over to the committer and back: the
 * kernel serialises renames, so a delivery nearly always finds the
 * committer idle); either way the job is freed, its request answered. */
void commit_submit(struct dboxfs *fs, struct commit_job *job);

#endif
