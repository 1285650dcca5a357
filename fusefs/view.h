/* view.h - the maildir view of a store: inode numbers and names.
 *
 * Inode numbers are derived from stored data, never from a table, so they
 * are the same across remounts and the kernel's forget needs no work:
 *
 *   bits 63..60  kind
 *   folder, keyword file:   mailbox id
 *   cur/new/tmp:            bits 57..56 which one, mailbox id
 *   message:                bits 59..32 mailbox id, 31..0 uid
 *   fs-layout parent that is no mailbox: its stored identity (vdirs.h:
 *                           the inode number of its entry in files/vdirs,
 *                           or a hash of its name), below 2^60
 *
 * so message inodes grow with uid, i.e. with storage order, and tools that
 * sort by inode read in disk order (maildir-view.md section 2).
 */
#ifndef DBOXFS_VIEW_H
#define DBOXFS_VIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "dbox/store.h"

enum view_layout {
	VIEW_MAILDIRPP,   /* INBOX at the root, .Sub.Folder */
	VIEW_FS,          /* INBOX/, Sub/Folder/ */
};

enum view_kind {
	VK_ROOT = 0,
	VK_FOLDER = 1,    /* a mailbox's directory (maildir++: .Name) */
	VK_SUB = 2,       /* cur/ new/ tmp/ */
	VK_MSG = 3,
	VK_KWFILE = 4,    /* dovecot-keywords */
	VK_VDIR = 5,      /* fs layout: a parent that is not a mailbox */
	VK_PLAIN = 7,     /* a plain file beside the store (write path) */
};

enum view_sub { SUB_CUR = 0, SUB_NEW = 1, SUB_TMP = 2 };

#define VIEW_ROOT_INO 1ull
#define VIEW_MAILBOX_MAX ((1ull << 28) - 1)

static inline uint64_t view_ino_folder(int64_t box)
{
	return (uint64_t)VK_FOLDER << 60 | (uint64_t)box;
}
static inline uint64_t view_ino_sub(int64_t box, enum view_sub sub)
{
	return (uint64_t)VK_SUB << 60 | (uint64_t)sub << 56 | (uint64_t)box;
}
static inline uint64_t view_ino_msg(int64_t box, uint32_t uid)
{
	return (uint64_t)VK_MSG << 60 | (uint64_t)box << 32 | uid;
}
static inline uint64_t view_ino_kwfile(int64_t box)
{
	return (uint64_t)VK_KWFILE << 60 | (uint64_t)box;
}
#define VIEW_VDIR_ID_MASK ((1ull << 60) - 1)

static inline uint64_t view_ino_vdir(uint64_t id)
{
	return (uint64_t)VK_VDIR << 60 | (id & VIEW_VDIR_ID_MASK);
}

struct view_ino {
	uint64_t ino;
	enum view_kind kind;
	int64_t box;           /* mailbox id (folder, sub, msg, kwfile) */
	enum view_sub sub;
	uint32_t uid;
};

bool view_ino_decode(uint64_t ino, struct view_ino *v);
static inline uint64_t view_ino_plain(const struct view_ino *v)
{
	return v->ino;
}

/* Names of cur/, new/ and tmp/ (enum view_sub order). */
extern const char *const view_sub_names[3];
/* Whether name is "cur", "new" or "tmp", and which. */
bool view_sub_of_name(const char *name, enum view_sub *sub_r);
/* A name a message can have in cur/ or new/ (base not empty, not
 * starting with '.', which rsync and friends use for files that are not
 * done yet, and short enough): its base in base, info as
 * view_name_split. */
bool view_final_name(const char *name, char *base, size_t blen,
		     const char **info_r);

/* Splits a cur/ or new/ name into base and info ("" for none). */
void view_name_split(const char *name, char *base, size_t blen,
		     const char **info_r);
/* File name of a message in its directory. */
void view_msg_name(const struct dbox_msg *m, char *buf, size_t len);

/* Longest name of a directory entry (what statfs reports as f_namemax). */
#define VIEW_NAME_MAX 255

/* maildir++ folder name <-> mailbox name.  ".Lists.linux" <-> "Lists/linux";
 * '.' and '%' inside a part are written %2E and %25, and only so (one
 * spelling per name); a '.' that starts the name is written as is
 * (".x" <-> "..x", the only spelling of a name no client can otherwise make).  Both return 0, -EINVAL for a name that cannot be a
 * mailbox, or -ENAMETOOLONG beyond VIEW_NAME_MAX or `len` (never a name
 * cut short, which could be another mailbox's). */
int view_pp_to_mailbox(const char *dirname, char *buf, size_t len);
int view_mailbox_to_pp(const char *mailbox, char *buf, size_t len);

#endif
