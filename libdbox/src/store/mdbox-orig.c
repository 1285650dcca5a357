/* mdbox-orig.c - B of a moved mdbox record rewritten in place (see .h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dbox/format.h"
#include "store/mdbox-orig.h"
#include "store/store-private.h"

/* Longer metadata is not ours: never rewritten. */
#define ORIG_META_MAX (64u * 1024)

/* Where the metadata lines of msg's record are (after the post magic)
 * and how long; false if the index does not know the record's length. */
static bool meta_span(const struct dbox_msg *msg, uint64_t *off_r,
		      size_t *len_r)
{
	uint64_t before = dbox_msg_meta_at(msg) - dbox_msg_where(msg)->offset +
		DBOX_MAGIC_POST_LEN;

	if (dbox_msg_where(msg)->rec_size <= before + 1 ||
	    dbox_msg_where(msg)->rec_size - before > ORIG_META_MAX)
		return false;
	*off_r = dbox_msg_where(msg)->offset + before;
	*len_r = (size_t)(dbox_msg_where(msg)->rec_size - before);
	return true;
}

static int storage_name(struct dbox_store *store, int64_t mailbox_id,
			char *buf, size_t len, struct dbox_err *err)
{
	char name[DBOX_NAME_MAX * 4 + 1];
	int ret = dbox_mailbox_name_of(store, mailbox_id, name, sizeof(name),
				       err);

	if (ret < 0)
		return ret;
	if (dbox_name_to_storage(name, buf, len) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "mailbox name %s", name);
	return 0;
}

/* lines (len bytes at off of file) with B = storage, written back and
 * made durable unless they say so already. */
static int rewrite(struct dfs_file *file, uint64_t off, char *lines,
		   size_t len, const char *storage, struct dbox_err *err)
{
	char *out = malloc(len);
	size_t n = 0;
	int ret = out == NULL ? -ENOMEM : 0;

	if (ret == 0)
		ret = dfs_sync_pread(file, lines, len, (off_t)off, &n);
	if (ret == 0 && n != len)
		ret = -EIO;   /* the index's record is longer than the file */
	if (ret == 0)
		ret = dbox_meta_set_orig_mailbox(lines, len, storage, out);
	if (ret == 0 && memcmp(out, lines, len) != 0) {
		ret = dfs_sync_pwrite(file, out, len, (off_t)off);
		if (ret == 0)
			ret = dfs_sync_fsync(file);
	}
	free(out);
	if (ret < 0 && ret != -ENOSPC)
		return dbox_fail(err, ret, "original mailbox of %s (offset "
				 "%llu): %s", dfs_file_path(file),
				 (unsigned long long)off, strerror(-ret));
	return ret;
}

int mdbox_orig_set(struct dbox_store *store, const struct dbox_msg *msg,
		   int64_t mailbox_id, struct dbox_err *err)
{
	char storage[PATH_MAX], path[PATH_MAX], *lines;
	struct dfs_file *file;
	uint64_t off;
	size_t len;
	int ret;

	if (dbox_msg_where(msg)->file_id == 0 || !meta_span(msg, &off, &len))
		return 0;
	ret = storage_name(store, mailbox_id, storage, sizeof(storage), err);
	if (ret < 0)
		return ret;
	ret = dbox_msg_file_path(store, msg, path, sizeof(path));
	if (ret < 0)
		return dbox_fail(err, ret, "path of message");
	ret = dfs_sync_open(dbox_store_fs(store), path, O_RDWR | O_CLOEXEC, 0,
			    &file);
	if (ret < 0)
		return dbox_fail(err, ret, "open %s: %s", path, strerror(-ret));
	lines = malloc(len);
	ret = lines == NULL ? dbox_fail(err, -ENOMEM, "out of memory") :
		rewrite(file, off, lines, len, storage, err);
	free(lines);
	dfs_sync_close(file);
	if (ret == -ENOSPC)
		dbox_log(DBOX_LOG_WARNING, "%s (offset %llu): no room to "
			 "record mailbox %s in the record; Dovecot's rebuild "
			 "(force-resync) would put the message back where it "
			 "was first saved", path,
			 (unsigned long long)dbox_msg_where(msg)->offset,
			 storage);
	return ret;
}
