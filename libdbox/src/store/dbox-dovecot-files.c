/* dbox-dovecot-files.c - sdbox: a mailbox whose Dovecot index is missing
 * or unusable, indexed from its u.N files alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "dbox/dovecot-index.h"
#include "index/dindex-mailbox.h"
#include "index/dindex-msg.h"
#include "store/dbox-dovecot-private.h"
#include "store/dbox-rfile.h"
#include "store/dbox-scan.h"
#include "store/store-private.h"

/* ------------------------------------------- sdbox: the files alone */

struct files_ctx {
	struct dbox_store *store;
	struct dovecot_box *b;
	struct dbox_err *err;
	uint32_t max_uid;
};

static int files_record(void *ctx, const char *mailbox, uint32_t file_id,
			uint32_t uid, const struct dbox_record *rec)
{
	struct files_ctx *fc = ctx;
	struct dbox_msg msg = { 0 };
	int ret;

	if (uid > fc->max_uid)
		fc->max_uid = uid;
	if (dbox_msg_get(fc->store, fc->b->id, uid, NULL, NULL) == 0)
		return 0;  /* known: keep the state we had */
	dbox_msg_from_record(&msg, rec);
	msg.mailbox_id = fc->b->id;
	msg.uid = uid;
	msg.saved = dbox_now();
	dbox_msg_derive_base(&msg, msg.base, sizeof(msg.base));
	ret = dbox_msg_insert(fc->store, &msg, fc->err);
	return ret < 0 ? ret : dbox_mailbox_touch(fc->store, fc->b->id, false,
						   true, fc->err);
}

static void files_problem(void *ctx, const char *path, uint64_t offset,
			  const char *what)
{
	dbox_log(DBOX_LOG_WARNING, "%s (offset %llu): %s", path,
		 (unsigned long long)offset, what);
}

int dbox_dovecot_sync_box_files(struct dbox_store *store, struct dovecot_box *b,
				struct dbox_err *err)
{
	struct dbox_scan_ops ops = { .record = files_record,
				     .problem = files_problem };
	struct files_ctx fc = { store, b, err, 0 };
	struct dbox_mailbox box;
	struct our_rows o = { 0 };
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *e;
	uint64_t good;
	DIR *d;
	int ret = dbox_mailbox_lookup(store, b->name, &box, NULL);

	if (!b->warned) {
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: its messages come from "
			 "its u.N files alone (no flags or keywords)", b->name);
		b->warned = true;
	}
	if (ret == -ENOENT) {
		char guid[33];

		dbox_guid_generate(guid);
		ret = dbox_mailbox_insert(store, b->name, guid,
					  dbox_dovecot_new_uidvalidity(store), 1,
					  &box, err);
	}
	if (ret < 0)
		return ret;
	b->id = box.id;
	if (dbox_path(dir, sizeof(dir), "%s/%s/%s/%s", store->root,
		      DBOX_MAILBOX_DIR, b->storage, DBOX_MAIL_DIRNAME) < 0)
		return 0;
	d = opendir(dir);
	while (d != NULL && ret == 0 && (e = readdir(d)) != NULL) {
		char *end;
		unsigned long uid = strncmp(e->d_name, "u.", 2) == 0 ?
			strtoul(e->d_name + 2, &end, 10) : 0;

		if (uid == 0 || uid > UINT32_MAX || *end != '\0' ||
		    dbox_path(path, sizeof(path), "%s/%s", dir, e->d_name) < 0)
			continue;
		ret = dbox_scan_file(path, 0, &ops, &fc, b->name, 0,
				     (uint32_t)uid, &good);
	}
	if (d != NULL)
		closedir(d);
	/* rows whose file is gone */
	if (ret == 0)
		ret = dbox_msg_list(store, b->id, 0, -1, 0,
				    dbox_dovecot_collect_uid, &o, err);
	for (size_t i = 0; ret >= 0 && i < o.count; i++) {
		struct stat st;

		dbox_sdbox_path(store, b->name, o.uids[i], path, sizeof(path));
		if (stat(path, &st) == 0)
			continue;
		ret = dindex_msg_delete(store->idx, b->id, o.uids[i], err);
	}
	free(o.uids);
	return ret < 0 ? ret : dindex_mailbox_raise_next_uid(store->idx, b->id,
							     fc.max_uid, err);
}

/* sdbox: an index that is missing or broken while u.N files are there.
 * A missing one of a mailbox we hold is no loss: it is one made through a
 * takeover mount (Dovecot indexes it at its next look), or one whose
 * files were indexed already. */
bool dbox_dovecot_sdbox_unusable(struct dbox_store *store,
				 struct dovecot_box *b)
{
	const struct dovi_index *idx;
	char dir[PATH_MAX];
	struct dirent *e;
	bool files = false;
	DIR *d;

	if (store->format != DBOX_FORMAT_SDBOX)
		return false;
	if (b->db == NULL)
		return true;
	idx = dovi_mailbox_index(b->db);
	if (idx != NULL && dovi_index_error_count(idx) == 0)
		return false;
	if (idx == NULL &&
	    dbox_mailbox_lookup(store, b->name, NULL, NULL) == 0)
		return false;
	if (dovi_mailbox_count(b->db) > 0)
		return false;
	if (dbox_path(dir, sizeof(dir), "%s", dovi_mailbox_dir(b->db)) < 0 ||
	    (d = opendir(dir)) == NULL)
		return false;
	while (!files && (e = readdir(d)) != NULL)
		files = strncmp(e->d_name, "u.", 2) == 0;
	closedir(d);
	return files;
}

