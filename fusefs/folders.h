/* folders.h - which directories a folder holds, in both layouts.
 *
 * The mailbox list is small (it is read from the index for each listing);
 * children are produced in the order of their cookie, the lowest mailbox
 * id below them + FOLDER_COOKIE_BASE, so that readdir can resume at any
 * offset while mailboxes come and go. */
#ifndef DBOXFS_FOLDERS_H
#define DBOXFS_FOLDERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/store.h"
#include "vdirs.h"
#include "view.h"

#define FOLDER_COOKIE_BASE 16
/* fs layout: a parent that is no mailbox and holds none (an empty A kept
 * after rmdir A/B) comes after the folders, by its identity */
#define FOLDER_KEPT_COOKIE_BASE (1ull << 39)

struct dboxfs;

/* The mailboxes logged as hidden; in struct dboxfs (fs->folders), zero
 * but the lock at start. */
struct folders_state {
	pthread_mutex_t hidden_lock;  /* hidden_logged */
	int64_t hidden_logged;        /* highest mailbox id logged as hidden */
};

struct folder_list {
	struct dbox_mailbox *boxes;   /* sorted by id */
	size_t count;
	/* where a hidden mailbox is logged once (NULL: not logged) */
	struct folders_state *state;
	/* fs layout: the stored parents that are no mailbox (vdirs.h),
	 * sorted by name, and the shown mailboxes sorted by name */
	struct vdir_entry *vdirs;
	size_t vdir_count;
	const struct dbox_mailbox **by_name;
	size_t by_name_count;
};

struct folder_child {
	char name[DBOX_NAME_MAX * 4 + 16];
	uint64_t ino;
	int64_t box;                  /* FOLDER: its mailbox; VDIR: 0 */
	uint64_t cookie;
};

/* The mailbox list; in the fs layout also the stored parents, whose
 * entries a read-write mount makes here for the parents it shows first
 * (and drops for those that are a mailbox now). */
int folders_load(struct dboxfs *fs, struct folder_list *fl);
void folders_free(struct folder_list *fl);
/* fs layout: fills fl->by_name from fl->boxes (folders_load does; for a
 * list made otherwise, before a listing with stored parents): 0 or
 * -ENOMEM. */
int folders_index_names(struct folder_list *fl);

/* Mailbox name of the directory `ino` lists children of: "" for the fs
 * root; a vdir's prefix (found by its identity).  Returns its depth, or
 * -ENOENT. */
int folders_prefix(const struct folder_list *fl, enum view_layout layout,
		   const struct view_ino *v, char *buf, size_t len);
/* The same from the mailboxes as they are now (folders_load). */
int folders_prefix_now(struct dboxfs *fs, const struct view_ino *v,
		       char *buf, size_t len);

/* Whether name[0..n) is cur, new or tmp: no fs-layout folder is called
 * so (it would be its parent's cur/ new/ tmp/).  Mailboxes a layout
 * cannot show (fs: such a part; maildir++: a name beyond VIEW_NAME_MAX)
 * are left out of every listing and lookup, and logged once. */
bool folders_reserved_part(const char *name, size_t n);

/* Calls cb for each child directory (mailbox folders and vdirs) of the
 * directory with mailbox-name prefix `prefix` at `depth`, in cookie order,
 * skipping cookies <= after.  maildir++ root: every mailbox but INBOX.
 * cb returns non-zero to stop. */
void folders_children(const struct folder_list *fl, enum view_layout layout,
		      const char *prefix, unsigned int depth, int64_t inbox,
		      uint64_t after,
		      int (*cb)(void *ctx, const struct folder_child *c),
		      void *ctx);
/* The child called `name`; 0 and *c filled, or -ENOENT. */
int folders_lookup(const struct folder_list *fl, enum view_layout layout,
		   const char *prefix, unsigned int depth, int64_t inbox,
		   const char *name, struct folder_child *c);
/* fs layout: the inode number of the directory with mailbox-name prefix
 * `prefix` (root, folder or parent), 0 if there is none. */
uint64_t folders_dir_ino(const struct folder_list *fl, const char *prefix);
/* fs layout: creation time (s) of the lowest-numbered mailbox below
 * `prefix` (the time of a parent that has no stored time), 0 if none. */
int64_t folders_first_created(const struct folder_list *fl,
			      const char *prefix);
size_t folders_count_children(const struct folder_list *fl,
			      enum view_layout layout, const char *prefix,
			      unsigned int depth, int64_t inbox);

/* The mailbox whose cur/new/tmp a directory holds (0: none). */
int64_t folders_dir_mailbox(enum view_layout layout, int64_t inbox,
			    const struct view_ino *v);
/* The mailbox whose plain-file area a directory is (0 for the fs-layout
 * root, -1 for directories that cannot hold plain files). */
int64_t folders_files_box(enum view_layout layout, int64_t inbox,
			  const struct view_ino *v);

#endif
