/* dbox/nameset.h - a set of names whose memory does not grow with their
 * number (dboxctl import keeps the maildir names it used in one).
 *
 * The names live in a private temporary SQLite database: the pages beyond
 * a small cache (4 MiB) are in a temporary file in SQLite's temp directory
 * (SQLITE_TMPDIR, TMPDIR, /var/tmp, ...), deleted when the set is closed.
 * A set is used by one thread at a time. */
#ifndef DBOX_NAMESET_H
#define DBOX_NAMESET_H

#include "dbox/store.h"   /* struct dbox_err */

struct dbox_nameset;

/* An empty set, or -errno with err set. */
int dbox_nameset_open(struct dbox_nameset **set_r, struct dbox_err *err);
/* 1 if name was added, 0 if it was in the set already, -errno with err
 * set on failure. */
int dbox_nameset_add(struct dbox_nameset *set, const char *name,
		     struct dbox_err *err);
/* NULL is allowed. */
void dbox_nameset_close(struct dbox_nameset *set);

#endif
