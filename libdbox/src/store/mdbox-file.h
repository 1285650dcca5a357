/* mdbox-file.h - choosing, locking and creating m.N files to append to.
 *
 * Rules (dbox-format.md 5.4 and 9): an appender holds flock(LOCK_EX) on the
 * m.N it appends to until its index commit (a file it created and filled
 * may be closed before, see mdbox_append_close); appends go strictly after
 * the committed end recorded in the index (files.size); a new file is created
 * with O_EXCL under the next free id and enters the index only with the
 * commit of the transaction that filled it.  Every m.N a writer holds is
 * also hard-linked into its owner directory; after a crash dbox_recover
 * cuts those files back to their committed end, or removes the ones the
 * index does not know, and touches no other m.N (Dovecot's files).  A
 * file with bytes beyond its committed end is never appended to.
 */
#ifndef MDBOX_FILE_H
#define MDBOX_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/fs.h"
#include "dbox/store.h"

struct mdbox_append {
	uint32_t file_id;
	struct dfs_file *file;
	uint64_t committed;     /* index size when we locked it */
	uint64_t end;           /* where the next record goes */
	uint64_t synced_end;    /* durable up to here (0: not known) */
	bool created;           /* not in the index yet */
	struct mdbox_append *next;
};

/* The committed end of m.<file_id> as the index has it; -ENOENT if the
 * index does not know the file. */
int mdbox_file_committed(struct dbox_store *store, uint32_t file_id,
			 uint64_t *size_r, struct dbox_err *err);

/* Gets a locked file with room for another message: the newest file of
 * the index that nobody holds and that is below rotate_size, else a new
 * one.  need: bytes the caller is about to append if known (0 if not);
 * a message of rotate_size or more gets a new file.  The caller owns the
 * result (release with mdbox_append_release). */
int mdbox_append_get(struct dbox_store *store, uint64_t need,
		     struct mdbox_append **app_r, struct dbox_err *err);
/* Data durable (fdatasync). */
int mdbox_append_sync(struct mdbox_append *app, struct dbox_err *err);
/* A file this appender created and will not append to again: its data
 * made durable and its descriptor closed (app->file = NULL), so that a
 * transaction filling any number of m.N holds a fixed number open.  Its
 * lock goes with the descriptor, which is safe for a file the index does
 * not know: no one else appends to it (only the index's files are
 * candidates), purge does not see it, and recovery and check leave a
 * live owner's marked files alone.  No-op for a file of the index. */
int mdbox_append_close(struct mdbox_append *app, struct dbox_err *err);
/* Inside the commit's index write: record the new committed end. */
int mdbox_append_record(struct dbox_store *store, struct mdbox_append *app,
			struct dbox_err *err);
/* rollback = true: cut the file back to its committed end (or unlink a new
 * one) first; false: what was appended is committed now.  The file then
 * stays open and locked for the next transaction of this store if it has
 * room (one such file is kept), else it is unlocked and closed. */
void mdbox_append_release(struct dbox_store *store, struct mdbox_append *app,
			  bool rollback);
/* Closes the kept file (store shutdown). */
void mdbox_append_cache_clear(struct dbox_store *store);

#endif
