/* kcache.h - the names the kernel caches, so that they can be cached for
 * hours and dropped exactly when they go wrong.
 *
 * A message's bytes never change, so names and attributes could stay in
 * the kernel's cache for good, but for changes the kernel cannot see: a
 * running Dovecot or dboxctl renames (flag changes) and expunges messages
 * and folders, and the daemon's own commits turn a pending file of cur/
 * into a message.  The kernel's dentries can only be dropped by name
 * (notify_inval_entry), and a name that changed cannot be computed from
 * the index any more, so every name handed out by lookup or readdirplus
 * is recorded here with the inode it led to, until the kernel forgets the
 * inode.  After a change, kcache_check() looks each recorded name of the
 * changed folders up again (a listed folder's rows a page at a time) and
 * invalidates those that lead elsewhere now,
 * from the follower thread (never from a request handler: the kernel
 * holds the directory's lock while it waits for a request).
 *
 * Memory grows with the inodes the kernel keeps (as passthrough_ll's
 * table does), not with the folder: a message's own name takes 16 bytes
 * (its inode and the flags its name shows; the BASE comes from the index
 * again), up to ~1,050,000 of them (18.3 MiB), any other name ~110 bytes,
 * up to 2^16; a name beyond that is not recorded and gets the short
 * timeout.
 */
#ifndef DBOXFS_KCACHE_H
#define DBOXFS_KCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dboxfs;
struct kc_msg;
struct kc_drop;
struct dbox_removed;

/* The compact table of messages' names is 64 tables by the hash's top
 * bits, each rehashed on its own: a rehash holds two copies of one of
 * them, not of all (at a million names two copies of all were 33 MiB for
 * a moment). */
#define KCACHE_SEG_BITS 6
#define KCACHE_SEGS (1u << KCACHE_SEG_BITS)

struct kc_seg {
	struct kc_msg *slots;
	size_t nslots, nlive, nused;  /* used: live and removed */
};

/* The recorded names; in struct dboxfs (fs->kcache), all zero but the
 * lock at start. */
struct kcache_state {
	pthread_mutex_t lock;           /* everything below */
	void *root;                     /* tsearch tree of other names */
	size_t count;                   /* entries in the tree */
	struct kc_drop *drops;          /* kcache_drop_later's queue */
	struct kc_seg segs[KCACHE_SEGS];  /* messages' names */
	bool checking;                  /* no rehash: a check walks the slots */
	/* during a check (follower thread only): the rows the store
	 * removed before it, by (mailbox_id, uid) */
	struct dbox_removed *removed;
	size_t nremoved;
};

/* Records that name in parent leads to ino, for one more kernel lookup
 * (a message's earlier name with other flags is queued for
 * kcache_drop_pending).
 * Returns the entry timeout to reply with: the long one if recorded (or
 * nothing can change it), else the short one. */
double kcache_add(struct dboxfs *fs, uint64_t parent, const char *name,
		  uint64_t ino);
/* The kernel dropped n lookups of ino (FORGET). */
void kcache_forget(struct dboxfs *fs, uint64_t ino, uint64_t n);
/* Looks up again every recorded name in the folders of boxes[0..n-1]
 * (n < 0: all) and in folder-level directories, and invalidates in the
 * kernel those that no longer lead to the same inode.  Follower thread
 * only.  Returns how many were invalidated. */
int kcache_check(struct dboxfs *fs, const int64_t *boxes, int n);
/* A name the mount itself gave a node that now stands for something
 * else: a message moved to another folder gets a new number there, while
 * the kernel keeps the old node for the new name, which only the moved
 * ring (moved_to) maps, and only for a while.  The name is dropped
 * from the kernel's cache by the next kcache_drop_pending, so that the
 * next lookup gets the message's own node.  Any thread. */
void kcache_drop_later(struct dboxfs *fs, uint64_t parent,
		       const char *name);
/* Sends the invalidations kcache_drop_later queued.  Follower thread
 * only (the kernel holds the directory's lock while the rename that
 * queued one is being answered). */
void kcache_drop_pending(struct dboxfs *fs);
/* At exit. */
void kcache_free_all(struct dboxfs *fs);

#endif
