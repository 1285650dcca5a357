/* backing.h - inodes backed by real files beside the store.
 *
 * Everything on the mount that is not a message, a folder or cur/new/tmp
 * is a real file or directory under the store's control directory
 * (maildir-view.md sections 3 and 5):
 *
 *   files/<mailbox id>/...        what clients keep in a folder (.notmuch/,
 *                                 .mbsyncstate, dovecot-uidlist, ...)
 *   spool/<mailbox id>/tmp/...    messages being delivered (tmp/)
 *   spool/<mailbox id>/cur|new/   files created directly in cur/ or new/
 *                                 that are not messages yet (cp, rsync)
 *
 * As in libfuse's passthrough_ll, every such inode the kernel knows holds
 * an O_PATH descriptor of its file, so renames and unlinks on the backing
 * tree need no path bookkeeping; the inode number is the backing file's,
 * tagged VK_PLAIN, and so stable across remounts.  The table is keyed by
 * inode number and protected by one mutex (a leaf lock: see dboxfs.h).
 *
 * A binode lives while the kernel knows it (nlookup) or a thread of ours
 * uses it (refs, taken by backing_get and dropped by backing_put), as
 * passthrough_hp's inodes do: a commit started at release, which no
 * request pins, holds a reference until it is done, so a FORGET that
 * comes meanwhile cannot free the node under it.
 */
#ifndef DBOXFS_BACKING_H
#define DBOXFS_BACKING_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "view.h"

struct dboxfs;

/* The table of binodes and the roots of the areas; in struct dboxfs
 * (fs->backing), files_fd and spool_fd -1 until backing_init. */
struct backing_table {
	pthread_mutex_t lock;    /* the table and area_fds */
	void *table;             /* tsearch tree of struct binode */
	/* how many binodes are keyed by a message's number (messages renamed
	 * into tmp/): written under lock, read without it */
	atomic_size_t msg_nodes;
	/* Area directories are opened once and kept: every lookup and create
	 * in tmp/ needs one, and mkdirat+openat per request showed in the
	 * delivery profile.  Callers get a dup they close. */
	void *area_fds;          /* tsearch tree of struct area_fd */
	char files_root[PATH_MAX], spool_root[PATH_MAX];
	int files_fd, spool_fd;
	/* a read-only mount: the trees are only read, never made */
	bool readonly;
	/* files_fd is a tree's own files/ that a takeover mount kept,
	 * keyed by its index's mailbox ids (backing_use_tree_files) */
	bool tree_ids;
	atomic_bool closed_warned;   /* the closed mark failed: logged */
};

/* Where a backing directory is, in the view. */
enum backing_area {
	AREA_FILES,   /* a folder's plain files (and dirs below them) */
	AREA_TMP,     /* tmp/ */
	AREA_CUR,     /* pending files in cur/ */
	AREA_NEW,     /* pending files in new/ */
};

struct binode {
	/* set at creation, then read-only */
	uint64_t ino;            /* the FUSE inode number */
	int fd;                  /* O_PATH */
	dev_t dev;
	ino_t backing_ino;
	int64_t box;             /* mailbox whose folder holds it */
	enum backing_area area;
	/* the uid it reserved for its message (see backing_resv_write),
	 * 0: none */
	int64_t resv_box;
	uint32_t resv_uid;
	atomic_bool closed_mark; /* carries the "closed" mark (see below) */
	/* under the table lock */
	uint64_t nlookup;        /* the kernel's lookups */
	unsigned int refs;       /* backing_get references */
	/* set once the file was committed as a message: the kernel may
	 * still use this inode for the new name until it drops it
	 * (backing_msg_set / backing_msg_of) */
	int64_t msg_box;
	uint32_t msg_uid;
	/* the st_ino stat shows when not ino (0): a delivered file whose
	 * message went back to tmp/ shows that file's number
	 * (backing_retarget_msg) */
	uint64_t stat_ino;
};

int backing_init(struct dboxfs *fs, const char *ctl_dir);
/* The same for a read-only mount: what exists is read, nothing is made
 * (an area that does not exist answers ENOENT). */
int backing_init_readonly(struct dboxfs *fs, const char *ctl_dir);
/* A read-only mount of a tree taken over: the plain files of folders
 * are the takeover mount's, in the tree's files_dir under the ids of
 * its index (dbox_store_tree_mailbox_id); 0 or -errno (none shown). */
int backing_use_tree_files(struct dboxfs *fs, const char *files_dir);
void backing_shutdown(struct dboxfs *fs);

/* Directory fd (O_PATH) for an area of a mailbox, created on demand; the
 * caller closes it. */
