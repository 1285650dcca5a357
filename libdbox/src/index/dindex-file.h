/* dindex-file.h - the files table (committed ends of mdbox m.N files)
 * and the index side of a purge: rows moved to a record's new place,
 * and the marks of files that hold records nobody references. */
#ifndef DINDEX_FILE_H
#define DINDEX_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

struct dindex;

/* A row of the files table; a non-zero return stops the walk and is
 * returned (> 0: stopped on purpose). */
typedef int dindex_file_fn(void *ctx, uint32_t file_id, uint64_t size,
			   bool sealed);

/* The committed end of m.<file_id>; -ENOENT (no message) if the index
 * does not know the file. */
int dindex_file_size(struct dindex *idx, uint32_t file_id, uint64_t *size_r,
		     struct dbox_err *err);
/* Every file, newest (highest id) first. */
int dindex_files_newest(struct dindex *idx, dindex_file_fn *fn, void *ctx,
			struct dbox_err *err);
/* Every file, oldest first (sealed is not read: false). */
int dindex_files_each(struct dindex *idx, dindex_file_fn *fn, void *ctx,
		      struct dbox_err *err);
int dindex_file_insert(struct dindex *idx, uint32_t file_id, uint64_t size,
		       int64_t created, bool sealed, struct dbox_err *err);
int dindex_file_set_size(struct dindex *idx, uint32_t file_id, uint64_t size,
			 struct dbox_err *err);
/* No appends after its committed end any more (damage, or records lost
 * with the power there). */
int dindex_file_seal(struct dindex *idx, uint32_t file_id,
		     struct dbox_err *err);
int dindex_file_delete(struct dindex *idx, uint32_t file_id,
		       struct dbox_err *err);

/* How many message rows point at the record at (file_id, offset);
 * -EIO (no message) on failure. */
int dindex_file_refs_at(struct dindex *idx, uint32_t file_id,
			uint64_t offset, int64_t *count_r);
/* A message row at the record (file_id, offset): -ENOENT if none. */
int dindex_file_msg_at(struct dindex *idx, uint32_t file_id, uint64_t offset,
		       int64_t *mailbox_id_r, uint32_t *uid_r);
/* Whether any message row points into m.<file_id>; a failed lookup
 * counts as none (as the purge always had it). */
bool dindex_file_referenced(struct dindex *idx, uint32_t file_id);
/* The rows of the record at (old_id, old_offset) now point at
 * (new_id, new_offset); *moved_r = false when no row was there. */
int dindex_file_move_rec(struct dindex *idx, uint32_t old_id,
			 uint64_t old_offset, uint32_t new_id,
			 uint64_t new_offset, bool *moved_r,
			 struct dbox_err *err);

/* Purge marks (meta "purge.<id>" = a fresh token per expunge). */
typedef int dindex_mark_fn(void *ctx, uint32_t file_id, const char *token);
int dindex_purge_marks(struct dindex *idx, dindex_mark_fn *fn, void *ctx,
		       struct dbox_err *err);
int dindex_purge_mark(struct dindex *idx, uint32_t file_id,
		      const char *token, struct dbox_err *err);
/* Removes the mark of file_id if it still has token (NULL: any). */
int dindex_purge_unmark(struct dindex *idx, uint32_t file_id,
			const char *token, struct dbox_err *err);

#endif
