/* attr.h - attributes of the nodes of the view. */
#ifndef DBOXFS_ATTR_H
#define DBOXFS_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "backing.h"
#include "dbox/store.h"
#include "view.h"

#define KWFILE_NAME "dovecot-keywords"

struct dboxfs;

/* The text of a mailbox's dovecot-keywords file; its length or -errno. */
int attr_kwfile_text(struct dboxfs *fs, int64_t box, char *buf, size_t len);
bool attr_has_keywords(struct dboxfs *fs, int64_t box);
/* Bits (1 << enum view_sub) of the subdirectories a mailbox shows. */
unsigned int attr_subdirs_of(struct dboxfs *fs, int64_t box);
/* Attributes of each kind of node: the root, a folder or vdir; a backing
 * file or directory (a binode); a message; dovecot-keywords. */
int attr_folder(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
		struct stat *st);
int attr_plain(struct dboxfs *fs, uint64_t ino, struct stat *st);
int attr_message(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
		 struct stat *st);
int attr_keywords(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
		  struct stat *st);
/* Attributes of cur/, new/ or tmp/ of a mailbox. */
int attr_sub(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
	     struct stat *st);
/* Attributes of any node of the view by its inode number. */
int attr_get(struct dboxfs *fs, uint64_t ino, struct stat *st);
/* Attributes of a message. */
void attr_msg(struct dboxfs *fs, struct stat *st, const struct dbox_msg *m);
/* The message the kernel knows as (box, uid), following moves. */
int attr_msg_follow(struct dboxfs *fs, int64_t box, uint32_t uid,
		    struct dbox_msg *m);
/* What name in dir is in the view itself (a message, cur/ new/ tmp/, a
 * folder, dovecot-keywords), without the backing files: lookup's first
 * step, and kcache.c's check, which must not take backing references
 * (the resolve of dir's kind). */
int attr_resolve_view(struct dboxfs *fs, const struct view_ino *dir,
		      const char *name, struct stat *st);
/* resolve of cur/ or new/ (their messages) and of the root, a folder or
 * a vdir (cur/ new/ tmp/, dovecot-keywords, child folders). */
int attr_resolve_msg(struct dboxfs *fs, const struct view_ino *dir,
		     const char *name, struct stat *st);
int attr_resolve_folder(struct dboxfs *fs, const struct view_ino *dir,
			const char *name, struct stat *st);

#endif