int backing_area_dir(struct dboxfs *fs, int64_t box, enum backing_area area,
		     int *fd_r);
/* Calls fn for every regular file in the spool areas (tmp/, and files
 * pending in cur/ and new/) of every mailbox; dirfd is the area's
 * directory, in which fn may unlink name.  For start-up, before the
 * session runs: nothing else may change the spool meanwhile. */
typedef void backing_walk_fn(void *ctx, int64_t box, enum backing_area area,
			     int dirfd, const char *name,
			     const struct stat *st);
int backing_spool_walk(struct dboxfs *fs, backing_walk_fn *fn, void *ctx);
/* Moves a file of a spool area into tmp/ of its mailbox, under its name or,
 * if tmp/ has that name, the first free "name.N". */
int backing_move_to_tmp(struct dboxfs *fs, int64_t box, int dirfd,
			const char *name);
/* The same, to tmp/ name `as` (or "as.N"). */
int backing_move_to_tmp_as(struct dboxfs *fs, int64_t box, int dirfd,
			   const char *name,
			   const char *as);

/* The "closed" mark of a file created in cur/ or new/ under its final
 * name (maildir-view.md section 3: committed at its last close).  The
 * close(2) returns only after the mark is on the file (an xattr holding
 * its size), while the commit follows the asynchronous release: a daemon
 * that dies in between finds the mark at the next start and commits the
 * file.  A write after the close drops the mark.  The size check keeps a
 * file whose bytes a power cut lost (ext4 keeps data before the size
 * that covers it) from being committed truncated. */
void backing_mark_closed(struct dboxfs *fs, uint64_t ino, int fd);
void backing_mark_drop(struct dboxfs *fs, uint64_t ino);
/* Whether the file open as fd carries the mark, for its current size. */
bool backing_marked_complete(int fd, const struct stat *st);
/* The "linked" mark of a tmp/ file that link() delivered (maildir-view.md
 * section 3): the file stays an ordinary file beside the message it
 * became, the client's until it unlinks it.  Set ("live") before the
 * commit; a clean stop turns it into "kept" (sweep_keep_linked), which
 * the start-up sweep leaves alone.  A live mark at start-up means the
 * daemon died between the link and the client's unlink: the file is a
 * leftover of that delivery, removed as one.  A rename's commit removes
 * the mark. */
int backing_mark_linked(struct binode *bi);
void backing_unmark_linked(int fd);
void backing_keep_linked(int fd);
bool backing_marked_kept(int fd);
/* The mtime (ns) of an area directory, 0 if it does not exist or saw
 * no change since it was made on demand; never creates it.  The view
 * derives the times of tmp/ and of folders from these (dirtime.h). */
int64_t backing_area_mtime(struct dboxfs *fs, int64_t box,
			   enum backing_area area);
/* lstat(2) of an area directory (never made): 0, or -errno. */
int backing_area_stat(struct dboxfs *fs, int64_t box, enum backing_area area,
		      struct stat *st);
/* O_PATH descriptor of an area directory if it is there (never made):
 * 0, or -errno (-ENOENT: none). */
int backing_area_peek(struct dboxfs *fs, int64_t box, enum backing_area area,
		      int *fd_r);
/* utimensat(2) of an area directory (made if missing). */
int backing_area_set_times(struct dboxfs *fs, int64_t box,
			   enum backing_area area,
			   const struct timespec tv[2]);
/* The uid a file created in cur/ or new/ reserved for the message it is
 * to become (dbox_mailbox_reserve_uid): the view shows that message's
 * inode number from the start, so the number never changes, as on a
 * local filesystem (maildir-view.md section 2).  Kept as an xattr of the
 * file, so that a remount or a new binode shows it too.  fd: a real
 * (not O_PATH) descriptor of the file. */
int backing_resv_write(int fd, int64_t box, uint32_t uid);
bool backing_resv_read(int fd, int64_t *box_r, uint32_t *uid_r);
/* The inode number the client sees for node ino: a reserved message's
 * number, or ino itself. */
uint64_t backing_shown_ino(struct dboxfs *fs, uint64_t ino);
/* The same for name in the area directory dirfd (O_PATH) that has no
 * binode (readdir), whose own number is ino. */
uint64_t backing_shown_ino_at(int dirfd, const char *name,
			      enum backing_area area, uint64_t ino);
/* A file that became a message where the client saw it (committed at
 * its close) leaves its area directory, which keeps its times, as the
 * client's directory does: save them before, restore them after.  (A
 * file another thread makes there at that very moment may lose its
 * change of the time.)  dirfd: O_PATH or real descriptor. */
