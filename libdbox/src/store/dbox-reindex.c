/* dbox-reindex.c - rebuild the index from the dbox files (force-resync).
 *
 * Everything is done in one index transaction: readers see the old index
 * until the new one is complete.  What the files cannot tell (flags,
 * keywords, maildir names, which mailbox a moved mdbox message is in, uids
 * of mdbox messages) is taken from the old index for every message found
 * at the same place with the same GUID; mailboxes keep their ids, so inode
 * numbers on a mount stay the same.  Messages new to the index go where
 * Dovecot's rebuild would put them: sdbox by file, mdbox to the mailbox
 * named by B (INBOX without one), with new uids. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index/dindex-file.h"
#include "index/dindex-mailbox.h"
#include "index/dindex-msg.h"
#include "index/dindex-reindex.h"
#include "store/dbox-scan.h"
#include "store/store-private.h"

struct reindex_ctx {
	struct dbox_store *store;
	struct dbox_err *err;
	int count;
	int problems;
	uint32_t broken_file;   /* the mdbox file just scanned was damaged */
};

static void reindex_problem(void *ctx, const char *path, uint64_t offset,
			    const char *what)
{
	struct reindex_ctx *rc = ctx;

	rc->problems++;
	dbox_log(DBOX_LOG_WARNING, "reindex: %s (offset %llu): %s", path,
		 (unsigned long long)offset, what);
}

static int ensure_mailbox(struct reindex_ctx *rc, const char *name,
			  struct dbox_mailbox *box_r)
{
	char guid[33];
	uint32_t uidv;
	int ret = dbox_mailbox_lookup(rc->store, name, box_r, NULL);

	if (ret != -ENOENT)
		return ret;
	if (!dbox_mailbox_name_valid(name)) {
		dbox_log(DBOX_LOG_WARNING, "reindex: skipping mailbox with an "
			 "unusable name: %s", name);
		return -EINVAL;
	}
	dbox_guid_generate(guid);
	uidv = rc->store->readonly ? (uint32_t)dbox_now() :
		dbox_uidvalidity_next(rc->store->root);
	return dbox_mailbox_insert(rc->store, name, guid, uidv, 1, box_r,
				   rc->err);
}

static int insert_taken(void *ctx, const struct dbox_msg *old)
{
	struct reindex_ctx *rc = ctx;
	struct dbox_msg m = *old;
	int ret = dbox_msg_insert(rc->store, &m, NULL);

	if (ret == -EEXIST) {
		/* its name was taken by a message found earlier */
		dbox_msg_derive_base(&m, m.base, sizeof(m.base));
		ret = dbox_msg_insert(rc->store, &m, rc->err);
	}
	return ret;
}

/* Old rows are moved aside into a temp table at the start; a found record
 * takes over the old state of the row(s) at the same place. */
static int take_old(struct reindex_ctx *rc, const struct dbox_msg *found,
		    int64_t sdbox_box, int *taken_r)
{
	return dindex_reindex_take_old(rc->store->idx, found, sdbox_box,
				       insert_taken, rc, taken_r, rc->err);
}

static int new_message(struct reindex_ctx *rc, struct dbox_msg *m,
		       const char *mailbox, const struct dbox_record *rec)
{
	char name[PATH_MAX];
	struct dbox_mailbox box;
	int ret;

	if (mailbox == NULL) {
		/* mdbox: B names the mailbox (storage name) */
		if (rec->meta.orig_mailbox == NULL ||
		    dbox_storage_to_name(rec->meta.orig_mailbox, name,
					 sizeof(name)) < 0 ||
		    !dbox_mailbox_name_valid(name))
			snprintf(name, sizeof(name), "INBOX");
		mailbox = name;
	}
	ret = ensure_mailbox(rc, mailbox, &box);
	if (ret == -EINVAL)
		ret = ensure_mailbox(rc, "INBOX", &box);
	if (ret < 0)
		return ret;
	m->mailbox_id = box.id;
	if (m->uid == 0) {
		ret = dbox_mailbox_alloc_uids(rc->store, box.id, 1, &m->uid,
					      rc->err);
		if (ret < 0)
			return ret;
	}
	m->saved = dbox_now();
	m->in_new = false;
	if (rec->meta.maildir_base != NULL && rec->meta.maildir_base[0] &&
	    strchr(rec->meta.maildir_base, '/') == NULL &&
	    dbox_msg_lookup_base(rc->store, box.id, rec->meta.maildir_base,
				 NULL, NULL) == -ENOENT)
		snprintf(m->base, sizeof(m->base), "%s", rec->meta.maildir_base);
	else
		dbox_msg_derive_base(m, m->base, sizeof(m->base));
	ret = dbox_msg_insert(rc->store, m, rc->err);
	if (ret == 0 && dbox_msg_where(m)->file_id == 0)
		ret = dindex_mailbox_raise_next_uid(rc->store->idx, box.id,
						    m->uid, rc->err);
	return ret;
}

