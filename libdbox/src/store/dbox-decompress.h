/* dbox-decompress.h - reading bodies stored by Dovecot's zlib plugin. */
#ifndef DBOX_DECOMPRESS_H
#define DBOX_DECOMPRESS_H

#include <sys/types.h>

#include "dbox/store.h"

/* Decompresses the whole body of msg (sizes of stored mail are modest and
 * every format here is a stream that cannot seek) and copies the range
 * asked for.  The last message decompressed by each thread is kept, so
 * that a reader walking a message chunk by chunk decompresses it once.
 * -ERANGE when the body decompresses whole but to fewer bytes than
 * msg->size: Dovecot's external attachments may hold the rest
 * (dbox-attach.c), else the record is corrupted.  Thread-safe. */
ssize_t dbox_decompress_pread(struct dbox_store *store,
			      const struct dbox_msg *msg, void *buf,
			      size_t len, uint64_t off, struct dbox_err *err);

/* Decompresses src (a body in format c) into a malloc'ed buffer; the
 * expected size (Z) bounds the output, which may be shorter (the caller
 * compares). */
int dbox_decompress(enum dbox_compression c, const unsigned char *src,
		    size_t src_len, uint64_t expected, unsigned char **out_r,
		    size_t *out_len_r, struct dbox_err *err);

#endif
