/* util.c - error formatting, paths and directory helpers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

int dbox_fail(struct dbox_err *err, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return ret;
}

int dbox_fail_prefix(struct dbox_err *err, int ret, const char *fmt, ...)
{
	char prefix[256], old[sizeof(err->msg)];
	va_list ap;

	if (err == NULL)
		return ret;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	size_t n = strlen(prefix);

	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, n);
	memcpy(err->msg + n, ": ", 2);
	n += 2;
	size_t rest = strlen(old);

	if (rest > sizeof(err->msg) - 1 - n)
		rest = sizeof(err->msg) - 1 - n;
	memcpy(err->msg + n, old, rest);
	err->msg[n + rest] = '\0';
	return ret;
}

int dbox_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int dbox_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

static int remove_at(int dirfd, const char *name)
{
	int fd, ret = 0;
	DIR *dir;
	struct dirent *d;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return -errno;
	}
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (ret == 0)
			ret = remove_at(fd, d->d_name);
	}
	closedir(dir);
	if (ret == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		ret = -errno;
	return ret;
}

int dbox_remove_tree(const char *path)
{
	return remove_at(AT_FDCWD, path);
}

int dbox_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int dbox_fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL)
		return dbox_fsync_dir(".");
	n = (size_t)(slash - path);
	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return dbox_fsync_dir(n == 0 ? "/" : dir);
}

int64_t dbox_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t dbox_now(void)
{
	return (int64_t)time(NULL);
}

static void default_log(void *ctx, enum dbox_log_level level, const char *msg)
{
	static const char *const names[8] = {
		[DBOX_LOG_ERROR] = "error", [DBOX_LOG_WARNING] = "warning",
		[DBOX_LOG_INFO] = "info", [DBOX_LOG_DEBUG] = "debug",
	};

	(void)ctx;
	if (level != DBOX_LOG_DEBUG)
		fprintf(stderr, "libdbox %s: %s\n", names[level & 7], msg);
}

static dbox_log_handler *log_fn = default_log;
static void *log_ctx;

void dbox_set_log_handler(dbox_log_handler *fn, void *ctx)
{
	log_fn = fn != NULL ? fn : default_log;
	log_ctx = ctx;
}

void dbox_log(enum dbox_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(log_ctx, level, msg);
}

int dbox_open_regular(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
		      O_NOCTTY, mode);
	struct stat st;

	if (fd < 0 && errno == ELOOP) {
		dbox_log(DBOX_LOG_ERROR, "%s: a symbolic link in the store: "
			 "not followed", path);
		return -EBADMSG;
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		dbox_log(DBOX_LOG_ERROR, "%s: not a regular file (a FIFO, "
			 "socket or device in the store): not read", path);
		return -EBADMSG;
	}
	/* regular files ignore O_NONBLOCK; cleared all the same, keeping
	 * the other flags F_SETFL sets as they were opened (no F_GETFL:
	 * one system call less per file read) */
	fcntl(fd, F_SETFL, flags & (O_APPEND | O_ASYNC | O_DIRECT |
				    O_NOATIME));
	return fd;
}
