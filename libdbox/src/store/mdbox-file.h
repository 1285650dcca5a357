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

#include "dbox/dovecot-index.h"
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

/* Dovecot's map of the tree (storage/dovecot.map.index), read on first
 * use and kept for the caller's walk over files; NULL map: none (Dovecot
 * never wrote here).  Zero-initialised by the caller, freed with
 * mdbox_dovecot_map_free.  One walk, one thread. */
struct mdbox_dovecot_map {
	bool loaded;
	int ret;                    /* of the load: 0, or -errno */
	struct dovi_index *map;
};
void mdbox_dovecot_map_free(struct mdbox_dovecot_map *dm);

/* The committed end of m.<file_id>, a file of file_size bytes.  In a tree
 * taken over, Dovecot's map lists our m.N too (the hand-back writes our
 * records into it) and Dovecot appends to such a file while nobody holds
 * its flock, after the last record its map has for it: so the committed
 * end is the later of our index's (*ours_r) and of the end of the last
 * record the map places in the file (*end_r).  The map is read only when
 * the file has bytes beyond ours; a map that exists but cannot be read
 * says nothing of what Dovecot committed: *end_r = UINT64_MAX.  Called
 * under the file's flock, the answer is stable: Dovecot commits its map
 * before it unlocks the file it appended to.  Returns 0, -ENOENT if our
 * index does not know the file (*ours_r = 0, *end_r still computed), or
 * another negative errno from the index. */
int mdbox_file_committed_end(struct dbox_store *store,
			     struct mdbox_dovecot_map *dm, uint32_t file_id,
			     uint64_t file_size, uint64_t *ours_r,
			     uint64_t *end_r, struct dbox_err *err);

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
