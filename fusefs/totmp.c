/* totmp.c - a message renamed back into tmp/ (maildir-view.md sections
 * 3 and 4, "where a rule is silent, do what a local filesystem does"):
 * the message leaves its mailbox and becomes an ordinary tmp/ file with
 * its bytes, mode, mtime and inode number (the uid is never used again,
 * so the number stays unique: backing.h).
 *
 * Crash safety: the bytes go into an unnamed file (O_TMPFILE) that is
 * made durable and linked into tmp/ under a reserved name, with its final
 * name in an xattr, before the index commits the expunge; then it is
 * renamed to its final name.  A daemon killed before the expunge leaves
 * the message, and the start-up sweep removes the reserved file; one
 * killed after it leaves the reserved file, which the sweep renames: the
 * bytes are always the message or the tmp/ file (or both, for a moment). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "attr.h"
#include "backing.h"
#include "dboxfs.h"
#include "totmp.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define TOTMP_PREFIX ".dboxfs-totmp."
#define NAME_XATTR "user.dboxfs.totmp"

static int copy_bytes(struct dboxfs *fs, const struct dbox_msg *m, int fd)
{
	struct dbox_err err = { "" };
	char *buf = malloc(65536);
	uint64_t off = 0;
	int ret = buf == NULL ? -ENOMEM : 0;

	while (ret == 0 && off < m->size) {
		ssize_t n = dbox_msg_pread(fs->store, m, buf, 65536, off,
					   &err);

		if (n <= 0) {
			ret = n < 0 ? (int)n : -EIO;
			fuse_log(FUSE_LOG_ERR, "dboxfs: rename into tmp/: "
				 "read of uid %u: %s\n", m->uid, n < 0 ?
				 err.msg : "message shorter than its size");
		} else if (pwrite(fd, buf, (size_t)n, (off_t)off) != n) {
			ret = -errno;
		}
		off += n > 0 ? (uint64_t)n : 0;
	}
	free(buf);
	return ret;
}

/* The unnamed file: bytes, the message's mode and times, its inode
 * number and final name (xattrs), durable. */
static int write_file(struct dboxfs *fs, const struct dbox_msg *m, int dirfd,
		      const char *name,
		      int *fd_r)
{
	struct stat st;
	struct timespec ts[2];
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	int ret = fd < 0 ? -errno : copy_bytes(fs, m, fd);

	attr_msg(fs, &st, m);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (ret == 0 && fchmod(fd, st.st_mode & 07777) < 0)
		ret = -errno;
	if (ret == 0)
		ret = backing_set_node_ino(fd, st.st_ino);
	if (ret == 0 && fsetxattr(fd, NAME_XATTR, name, strlen(name), 0) < 0)
		ret = -errno;
	/* last: the xattrs would move the times of some filesystems */
	if (ret == 0 && futimens(fd, ts) < 0)
		ret = -errno;
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (ret < 0 && fd >= 0)
		close(fd);
	*fd_r = ret < 0 ? -1 : fd;
	return ret;
}

static int fsync_dir(int dirfd)
{
	int fd = backing_reopen(dirfd, O_RDONLY | O_DIRECTORY);
	int ret = fd < 0 ? fd : fsync(fd) < 0 ? -errno : 0;

	if (fd >= 0)
		close(fd);
	return ret;
}

/* The reserved name of message (box, uid) in tmp/. */
static void reserved_name(const struct dbox_msg *m, char *buf, size_t len)
{
	snprintf(buf, len, TOTMP_PREFIX "%lld.%u", (long long)m->mailbox_id,
		 m->uid);
}