bool backing_dir_times_save(int dirfd, struct timespec tv[2]);
void backing_dir_times_restore(int dirfd, const struct timespec tv[2]);
/* A message renamed into tmp/ becomes a file there that keeps the
 * message's inode number, as the file keeps its inode on a local
 * filesystem (the uid is never used again): the number is an xattr of
 * the file, and its binode is keyed by it (a VK_MSG number then stands
 * for a backing file: see backing_has_node).  backing_node_ino gives the
 * FUSE inode of the file open as fd (name NULL) or of `name` in the
 * directory fd. */
uint64_t backing_node_ino(int fd, const char *name, const struct stat *st);
int backing_set_node_ino(int fd, uint64_t ino);
/* A file delivered from tmp/ becomes a message with its own number. */
void backing_drop_node_ino(int fd);
/* Whether a binode has this number (a message's number: the file it
 * became in tmp/). */
bool backing_has_node(struct dboxfs *fs, uint64_t ino);
/* Whether any binode has a message's number: almost never, so the
 * message paths skip the lookups above while it is false. */
bool backing_any_msg_node(struct dboxfs *fs);
/* The binodes of tmp/ of mailbox tmp_box that answer for message (box,
 * uid) (files delivered as it, which the kernel may still use for its
 * name) become the file open as path_fd (O_PATH) that the message became
 * in tmp/, showing stat_ino; returns how many. */
int backing_retarget_msg(struct dboxfs *fs, int64_t box, uint32_t uid,
			 int64_t tmp_box,
			 int path_fd, uint64_t stat_ino);
/* A deleted mailbox's area directories are gone: forget them. */
void backing_forget_mailbox(struct dboxfs *fs, int64_t box);

/* Looks `name` up in the directory dirfd; returns the binode with one
 * more lookup reference (or -errno). */
int backing_lookup(struct dboxfs *fs, int dirfd, const char *name, int64_t box,
		   enum backing_area area, struct binode **bi_r,
		   struct stat *st_r);
/* The same for a file the caller has just created (O_CREAT | O_EXCL) and
 * marked with nothing but, in cur/ and new/, its reserved uid: it has no
 * number of a message renamed into tmp/ (INO) to read, nor, in tmp/ and
 * the plain areas, a reservation (two getxattr(2) calls less per
 * delivery into tmp/). */
int backing_lookup_created(struct dboxfs *fs, int dirfd, const char *name,
			   int64_t box, enum backing_area area,
			   struct binode **bi_r, struct stat *st_r);
/* The binode of inode ino with one more reference, NULL if none; every
 * non-NULL result is given back with backing_put. */
struct binode *backing_get(struct dboxfs *fs, uint64_t ino);
void backing_put(struct dboxfs *fs, struct binode *bi);   /* NULL: nothing */
void backing_forget(struct dboxfs *fs, uint64_t ino, uint64_t n);
/* The message a committed file became (false: not committed). */
bool backing_msg_of(struct dboxfs *fs, struct binode *bi, int64_t *box_r,
		    uint32_t *uid_r);
void backing_msg_set(struct dboxfs *fs, struct binode *bi, int64_t box,
		     uint32_t uid);

/* stat of the backing file, with st_ino set to the FUSE inode. */
int backing_stat(struct dboxfs *fs, struct binode *bi, struct stat *st);
/* open(2) of the backing file through /proc/self/fd. */
int backing_open(struct binode *bi, int flags);
/* The path /proc/self/fd/N of an O_PATH descriptor, through which calls
 * that take a path reach its file (as in passthrough_ll); len >= 32. */
void backing_fd_path(int fd, char *buf, size_t len);
/* open(2) (with O_CLOEXEC) of the file an O_PATH descriptor stands for:
 * a descriptor or -errno. */
int backing_reopen(int fd, int flags);
/* The directory fd of a binode that is a directory (its O_PATH fd). */
static inline int backing_dirfd(const struct binode *bi)
{
	return bi->fd;
}

/* cur/ new/ tmp/ of the view <-> the area of their backing files
 * (AREA_FILES has no sub: SUB_CUR) */
static inline enum backing_area backing_area_of_sub(enum view_sub sub)
{
	return sub == SUB_TMP ? AREA_TMP : sub == SUB_CUR ? AREA_CUR : AREA_NEW;
}

static inline enum view_sub backing_sub_of_area(enum backing_area area)
{
	return area == AREA_TMP ? SUB_TMP : area == AREA_NEW ? SUB_NEW :
		SUB_CUR;
}

static inline uint64_t backing_ino_of(ino_t backing_ino)
{
	return (uint64_t)VK_PLAIN << 60 | ((uint64_t)backing_ino &
					    ((1ull << 60) - 1));
}

#endif
