/* dfs-posix.c - the posix backend (see dfs-posix.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/dfs-posix.h"
#include "util/util.h"

static atomic_uint_fast64_t temp_counter;

static int neg_errno(int r)
{
	return r < 0 ? -errno : 0;
}

/* ".temp.<pid>.<n>.<name>" next to the final name: Dovecot's scanners and
 * ours skip dot files, and the name never collides. */
static int temp_name(const char *path, char **temp_r)
{
	const char *slash = strrchr(path, '/');
	int dirlen = slash == NULL ? 0 : (int)(slash - path) + 1;
	char buf[PATH_MAX];
	int n = snprintf(buf, sizeof(buf), "%.*s.temp.%ld.%llu.%s", dirlen,
			 path, (long)getpid(),
			 (unsigned long long)atomic_fetch_add(&temp_counter, 1),
			 path + dirlen);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	*temp_r = strdup(buf);
	return *temp_r == NULL ? -ENOMEM : 0;
}

static int do_open(struct dfs_file *f, int flags, mode_t mode)
{
	const char *path = f->path;
	struct stat st;

	if (flags & DFS_O_TEMP) {
		int ret = temp_name(f->path, &f->temp_path);

		if (ret < 0)
			return ret;
		path = f->temp_path;
		flags = (flags & ~(DFS_O_TEMP | O_TRUNC)) | O_CREAT | O_EXCL;
	}
	f->fd = dbox_open_regular(path, flags, mode);
	if (f->fd < 0) {
		int ret = f->fd;

		free(f->temp_path);
		f->temp_path = NULL;
		return ret;
	}
	/* a descriptor for reading has nothing to roll back (ftruncate
	 * fails on it): no second stat per file read */
	if ((flags & O_ACCMODE) != O_RDONLY)
		f->rollback_size = fstat(f->fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

static ssize_t full_pread(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static ssize_t full_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Appends of one handle run one at a time (the front end orders them), so
 * the end of the file stays ours between the seek and the write. */
static ssize_t do_append(struct dfs_file *f, const void *buf, size_t len,
			 off_t *off_r)
{
	off_t end = lseek(f->fd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	*off_r = end;
	return full_pwrite(f->fd, buf, len, end);
}

static int commit_temp(struct dfs_file *f, const char *final)
{
	int ret;

	if (rename(f->temp_path, final) < 0)
		return -errno;
	ret = dbox_fsync_parent(final);  /* the rename is durable */
	if (ret < 0) {
		/* the caller sees a failed commit: leave nothing committed
		 * behind, so that a rollback really undoes it */
		if (rename(final, f->temp_path) == 0)
			return ret;
	}
	free(f->temp_path);
	f->temp_path = NULL;
	f->committed = true;
	return ret;
}

static int do_commit(struct dfs_file *f, const char *final)
{
	struct stat st;

	if (fdatasync(f->fd) < 0)
		return -errno;
	if (f->temp_path != NULL)
		return commit_temp(f, final != NULL ? final : f->path);
	/* what is durable now is what a later rollback returns to */
	if (fstat(f->fd, &st) == 0)
		f->rollback_size = st.st_size;
	return 0;
}

static int do_rollback(struct dfs_file *f)
{
	int ret;

	if (f->committed)
		return 0;  /* a committed temp file is nobody's temp any more */
	if (f->temp_path == NULL)
		return neg_errno(ftruncate(f->fd, f->rollback_size));
	ret = unlink(f->temp_path) < 0 && errno != ENOENT ? -errno : 0;
	free(f->temp_path);
	f->temp_path = NULL;
	return ret;
}

static int do_close(struct dfs_file *f)
{
	if (f->temp_path != NULL)
		do_rollback(f);  /* never committed: junk */
	/* the front end forgets the descriptor once this completed */
	return neg_errno(close(f->fd));
}

static ssize_t exec_file(struct dfs_req *req)
{
	struct dfs_file *f = req->file;
	struct dfs_result *res = &req->res;

	switch (req->op) {
	case DFS_OP_OPEN:
		return do_open(f, req->flags, req->mode);
	case DFS_OP_PREAD:
		return full_pread(f->fd, req->buf, req->len, req->off);
	case DFS_OP_READ_FD:
		return req->fd_reader(req->fd_reader_arg, f->fd, req->len,
				      req->off);
	case DFS_OP_PWRITE:
		return full_pwrite(f->fd, req->cbuf, req->len, req->off);
	case DFS_OP_APPEND:
		return do_append(f, req->cbuf, req->len, &res->offset);
	case DFS_OP_TRUNCATE:
		return neg_errno(ftruncate(f->fd, req->off));
	case DFS_OP_COMMIT:
		return do_commit(f, req->path);
	case DFS_OP_ROLLBACK:
		return do_rollback(f);
	case DFS_OP_FSYNC:
		return neg_errno(fdatasync(f->fd));
	case DFS_OP_FSTAT:
		return neg_errno(fstat(f->fd, &res->st));
	case DFS_OP_TRY_LOCK:
		return neg_errno(flock(f->fd, LOCK_EX | LOCK_NB));
	case DFS_OP_UNLOCK:
		return neg_errno(flock(f->fd, LOCK_UN));
	case DFS_OP_CLOSE:
		return do_close(f);
	default:
		return -ENOSYS;
	}
}

static int exec_path(struct dfs_req *req)
{
	switch (req->op) {
	case DFS_OP_STAT:
		return neg_errno(stat(req->path, &req->res.st));
	case DFS_OP_UNLINK:
		return neg_errno(unlink(req->path));
	case DFS_OP_RENAME:
		return neg_errno(rename(req->path, req->path2));
	case DFS_OP_MKDIR:
		return neg_errno(mkdir(req->path, req->mode));
	case DFS_OP_FSYNC_DIR:
		return dbox_fsync_dir(req->path);
	default:
		return -ENOSYS;
	}
}

static enum dfs_exec posix_exec(struct dfs_layer *layer, struct dfs_req *req)
{
	ssize_t n;

	(void)layer;
	n = req->file != NULL ? exec_file(req) : exec_path(req);
	if (n < 0)
		req->res.err = (int)n;
	else if (req->op == DFS_OP_PREAD || req->op == DFS_OP_PWRITE ||
		 req->op == DFS_OP_APPEND || req->op == DFS_OP_READ_FD)
		req->res.n = n;
	return DFS_EXEC_DONE;
}

int dfs_posix_new(const char *args, uint64_t seed, struct dfs_layer **l_r,
		  char *errbuf, size_t errlen)
{
	struct dfs_layer *l;

	(void)seed;
	if (args != NULL)
		return dfs_layer_error(errbuf, errlen, "posix takes no "
				       "arguments (got \"posix:%s\")", args);
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->name = "posix";
	l->exec = posix_exec;
	*l_r = l;
	return 0;
}
