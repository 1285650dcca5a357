/* kwimport.h - a file renamed or linked onto a folder's dovecot-keywords
 * (Dovecot's maildir driver writes dovecot-keywords.lock and renames it
 * there when it adds a keyword) becomes the mailbox's keyword names in
 * the index; the generated file stays (maildir-view.md section 6). */
#ifndef DBOXFS_KWIMPORT_H
#define DBOXFS_KWIMPORT_H

#include <stdint.h>

#include "dboxfs.h"
#include "view.h"

/* The mailbox whose dovecot-keywords newname in dir is, else 0. */
int64_t kwimport_target(struct dboxfs *fs, const struct view_ino *dir,
			const char *newname);
/* Parses the regular file open as fd as Dovecot does ("<idx> <name>"
 * lines, idx < 26; any other line ignored) and replaces box's keyword
 * names with it.  Takes fd (closes it). */
int kwimport_fd(struct dboxfs *fs, int64_t box, int fd);
/* The same for name in dirfd, which is then removed (a rename). */
int kwimport_rename(struct dboxfs *fs, int64_t box, int dirfd,
		    const char *name);
/* An old store's plain dovecot-keywords in the folder's plain-file area
 * (what a rename left there before): imported and removed, so that it
 * no longer hides the generated one.  Nothing there: 0. */
int kwimport_shadow(struct dboxfs *fs, const struct view_ino *dir);

#endif
