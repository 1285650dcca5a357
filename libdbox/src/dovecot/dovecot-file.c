/* dovecot-file.c - read-only file access (see dovecot-file.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dovecot/dovecot-file.h"
#include "util/util.h"

int dovi_file_open(const char *path, struct dbox_err *err)
{
	int fd = dbox_open_regular(path, O_RDONLY, 0);

	if (fd == -EBADMSG)
		return dbox_fail(err, fd, "open(%s): a symbolic link or not a "
				 "regular file", path);
	if (fd < 0)
		return dbox_fail(err, fd, "open(%s): %s", path, strerror(-fd));
	return fd;
}

int dovi_file_read(int fd, uint64_t off, const char *path, uint8_t **buf_r,
		   size_t *len_r, struct dbox_err *err)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0, cap;

	*buf_r = NULL;
	*len_r = 0;
	if (fstat(fd, &st) < 0)
		return dbox_fail(err, -errno, "fstat(%s): %s", path,
				 strerror(errno));
	if ((uint64_t)st.st_size > DOVI_FILE_MAX)
		return dbox_fail(err, -EFBIG, "%s: %lld bytes is more than "
				 "an index file can sensibly be", path,
				 (long long)st.st_size);
	if ((uint64_t)st.st_size <= off)
		return 0;
	/* +1 so that growth while reading is noticed without a realloc */
	cap = (size_t)((uint64_t)st.st_size - off) + 1;
	buf = malloc(cap);
	if (buf == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	for (;;) {
		ssize_t n = pread(fd, buf + len, cap - len, (off_t)(off + len));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			return dbox_fail(err, -e, "read(%s): %s", path,
					 strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			/* the file grows while we read (a writer appends):
			 * what we have is a consistent prefix, which is
			 * all a log reader may assume anyway */
			break;
		}
	}
	*buf_r = buf;
	*len_r = len;
	return 0;
}

void dovi_file_sig_get(const char *path, struct dovi_file_sig *sig)
{
	struct stat st;

	memset(sig, 0, sizeof(*sig));
	if (stat(path, &st) < 0)
		return;
	sig->exists = true;
	sig->dev = st.st_dev;
	sig->ino = st.st_ino;
	sig->size = st.st_size;
	sig->mtime = st.st_mtim;
}

bool dovi_file_sig_equal(const struct dovi_file_sig *a,
			 const struct dovi_file_sig *b)
{
	return a->exists == b->exists && a->dev == b->dev &&
		a->ino == b->ino && a->size == b->size &&
		a->mtime.tv_sec == b->mtime.tv_sec &&
		a->mtime.tv_nsec == b->mtime.tv_nsec;
}
