/* dindex-meta.h - the meta table: the store's settings (format, origin,
 * rotate_size, root, tree) and the change sequence. */
#ifndef DINDEX_META_H
#define DINDEX_META_H

#include <stddef.h>
#include <stdint.h>

#include "dbox/store.h"

struct dindex;

/* -ENOENT (with a message) if the key is not set. */
int dindex_meta_get(struct dindex *idx, const char *key, char *buf,
		    size_t buflen, struct dbox_err *err);
/* The key of the index file at path, read as an immutable file: no
 * -shm or -wal is made beside it (a read-only look into a tree).  0, or
 * -errno (-ENOENT if it has no such key). */
int dindex_meta_peek(const char *path, const char *key, char *buf,
		     size_t buflen);
int dindex_meta_set(struct dindex *idx, const char *key, const char *value,
		    struct dbox_err *err);
/* Store-wide change sequence: bumped by every write transaction. */
int dindex_seq(struct dindex *idx, uint64_t *seq_r, struct dbox_err *err);

#endif
