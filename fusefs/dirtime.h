/* dirtime.h - st_mtime of the view's directories (maildir-view.md
 * section 2).
 *
 * As on a local filesystem, a directory's mtime is the time (in ns) of
 * the last change to its entries, or what utimensat(2) last set; mbsync,
 * mutt, notmuch and Dovecot's maildir driver rescan a folder by the
 * mtimes of cur/ and new/.  Each directory has its own, kept where its
 * entries are, so that it survives a remount:
 *
 *   cur/, new/   the mailbox's change time in the index (messages come,
 *                go, move, change flags), or the mtime of the spool area
 *                holding its files not yet committed (cp), the later one
 *   tmp/         the mtime of its spool area directory
 *   a folder     the mtime of its plain-file area directory (files/ID),
 *                touched when a cur/ new/ tmp/ or a child folder in it is
 *                made, removed or renamed
 *
 * An area directory that saw no change yet (backing_area_mtime 0) shows
 * the time the store has: the mailbox's creation.
 *
 *   an fs-layout parent that is no mailbox (A of A/B)
 *                the mtime of its entry files/vdirs/NAME (vdirs.h),
 *                touched as a folder's; made with the creation time of
 *                its first child (a read-only mount without the entry
 *                shows that time)
 *
 * Folders that another program (Dovecot, dboxctl) makes, removes or
 * renames move their parent's time too, as on a local filesystem: the
 * follower finds them (follow.c), those made while nothing was mounted
 * at the next read-write mount.  A read-only mount writes nothing, and
 * keeps those times for its life only.
 */
#ifndef DBOXFS_DIRTIME_H
#define DBOXFS_DIRTIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "view.h"

struct dboxfs;
struct dirtime_seen;

struct dirtime_own;

/* In struct dboxfs (fs->dirtime). */
struct dirtime_state {
	pthread_mutex_t lock;          /* everything below */
	/* a read-only mount: times of directories others changed */
	struct dirtime_seen *ro_times;
	size_t ro_count;
	/* the view's own changes of the folder tree that the follower may
	 * not have seen yet (dirtime.c) */
	struct dirtime_own *own;
	size_t own_count;
	uint64_t own_next;             /* token of the next one */
	uint64_t checks;               /* the follower's checks begun */
};

/* mtime (ns) of cur/ or new/ of box, whose index change time is
 * index_ns. */
/* The times a setattr asks for (FUSE_SET_ATTR_[AM]TIME[_NOW] in to_set),
 * as utimensat(2) takes them: UTIME_OMIT for those not asked. */
void dirtime_requested(const struct stat *attr, int to_set,
		       struct timespec tv[2]);
int64_t dirtime_sub_ns(struct dboxfs *fs, int64_t box, enum view_sub sub,
		       int64_t index_ns);
/* The same from the mtime of their spool area (0: none, or no change
 * in it yet). */
int64_t dirtime_sub_at(int64_t area_ns, int64_t index_ns);
int64_t dirtime_tmp_at(int64_t area_ns, int64_t created_ns);
/* mtime (ns) of tmp/ of box, created_ns if nothing changed in it. */
int64_t dirtime_tmp_ns(struct dboxfs *fs, int64_t box, int64_t created_ns);
/* mtime (ns) of the folder whose plain files are in area files_box (see
 * folders_files_box), fallback_ns if nothing changed in it. */
int64_t dirtime_folder_ns(struct dboxfs *fs, int64_t files_box,
			  int64_t fallback_ns);

/* An entry of tmp/ of box was made or removed by the view itself (mkdir
 * of tmp/: the new directory's time). */
void dirtime_tmp_changed(struct dboxfs *fs, int64_t box);
/* A cur/ new/ tmp/ or folder entry of directory `dir` was made, removed
 * or renamed (mkdir, rmdir, rename of folders). */
void dirtime_folder_changed(struct dboxfs *fs, const struct view_ino *dir);
/* The same by the kind of dir (node-folder.c): the root or a folder, its
 * plain-file area's times; an fs-layout parent that is no mailbox, its
 * entry in files/vdirs. */
void dirtime_files_changed(struct dboxfs *fs, const struct view_ino *dir);
void dirtime_vdir_changed(struct dboxfs *fs, const struct view_ino *dir);
/* The mtime (ns) of a folder-level directory v (root, folder, parent
 * that is no mailbox) whose mailbox-name prefix is `prefix`; fallback_ns
 * (its kind's base_ns) if nothing changed in its plain-file area. */
int64_t dirtime_dir_ns(struct dboxfs *fs, const struct view_ino *v,
		       const char *prefix,
		       int64_t fallback_ns);
/* fs layout: the mailbox `from` (and everything below it) is `to` now:
 * the parents that are no mailbox below it keep their times. */
void dirtime_folder_renamed(struct dboxfs *fs, const char *from,
			    const char *to);
/* The view's own changes of the folder tree: the follower sees every
 * change of the mailbox list, the view's own too, which moved their
 * directories' times already (dirtime_folder_changed); moving them again
 * would show a change nobody made.  So each is recorded by the entry it
 * changes, a mailbox name or an fs-layout parent's ("A/B"), before it is
 * made, and recognised exactly: a change another program makes to the
 * same directory at the same moment still moves its time. */
#define DIRTIME_CAME 1u   /* the entry is there after: made, or replaced */
#define DIRTIME_WENT 2u   /* it was there before: removed, or replaced */
/* The view is about to change entry `name` so (what: DIRTIME_*): a token
 * for dirtime_own_end (0: not recorded). */
uint64_t dirtime_own_begin(struct dboxfs *fs, const char *name,
			   unsigned int what);
/* The change is made (done), or failed. */
void dirtime_own_end(struct dboxfs *fs, uint64_t token, bool done);
/* The follower: a check of the folder tree begins (its number), and
 * ends: the own changes made before it began, which it saw, go. */
uint64_t dirtime_check_begin(struct dboxfs *fs);
void dirtime_check_end(struct dboxfs *fs, uint64_t check);
/* The follower: whether entry `name` came (DIRTIME_CAME) or went
 * (DIRTIME_WENT) by the view's own change. */
bool dirtime_changed_by_us(struct dboxfs *fs, const char *name,
			   unsigned int what);
/* The follower: another program made, removed or renamed an entry of
 * that directory. */
void dirtime_changed_by_other(struct dboxfs *fs, const char *prefix);
/* At exit. */
void dirtime_free_all(struct dboxfs *fs);
/* The folder of mailbox `box` itself is new (mkdir). */
void dirtime_folder_made(struct dboxfs *fs, int64_t box);

/* utimensat(2) of a directory of the view (FUSE_SET_ATTR_* in to_set),
 * by its kind (node-dir.c, node-folder.c): cur/ new/ tmp/, the root or a
 * folder, an fs-layout parent that is no mailbox.  0 or -errno. */
int dirtime_set_sub(struct dboxfs *fs, const struct view_ino *v,
		    const struct stat *attr, int to_set);
int dirtime_set_folder(struct dboxfs *fs, const struct view_ino *v,
		       const struct stat *attr, int to_set);
int dirtime_set_vdir(struct dboxfs *fs, const struct view_ino *v,
		     const struct stat *attr, int to_set);

#endif
