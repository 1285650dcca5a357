/* dfs-posix.c - the bottom driver: plain POSIX calls (on a worker). */
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

#include "fs/dfs-private.h"

static atomic_uint_fast64_t temp_counter;

static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 1 : (size_t)(slash - path);
	int fd, ret = 0;

	if (slash == NULL)
		strcpy(dir, ".");
	else if (n == 0)
		strcpy(dir, "/");
	else if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	else {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* ".temp.<pid>.<n>.<name>" next to the final name, as Dovecot names its
 * temp files, so that every scanner of the directory skips it. */
static int temp_name(const char *path, char **temp_r)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash == NULL ? 0 : (size_t)(slash - path) + 1;
	const char *base = path + dirlen;
	char buf[PATH_MAX];
	int n = snprintf(buf, sizeof(buf), "%.*s.temp.%ld.%llu.%s",
			 (int)dirlen, path, (long)getpid(),
			 (unsigned long long)atomic_fetch_add(&temp_counter, 1),
			 base);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	*temp_r = strdup(buf);
	return *temp_r == NULL ? -ENOMEM : 0;
}

static int do_open(struct dfs_file *f, int flags, mode_t mode)
{
	const char *path = f->path;
	struct stat st;
	int ret;

	if (flags & DFS_O_TEMP) {
		ret = temp_name(f->path, &f->temp_path);
		if (ret < 0)
			return ret;
		path = f->temp_path;
		flags = (flags & ~(DFS_O_TEMP | O_TRUNC)) | O_CREAT | O_EXCL;
	}
	f->fd = open(path, flags | O_CLOEXEC, mode);
	if (f->fd < 0)
		return -errno;
	f->size_at_open = fstat(f->fd, &st) == 0 ? st.st_size : 0;
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

/* Appends on one handle run one at a time (the front end orders them), so
 * the end of the file is ours to take. */
static ssize_t do_append(struct dfs_file *f, const void *buf, size_t len,
			 off_t *off_r)
{
	off_t end = lseek(f->fd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	*off_r = end;
	return full_pwrite(f->fd, buf, len, end);
}

static int do_commit(struct dfs_file *f, const char *final)
{
	if (fdatasync(f->fd) < 0)
		return -errno;
	if (f->temp_path == NULL)
		return 0;
	if (final == NULL)
		final = f->path;
	if (rename(f->temp_path, final) < 0)
		return -errno;
	free(f->temp_path);
	f->temp_path = NULL;
	return fsync_parent(final);
}

static int do_rollback(struct dfs_file *f)
{
	if (f->temp_path != NULL) {
		int ret = unlink(f->temp_path) < 0 && errno != ENOENT ? -errno : 0;

		free(f->temp_path);
		f->temp_path = NULL;
		return ret;
	}
	return ftruncate(f->fd, f->size_at_open) < 0 ? -errno : 0;
}

static int neg(int r)
{
	return r < 0 ? -errno : 0;
}

static void posix_exec(struct dfs_layer *layer, struct dfs_req *req)
{
	struct dfs_file *f = req->file;
	struct dfs_result *res = &req->res;
	ssize_t n = 0;
	int fd = f != NULL ? f->fd : -1;

	(void)layer;
	switch (req->op) {
	case DFS_OP_OPEN:
		res->err = do_open(f, req->flags, req->mode);
		return;
	case DFS_OP_PREAD:
		n = full_pread(fd, req->buf, req->len, req->off);
		break;
	case DFS_OP_PWRITE:
		n = full_pwrite(fd, req->cbuf, req->len, req->off);
		break;
	case DFS_OP_APPEND:
		n = do_append(f, req->cbuf, req->len, &res->offset);
		break;
	case DFS_OP_TRUNCATE:
		res->err = neg(ftruncate(fd, req->off));
		return;
	case DFS_OP_COMMIT:
		res->err = do_commit(f, req->path);
		return;
	case DFS_OP_ROLLBACK:
		res->err = do_rollback(f);
		return;
	case DFS_OP_FSYNC:
		res->err = neg(fdatasync(fd));
		return;
	case DFS_OP_FSTAT:
		res->err = neg(fstat(fd, &res->st));
		return;
	case DFS_OP_TRY_LOCK:
		res->err = neg(flock(fd, LOCK_EX | LOCK_NB));
		return;
	case DFS_OP_UNLOCK:
		res->err = neg(flock(fd, LOCK_UN));
		return;
	case DFS_OP_CLOSE:
		if (f->temp_path != NULL)
			do_rollback(f);  /* an uncommitted temp file is junk */
		res->err = fd >= 0 ? neg(close(fd)) : 0;
		f->fd = -1;
		return;
	case DFS_OP_STAT:
		res->err = neg(stat(req->path, &res->st));
		return;
	case DFS_OP_UNLINK:
		res->err = neg(unlink(req->path));
		return;
	case DFS_OP_RENAME:
		res->err = neg(rename(req->path, req->path2));
		return;
	case DFS_OP_MKDIR:
		res->err = neg(mkdir(req->path, req->mode));
		return;
	case DFS_OP_FSYNC_DIR:
		fd = open(req->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		res->err = fd < 0 ? -errno : neg(fsync(fd));
		if (fd >= 0)
			close(fd);
		return;
	default:
		res->err = -ENOSYS;
		return;
	}
	if (n < 0)
		res->err = (int)n;
	else
		res->n = n;
}

struct dfs_layer *dfs_posix_new(void)
{
	struct dfs_layer *l = calloc(1, sizeof(*l));

	if (l != NULL) {
		l->name = "posix";
		l->exec = posix_exec;
	}
	return l;
}