static int link_reserved(int fd, int dirfd, const char *reserved)
{
	char path[64];

	backing_fd_path(fd, path, sizeof(path));
	unlinkat(dirfd, reserved, 0);   /* a dead attempt's */
	if (linkat(AT_FDCWD, path, dirfd, reserved, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return fsync_dir(dirfd);
}

/* The kernel still knows the file under the message's node (its number
 * or a delivered file's binode): those answer for the tmp/ file now. */
static void take_over_nodes(struct dboxfs *fs,
			    const struct dbox_msg *m, int64_t box,
			    int dirfd, const char *name)
{
	uint64_t ino = view_ino_msg(m->mailbox_id, m->uid);
	struct binode *bi;
	struct stat st;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	/* none of ours: the kernel's node is the message's number, which
	 * gets a binode counting the lookup the kernel made of the name */
	if (backing_retarget_msg(fs, m->mailbox_id, m->uid, box, fd,
				 ino) == 0 &&
	    !backing_has_node(fs, ino))
		backing_lookup(fs, dirfd, name, box, AREA_TMP, &bi, &st);
	close(fd);
}

static int check_target(int dirfd, const char *name, unsigned int flags)
{
	struct stat st;

	if (strncmp(name, TOTMP_PREFIX, strlen(TOTMP_PREFIX)) == 0)
		return -EINVAL;   /* reserved */
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flags & RENAME_NOREPLACE)
		return -EEXIST;
	return S_ISDIR(st.st_mode) ? -EISDIR : 0;
}

int totmp_rename(struct dboxfs *fs, const struct dbox_msg *m, int64_t box,
		 const char *name,
		 unsigned int flags)
{
	char reserved[64];
	struct dbox_err err = { "" };
	int dirfd, fd = -1;
	int ret = backing_area_dir(fs, box, AREA_TMP, &dirfd);

	if (ret < 0)
		return ret;
	reserved_name(m, reserved, sizeof(reserved));
	ret = check_target(dirfd, name, flags);
	if (ret == 0)
		ret = write_file(fs, m, dirfd, name, &fd);
	if (ret == 0)
		ret = link_reserved(fd, dirfd, reserved);
	if (ret == 0) {
		ret = dbox_msg_expunge(fs->store, m->mailbox_id, m->uid,
				       &err);
		if (ret < 0) {
			fuse_log(FUSE_LOG_ERR, "dboxfs: rename into tmp/: "
				 "expunge of uid %u: %s\n", m->uid, err.msg);
			unlinkat(dirfd, reserved, 0);
		}
	}
	/* the reserved name stays until the expunge is durable (flush.h):
	 * a power cut before it brings the message back, and the sweep
	 * then removes the reserved file */
	if (ret == 0 && dbox_store_sync(fs->store, &err) < 0)
		fuse_log(FUSE_LOG_WARNING, "dboxfs: rename into tmp/: %s\n",
			 err.msg);
	if (ret == 0 && renameat2(dirfd, reserved, dirfd, name,
				  flags & RENAME_NOREPLACE) < 0) {
		/* the message is gone: its bytes stay under the reserved
		 * name, which the next start gives the file */
		ret = -errno;
		fuse_log(FUSE_LOG_ERR, "dboxfs: rename into tmp/: %s stays "
			 "%s: %s\n", name, reserved, strerror(-ret));
	}
	if (ret == 0) {
		fremovexattr(fd, NAME_XATTR);
		take_over_nodes(fs, m, box, dirfd, name);
	}
	if (fd >= 0)
		close(fd);
	close(dirfd);
	return ret;
}

bool totmp_sweep(struct dboxfs *fs, int64_t box, int dirfd, const char *name)
{
	char final[NAME_MAX + 1];
	struct view_ino v;
	struct stat st;
	ssize_t n;
	int fd;

	if (strncmp(name, TOTMP_PREFIX, strlen(TOTMP_PREFIX)) != 0)
		return false;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = fgetxattr(fd, NAME_XATTR, final, sizeof(final) - 1);
	if (n > 0 && fstat(fd, &st) == 0 &&
	    view_ino_decode(backing_node_ino(fd, NULL, &st), &v) &&
	    v.kind == VK_MSG) {
		bool undo = dbox_msg_get(fs->store, v.box, v.uid, NULL,
					 NULL) == 0;

		final[n] = '\0';
		if (undo)
			/* the expunge had not committed: still a message */
			unlinkat(dirfd, name, 0);
		else if (renameat2(dirfd, name, dirfd, final,
				   RENAME_NOREPLACE) == 0)
			fremovexattr(fd, NAME_XATTR);
		fuse_log(FUSE_LOG_INFO, "dboxfs: spool: %s of mailbox %lld: "
			 "rename of a message into tmp/ %s\n", final,
			 (long long)box, undo ? "undone" : "finished");
	}
	close(fd);
	return true;
}

/* What the sweep will do with the reserved file `name`: 1 and its final
 * name in final (renamed), -1 (removed: the message is still there) or
 * 0 (left as it is). */
static int sweep_outcome(struct dboxfs *fs, int dirfd, const char *name,
			 char *final,
			 size_t len)
{
	struct view_ino v;
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	if (strncmp(name, TOTMP_PREFIX, strlen(TOTMP_PREFIX)) != 0)
		return 0;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = fgetxattr(fd, NAME_XATTR, final, len - 1);
	if (n > 0 && fstat(fd, &st) == 0 &&
	    view_ino_decode(backing_node_ino(fd, NULL, &st), &v) &&
	    v.kind == VK_MSG) {
		final[n] = '\0';
		if (dbox_msg_get(fs->store, v.box, v.uid, NULL, NULL) == 0)
			ret = -1;
		else if (faccessat(dirfd, final, F_OK,
				   AT_SYMLINK_NOFOLLOW) != 0)
			ret = 1;
	}
	close(fd);
	return ret;
}

const char *totmp_ro_shown(struct dboxfs *fs, int dirfd, const char *name,
			   char *buf,
			   size_t len)
{
	int ret = sweep_outcome(fs, dirfd, name, buf, len);

	return ret < 0 ? NULL : ret > 0 ? buf : name;
}

const char *totmp_ro_backing(struct dboxfs *fs, int dirfd, const char *name,
			     char *buf,
			     size_t len)
{
	char final[NAME_MAX + 1];
	const char *found = NULL;
	struct dirent *e;
	DIR *d;
	int fd;

	if (strncmp(name, TOTMP_PREFIX, strlen(TOTMP_PREFIX)) == 0)
		return sweep_outcome(fs, dirfd, name, final,
				     sizeof(final)) == 0 ?
			name : NULL;
	if (faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return name;
	/* a name that is not there: the reserved file that will get it is
	 * found by a scan of tmp/ (which holds few files; only a read-only
	 * mount asks) */
	fd = backing_reopen(dirfd, O_RDONLY | O_DIRECTORY);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return name;
	}
	while (found == NULL && (e = readdir(d)) != NULL) {
		if (sweep_outcome(fs, dirfd, e->d_name, final,
				  sizeof(final)) > 0 &&
		    strcmp(final, name) == 0) {
			snprintf(buf, len, "%s", e->d_name);
			found = buf;
		}
	}
	closedir(d);
	return found != NULL ? found : name;
}
