/* dovecot-file.h - read-only file access for the Dovecot index reader.
 *
 * The reader never writes, never locks (Dovecot's readers don't) and
 * reads each file through one descriptor, so that a file replaced by
 * rename() meanwhile is still read consistently.  Thread-safe (no shared
 * state). */
#ifndef DOVI_FILE_H
#define DOVI_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "dbox/store.h"

/* Largest index or log file the reader accepts (Dovecot rotates logs at
 * 1 MiB and a huge dovecot.index would be millions of messages). */
#define DOVI_FILE_MAX ((uint64_t)1024 * 1024 * 1024)

/* Opens path O_RDONLY.  Returns the fd, or -errno (err set; -ENOENT is
 * an ordinary result for optional files). */
int dovi_file_open(const char *path, struct dbox_err *err);

/* Reads [off, EOF) of fd into a malloc()ed buffer (*buf_r may be NULL
 * when nothing is there).  -EFBIG above DOVI_FILE_MAX. */
int dovi_file_read(int fd, uint64_t off, const char *path, uint8_t **buf_r,
		   size_t *len_r, struct dbox_err *err);

/* Identity of a file, to notice that it changed (or appeared). */
struct dovi_file_sig {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* stat()s path; a missing file gives exists = false. */
void dovi_file_sig_get(const char *path, struct dovi_file_sig *sig);
bool dovi_file_sig_equal(const struct dovi_file_sig *a,
			 const struct dovi_file_sig *b);

#endif
