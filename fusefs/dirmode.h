/* dirmode.h - st_mode of the view's directories (maildir-view.md
 * section 2).
 *
 * As on a local filesystem, chmod(2) of a folder, of the mount's root, of
 * cur/ new/ tmp/ or of an fs-layout parent that is no mailbox is kept
 * (rsync -a of a backup whose directories have other modes would chmod
 * them again on every run otherwise), and so is the mode mkdir(2) gave
 * them; the kernel enforces it (default_permissions).  Each directory's
 * mode is the own mode of the backing directory that keeps its times
 * (dirtime.h): its plain-file area (files/ID), its spool area
 * (spool/ID/cur, new, tmp) or its entry in files/vdirs.  Those are made
 * on demand with the daemon's 0700, which is no mode a client gave: the
 * mode counts once an xattr marks it set.  Until then the directory
 * shows the store root's mode, as before.  The daemon runs as root, so
 * the backing mode restricts only other users of the store. */
#ifndef DBOXFS_DIRMODE_H
#define DBOXFS_DIRMODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "view.h"

struct dboxfs;

/* Whether each spool area directory has a kept mode (the xattr), as last
 * read, by the directory's inode and ctime then: every chmod and every
 * change of the mark moves the ctime, whoever makes it (this daemon,
 * another one that took the mount over, a person on the store), so a
 * GETATTR of cur/ new/ tmp/ whose lstat of the area shows the same ctime
 * needs no open and getxattr (dirmode_of_area).  A slot per area, by a
 * hash of (box, area); another area in the slot replaces it. */
#define DIRMODE_SLOTS 64
struct dirmode_seen {
	int64_t box;              /* all 0: empty (no inode 0) */
	int area;
	dev_t dev;
	ino_t ino;
	int64_t ctime_ns;
	bool kept;
};
/* In struct dboxfs (fs->dirmode). */
struct dirmode_state {
	pthread_mutex_t lock;     /* seen[] */
	struct dirmode_seen seen[DIRMODE_SLOTS];
};

/* present on a backing directory whose own mode is the shown one */
#define DIRMODE_XATTR "user.dboxfs.mode"

/* The permission bits (07777) directory v shows; prefix: an fs-layout
 * parent's mailbox-name prefix (NULL for other kinds). */
mode_t dirmode_of(struct dboxfs *fs, const struct view_ino *v,
		  const char *prefix);
/* The same for cur/ new/ tmp/ of box, whose spool area is `area` and
 * whose lstat is *st (NULL: no area directory). */
mode_t dirmode_of_area(struct dboxfs *fs, int64_t box, int area,
		       const struct stat *st);
/* chmod(2) of directory v (FUSE_SET_ATTR_MODE in to_set): 0 or -errno. */
int dirmode_set(struct dboxfs *fs, const struct view_ino *v,
		const struct stat *attr, int to_set);
/* mkdir(2) made directory v with mode: kept if it is not what v shows
 * (a directory made again may keep an earlier chmod otherwise). */
void dirmode_made(struct dboxfs *fs, const struct view_ino *v, mode_t mode);

#endif
