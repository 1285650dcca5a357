/* dboxfs.h - state of the daemon: one struct dboxfs, the FUSE session's
 * userdata, which the entry points (ops.c) take with fuse_req_userdata()
 * and pass down as `struct dboxfs *fs`; the modules' state hangs off it.
 *
 * Lock order, for every lock of the daemon: each is a leaf.  The table
 * lock of backing.c (fs->backing), the recorded names' lock
 * (fs->kcache, kcache.c), the committer's queue lock (fs->commit,
 * commit.c), the flusher's lock (fs->flush, flush.c), the prepared
 * list's lock (fs->prepared, prepare.c), the open-handle list lock
 * (fs->handles, handles.c), the moved-message ring lock (fs->moved,
 * moved.c), the verified-message table's lock (fs->verified,
 * verified.c), the times lock (fs->dirtime, dirtime.c), the modes
 * seen (fs->dirmode, dirmode.c), the
 * hidden-mailbox lock (fs->folders, folders.c) and log_lock below are
 * held only around their own data: no other lock is taken, no libdbox or libfuse
 * function (no reply) is called while one is held.  libdbox's own locks
 * are below all of them (taken only inside libdbox calls).  The
 * follower's state (fs->follower, with its folder set) is its thread's
 * own and has no lock.
 */
#ifndef DBOXFS_H
#define DBOXFS_H

#define FUSE_USE_VERSION 312
#include <assert.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "backing.h"
#include "commit.h"
#include "dbox/store.h"
#include "dirmode.h"
#include "dirtime.h"
#include "flush.h"
#include "folders.h"
#include "follow.h"
#include "handles.h"
#include "kcache.h"
#include "moved.h"
#include "prepare.h"
#include "verified.h"

/* For functions that run "under" a lock (their comment says so): the
 * lock is held, by this thread as the callers' discipline has it (a
 * trylock of a held default mutex fails with EBUSY; of a free one it
 * succeeds, and the assert stops the daemon).  On in every build
 * (meson.build: b_ndebug=false). */
#define DBOXFS_ASSERT_LOCKED(m) assert(pthread_mutex_trylock(m) == EBUSY)
#include "view.h"

struct dboxfs {
	struct dbox_store *store;
	struct fuse_session *se;
	enum view_layout layout;
	bool readonly;
	double entry_timeout, attr_timeout, neg_timeout;
	/* entries kcache.c records and attributes: the follower invalidates
	 * them, so they can stay for hours (entry_timeout without it) */
	double cache_timeout;
	/* read-only mount: opens answer ENOSYS, so the kernel sends no OPEN
	 * or RELEASE and keeps every file's pages (fileio.c) */
	bool no_open;
	/* -o readdirplus_auto: the kernel's own READDIRPLUS choice (ops.c) */
	bool readdirplus_auto;
	uid_t uid;
	gid_t gid;
	mode_t file_mode;         /* messages: 0600/0644 as the store root */
	mode_t dir_mode;
	int64_t inbox_id;         /* 0 if the store has no INBOX */
	/* durability (flush.h): -o sync, -o commit=SECS */
	bool sync;
	double commit_interval;
	struct timespec started;

	pthread_mutex_t log_lock; /* protects the list below */
	uint64_t logged[256];     /* inodes whose corruption was logged */
	unsigned int logged_next;

	/* state of the modules (see the lock order above); no module keeps
	 * state in statics */
	struct moved_ring moved;        /* moved.c */
	struct fh_list handles;         /* handles.c */
	struct verified_cache verified; /* verified.c, for fileio.c */
	struct follower follower;       /* follow.c */
	struct prepare_list prepared;   /* prepare.c */
	struct committer commit;        /* commit.c */
	struct backing_table backing;   /* backing.c, backing-marks.c */
	struct flush_state flush;       /* flush.c */
	struct dirtime_state dirtime;   /* dirtime.c */
	struct dirmode_state dirmode;   /* dirmode.c */
	struct kcache_state kcache;     /* kcache.c */
	struct folders_state folders;   /* folders.c */
	/* the handle of every open dovecot-keywords file (fileio.c): it
	 * holds nothing, so all share it */
	struct fh kwfile_fh;
};

/* ops.c */
extern const struct fuse_lowlevel_ops dboxfs_ops;
/* The requests dboxfs_ops answers from memory (ops.c, a loop_quick_fn of
 * loop.h); ctx is the struct dboxfs. */
struct loop_req;
bool dboxfs_quick(void *ctx, const struct loop_req *r);

/* Logs a problem with one message once (not on every read of it). */
void dboxfs_log_once(struct dboxfs *fs, uint64_t ino, const char *msg);
/* -EBADMSG (corrupted file) is EIO to a reader; other errnos pass. */
int dboxfs_errno(int ret);

#endif
