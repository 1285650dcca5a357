/* dbox-rfile.h - one dbox file open for reading records, kept while the
 * records asked for stay in that file (a walk over the rows of one m.N),
 * with its header parsed once. */
#ifndef DBOX_RFILE_H
#define DBOX_RFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/format.h"

struct dbox_rfile {
	char path[PATH_MAX];
	int fd;                   /* -1: none open */
	struct dbox_file_hdr hdr;
	uint64_t size;
	bool ok;                  /* its header is good */
};

/* What dbox_rfile_open found: the file is ready, or failed when it was
 * opened earlier (reported then), or it failed now: it cannot be opened
 * (*errno_r: the errno; EBADMSG: a symbolic link or not a regular file)
 * or its header is bad (reason says why). */
enum dbox_rfile_state {
	DBOX_RFILE_READY,
	DBOX_RFILE_FAILED_BEFORE,
	DBOX_RFILE_CANNOT_OPEN,
	DBOX_RFILE_BAD_HEADER,
};

void dbox_rfile_init(struct dbox_rfile *f);
/* Makes path the open file (kept if it is already). */
enum dbox_rfile_state dbox_rfile_open(struct dbox_rfile *f, const char *path,
				      int *errno_r, char *reason,
				      size_t reason_len);
/* Reads the record at offset (parsed as dbox_record_read does). */
int dbox_rfile_record(struct dbox_rfile *f, uint64_t offset,
		      struct dbox_record *rec, char *reason, size_t reason_len);
void dbox_rfile_close(struct dbox_rfile *f);

#endif
