/* dbox-scan.h - walking a store tree: mailbox directories and the records
 * of every dbox file, never trusting anything but the files. */
#ifndef DBOX_SCAN_H
#define DBOX_SCAN_H

#include "dbox/format.h"
#include "dbox/store.h"

struct dbox_scan_ops {
	/* a mailboxes/<storage>/dbox-Mails directory (name decoded) */
	int (*mailbox)(void *ctx, const char *name);
	/* a complete record; for sdbox file_id = 0 and uid from u.<uid>,
	 * for mdbox uid = 0 */
	int (*record)(void *ctx, const char *mailbox, uint32_t file_id,
		      uint32_t uid, const struct dbox_record *rec);
	/* an mdbox file: its id and the end of its last good record */
	int (*file)(void *ctx, uint32_t file_id, uint64_t good_end,
		    int64_t create_time);
	/* a record that does not frame: nothing after it in this file is
	 * reachable by walking (optional) */
	int (*broken)(void *ctx, const char *mailbox, uint32_t file_id,
		      uint32_t uid, uint64_t offset);
	/* something that is not a good record: path, offset, reason */
	void (*problem)(void *ctx, const char *path, uint64_t offset,
			const char *what);
};

/* Returns 0 or the first negative value a callback returned.  Problems in
 * the files are reported, not returned. */
int dbox_scan_mailboxes(struct dbox_store *store,
			const struct dbox_scan_ops *ops, void *ctx);
/* sdbox: every u.N of every mailbox; mdbox: every m.N in id order. */
int dbox_scan_records(struct dbox_store *store,
		      const struct dbox_scan_ops *ops, void *ctx);
/* All records of one dbox file from its start up to `limit` (0 = its
 * size); returns the end of the last good record via *good_end_r. */
int dbox_scan_file(const char *path, uint64_t limit,
		   const struct dbox_scan_ops *ops, void *ctx,
		   const char *mailbox, uint32_t file_id, uint32_t uid,
		   uint64_t *good_end_r);

/* The ids of the m.<id> files in dir (not m.N.broken and the like), in
 * ascending order; *ids_r is malloc'ed.  -errno if dir cannot be read. */
int dbox_scan_mfile_ids(const char *dir, uint32_t **ids_r, size_t *count_r);

#endif
