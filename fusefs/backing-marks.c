/* backing-marks.c - the marks backing files carry in extended
 * attributes beside the table of backing.c: "closed" (a file closed
 * under its final name, to be committed) and "linked" (a tmp/ file
 * link()ed into cur/ or new/); see backing.h. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "backing.h"
#include "dboxfs.h"

/* The "closed" mark (backing.h): the file's size in decimal. */
#define CLOSED_XATTR "user.dboxfs.closed"

void backing_mark_closed(struct dboxfs *fs, uint64_t ino, int fd)
{
	struct binode *bi = backing_get(fs, ino);
	char val[32];
	struct stat st;
	int n;

	if (bi == NULL || fstat(fd, &st) < 0) {
		backing_put(fs, bi);
		return;
	}
	n = snprintf(val, sizeof(val), "%lld", (long long)st.st_size);
	if (fsetxattr(fd, CLOSED_XATTR, val, (size_t)n, 0) < 0) {
		/* without it, a crash before the commit leaves the file in
		 * tmp/ at the next start: seen, not lost */
		if (!atomic_exchange(&fs->backing.closed_warned, true))
			fuse_log(FUSE_LOG_WARNING, "dboxfs: spool: cannot mark "
				 "closed files (%s)\n", strerror(errno));
	} else {
		atomic_store(&bi->closed_mark, true);
	}
	backing_put(fs, bi);
}

void backing_mark_drop(struct dboxfs *fs, uint64_t ino)
{
	struct binode *bi = backing_get(fs, ino);
	char path[64];

	if (bi != NULL && atomic_exchange(&bi->closed_mark, false)) {
		backing_fd_path(bi->fd, path, sizeof(path));
		removexattr(path, CLOSED_XATTR);
	}
	backing_put(fs, bi);
}

bool backing_marked_complete(int fd, const struct stat *st)
{
	char val[32], *end;
	ssize_t n = fgetxattr(fd, CLOSED_XATTR, val, sizeof(val) - 1);

	if (n <= 0)
		return false;
	val[n] = '\0';
	return strtoll(val, &end, 10) == (long long)st->st_size &&
		*end == '\0';
}

/* The "linked" mark (backing.h): "live" while the daemon runs, "kept"
 * after a clean stop. */
#define LINKED_XATTR "user.dboxfs.linked"

int backing_mark_linked(struct binode *bi)
{
	char path[64];

	backing_fd_path(bi->fd, path, sizeof(path));
	return setxattr(path, LINKED_XATTR, "live", 4, 0) < 0 ? -errno : 0;
}

void backing_unmark_linked(int fd)
{
	fremovexattr(fd, LINKED_XATTR);
}

static bool linked_mark_is(int fd, const char *val)
{
	char v[8];
	ssize_t n = fgetxattr(fd, LINKED_XATTR, v, sizeof(v));

	return n == (ssize_t)strlen(val) && memcmp(v, val, (size_t)n) == 0;
}

void backing_keep_linked(int fd)
{
	if (linked_mark_is(fd, "live"))
		fsetxattr(fd, LINKED_XATTR, "kept", 4, 0);
}

bool backing_marked_kept(int fd)
{
	return linked_mark_is(fd, "kept");
}
