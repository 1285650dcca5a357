/* dbox-rfile.c - a dbox file kept open for reading its records. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/dbox-rfile.h"
#include "util/util.h"

void dbox_rfile_init(struct dbox_rfile *f)
{
	f->path[0] = '\0';
	f->fd = -1;
	f->ok = false;
}

enum dbox_rfile_state dbox_rfile_open(struct dbox_rfile *f, const char *path,
				      int *errno_r, char *reason,
				      size_t reason_len)
{
	struct dbox_reader rd;
	struct stat st;

	if (f->fd >= 0 && strcmp(f->path, path) == 0)
		return f->ok ? DBOX_RFILE_READY : DBOX_RFILE_FAILED_BEFORE;
	if (f->fd >= 0)
		close(f->fd);
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->ok = false;
	f->fd = dbox_open_regular(path, O_RDONLY, 0);
	if (f->fd < 0 || fstat(f->fd, &st) < 0) {
		*errno_r = f->fd < 0 ? -f->fd : errno;
		return DBOX_RFILE_CANNOT_OPEN;
	}
	f->size = (uint64_t)st.st_size;
	dbox_reader_init_fd(&rd, f->fd);
	if (dbox_file_hdr_read(&rd, &f->hdr, reason, reason_len) < 0)
		return DBOX_RFILE_BAD_HEADER;
	f->ok = true;
	return DBOX_RFILE_READY;
}

int dbox_rfile_record(struct dbox_rfile *f, uint64_t offset,
		      struct dbox_record *rec, char *reason, size_t reason_len)
{
	struct dbox_reader rd;

	dbox_reader_init_fd(&rd, f->fd);
	return dbox_record_read(&rd, &f->hdr, offset, f->size, rec, reason,
				reason_len);
}

void dbox_rfile_close(struct dbox_rfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}