static int reindex_record(void *ctx, const char *mailbox, uint32_t file_id,
			  uint32_t uid, const struct dbox_record *rec)
{
	struct reindex_ctx *rc = ctx;
	struct dbox_mailbox box;
	struct dbox_msg m = { 0 };
	int taken, ret;

	if (rec->meta.guid == NULL) {
		reindex_problem(rc, mailbox ? mailbox : "storage", rec->offset,
				"record without GUID");
	}
	dbox_msg_from_record(&m, rec);
	dbox_msg_where(&m)->file_id = file_id;
	m.uid = uid;
	box.id = 0;
	if (mailbox != NULL && (ret = ensure_mailbox(rc, mailbox, &box)) < 0)
		return ret == -EINVAL ? 0 : ret;
	ret = take_old(rc, &m, box.id, &taken);
	if (ret == 0 && taken == 0)
		ret = new_message(rc, &m, mailbox, rec);
	if (ret == 0)
		rc->count++;
	return ret;
}

/* What lies beyond damage cannot be found by walking the file, but the
 * old index knew where its messages were: keep those rows, so the damage
 * costs only the damaged message (reads of it fail, the rest still read).
 * Nothing is dropped that a later repair could still recover. */
static int reindex_broken(void *ctx, const char *mailbox, uint32_t file_id,
			  uint32_t uid, uint64_t offset)
{
	struct reindex_ctx *rc = ctx;
	struct dbox_mailbox box = { .id = 0 };
	int ret;

	if (file_id != 0) {
		rc->broken_file = file_id;
	} else {
		ret = ensure_mailbox(rc, mailbox, &box);
		if (ret < 0)
			return ret == -EINVAL ? 0 : ret;
	}
	return dindex_reindex_keep_old(rc->store->idx, file_id, offset, box.id,
				       uid, &rc->count, rc->err);
}

static int reindex_file(void *ctx, uint32_t file_id, uint64_t good_end,
			int64_t create_time)
{
	struct reindex_ctx *rc = ctx;
	bool sealed = rc->broken_file == file_id;
	uint64_t size = good_end;
	char path[PATH_MAX];
	struct stat sb;

	if (sealed) {
		/* recovery must not cut the damaged file back to its last
		 * good record, and nothing may be appended after damage */
		dbox_mdbox_path(rc->store, file_id, path, sizeof(path));
		if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > size)
			size = (uint64_t)sb.st_size;
	}
	return dindex_file_insert(rc->store->idx, file_id, size, create_time,
				  sealed, rc->err);
}

static int mark_seen(void *ctx, const char *name)
{
	struct reindex_ctx *rc = ctx;
	struct dbox_mailbox box;
	int ret = ensure_mailbox(rc, name, &box);

	if (ret == -EINVAL)
		return 0;
	if (ret < 0)
		return ret;
	return dindex_reindex_seen(rc->store->idx, box.id, rc->err);
}

static int reindex_files(struct dbox_store *store, struct dbox_err *err);

static int count_messages(struct dbox_store *store, struct dbox_err *err)
{
	int n, ret = dindex_msgs_total(store->idx, &n, err);

	return ret < 0 ? ret : n;
}

int dbox_store_reindex(struct dbox_store *store, struct dbox_err *err)
{
	int ret;

	if (store->origin == DBOX_ORIGIN_DOVECOT) {
		ret = dbox_dovecot_reindex(store, err);
		if (ret != -EOPNOTSUPP)
			return ret < 0 ? ret : count_messages(store, err);
	}
	return reindex_files(store, err);
}

static int reindex_files(struct dbox_store *store, struct dbox_err *err)
{
	struct reindex_ctx rc = { .store = store, .err = err };
	struct dbox_scan_ops ops = {
		.mailbox = mark_seen,
		.record = reindex_record,
		.file = reindex_file,
		.broken = reindex_broken,
		.problem = reindex_problem,
	};
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = dindex_reindex_begin(store->idx, err);
	if (ret == 0)
		ret = dbox_scan_mailboxes(store, &ops, &rc);
	if (ret == 0)
		ret = dbox_scan_records(store, &ops, &rc);
	if (ret == 0)
		ret = dindex_reindex_finish(store->idx, err);
	if (ret < 0) {
		dindex_reindex_abort(store->idx);
		return ret;
	}
	ret = dindex_write_commit(store->idx, err);
	return ret < 0 ? ret : rc.count;
}
