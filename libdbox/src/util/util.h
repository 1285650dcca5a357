/* util.h - small helpers shared inside libdbox (not public). */
#ifndef DBOX_UTIL_H
#define DBOX_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dbox/store.h"

/* Formats a message into err (if not NULL) and returns ret (a -errno), so
 * that error paths read `return dbox_fail(err, -EIO, "...", ...)`. */
int dbox_fail(struct dbox_err *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefixes the existing message in err with more context. */
int dbox_fail_prefix(struct dbox_err *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf that reports truncation as -ENAMETOOLONG. */
int dbox_path(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* open(2) of a file in a store: the last component is never a symbolic
 * link (a u.N pointing into another store must not pass for this one's)
 * and the file is regular (opening a FIFO would block every reader, a
 * device is no mail).  Returns the descriptor, -EBADMSG for a symlink or
 * a file that is not regular (logged once per call with the path: the
 * store is damaged, not the caller's request wrong), or -errno. */
int dbox_open_regular(const char *path, int flags, mode_t mode);
/* mkdir -p with mode for every created component. */
int dbox_mkdir_p(const char *path, mode_t mode);
/* rm -r of a directory tree (no symlink following). */
int dbox_remove_tree(const char *path);
/* fsync a directory by path. */
int dbox_fsync_dir(const char *path);
/* fsync the directory that contains path. */
int dbox_fsync_parent(const char *path);

void dbox_log(enum dbox_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int64_t dbox_now_ns(void);
int64_t dbox_now(void);

#endif
