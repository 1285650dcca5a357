/* dbox-msg-read.c - a message's bytes: read (decompressed, attachments
 * put back) at once or asynchronously, moved from the file without a copy
 * (plain messages), or served from what the store read ahead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/dindex-msg.h"
#include "store/dbox-attach.h"
#include "store/dbox-decompress.h"
#include "store/dbox-msg-private.h"
#include "store/store-private.h"

ssize_t dbox_msg_read_cached(struct dbox_store *store,
			     const struct dbox_msg *msg, void *buf, size_t len,
			     uint64_t off)
{
	unsigned char hdr[256], *meta;
	size_t mlen = dbox_msg_meta_len(msg);
	char path[PATH_MAX];
	uint64_t body_at = dbox_msg_body_at(msg);
	int ret;

	if (!dbox_msg_is_plain(msg) ||
	    dbox_msg_where(msg)->hdr_size < DBOX_MSG_HEADER_SIZE ||
	    dbox_msg_where(msg)->hdr_size > sizeof(hdr) ||
	    dbox_msg_file_path(store, msg, path, sizeof(path)) < 0)
		return -ENOENT;
	if (off >= dbox_msg_where(msg)->body_size)
		return 0;
	if (len > dbox_msg_where(msg)->body_size - off)
		len = (size_t)(dbox_msg_where(msg)->body_size - off);
	meta = malloc(mlen);
	if (meta == NULL)
		return -ENOENT;
	ret = dbox_rcache_get(store, path, dbox_msg_where(msg)->offset,
			      dbox_msg_where(msg)->hdr_size, hdr);
	if (ret == 0)
		ret = dbox_rcache_get(store, path, body_at +
				      dbox_msg_where(msg)->body_size,
				      mlen, meta);
	if (ret == 0 &&
	    (dbox_msg_check_framing(path, msg, hdr,
				    dbox_msg_where(msg)->hdr_size, meta, mlen,
				    NULL) < 0 ||
	     dbox_msg_check_guid(path, msg, meta, mlen, NULL) < 0)) {
		/* bytes a writer rolled back, or a file replaced: not what
		 * the index says is there; the disk decides */
		dbox_rcache_drop(store, path, false);
		ret = -ENOENT;
	}
	free(meta);
	if (ret == 0)
		ret = dbox_rcache_get(store, path, body_at + off, len, buf);
	return ret < 0 ? ret : (ssize_t)len;
}

static ssize_t msg_pread_once(struct dbox_store *store,
			      const struct dbox_msg *msg, void *buf,
			      size_t len, uint64_t off, struct dbox_err *err)
{
	char path[PATH_MAX];
	struct dfs_file *file;
	size_t n;
	int ret;

	if (dbox_msg_where(msg)->compression != DBOX_COMP_NONE) {
		ssize_t got = dbox_decompress_pread(store, msg, buf, len, off,
						    err);

		/* whole but short: Dovecot compresses what remains of a
		 * message whose attachments went to mail_attachment_dir */
		return got == -ERANGE ? dbox_attach_pread(store, msg, buf, len,
							  off, err) : got;
	}
	if (!dbox_msg_is_plain(msg))
		return dbox_attach_pread(store, msg, buf, len, off, err);
	if (off >= dbox_msg_where(msg)->body_size)
		return 0;
	if (len > dbox_msg_where(msg)->body_size - off)
		len = (size_t)(dbox_msg_where(msg)->body_size - off);
	ret = dbox_msg_file_path(store, msg, path, sizeof(path));
	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	ret = dbox_fcache_get(store, path, &file);
	if (ret < 0)
		return dbox_fail(err, ret, "open %s", path);
	ret = dfs_sync_pread(file, buf, len,
			     (off_t)(dbox_msg_body_at(msg) + off), &n);
	dbox_fcache_put(store, file);
	if (ret < 0)
		return dbox_fail(err, ret, "read %s: %s", path, strerror(-ret));
	if (n < len)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): file ends inside the message",
				 path, (unsigned long long)
				 dbox_msg_where(msg)->offset);
	return (ssize_t)n;
}

bool dbox_msg_is_plain(const struct dbox_msg *msg)
{
	/* a physical size beyond the stored body: the rest is in external
	 * attachments (or the record is corrupted; either way the body alone
	 * is not the message) */
	return dbox_msg_where(msg)->compression == DBOX_COMP_NONE &&
		msg->size == dbox_msg_where(msg)->body_size;
}

/* A purge may have moved the message to another file since the caller
 * read its row: then the old file is gone, and the index knows where the
 * message is now. */
static bool moved_by_purge(struct dbox_store *store, const struct dbox_msg *msg,
			   struct dbox_msg *now)
{
	return dbox_msg_where(msg)->file_id != 0 &&
		dbox_msg_get(store, msg->mailbox_id, msg->uid, now, NULL) == 0 &&
		(dbox_msg_where(now)->file_id != dbox_msg_where(msg)->file_id ||
		 dbox_msg_where(now)->offset != dbox_msg_where(msg)->offset);
}

ssize_t dbox_msg_pread(struct dbox_store *store, const struct dbox_msg *msg,
		       void *buf, size_t len, uint64_t off,
		       struct dbox_err *err)
{
	ssize_t ret = msg_pread_once(store, msg, buf, len, off, err);
	struct dbox_msg now;

	if (ret < 0 && moved_by_purge(store, msg, &now))
		ret = msg_pread_once(store, &now, buf, len, off, err);
	return ret;
}

struct async_read {
	struct dbox_store *store;
	struct dfs_file *file;
	dbox_read_cb *cb;
	void *ctx;
	size_t want;
	struct dbox_msg msg;
	void *buf;              /* NULL: fd_reader moves the bytes */
	dfs_fd_reader *fd_reader;
	void *fd_reader_arg;
	uint64_t off;
	bool retried;
	bool fd_reader_ran;     /* its bytes may be on their way: no retry */
	char path[PATH_MAX];
};

static void async_read_submit(struct async_read *ar);

static ssize_t fd_reader_trampoline(void *arg, int fd, size_t len, off_t off)
{
	struct async_read *ar = arg;

	ar->fd_reader_ran = true;
	return ar->fd_reader(ar->fd_reader_arg, fd, len, off);
}

static void async_read_done(void *ctx, const struct dfs_result *res)
{
	struct async_read *ar = ctx;
	struct dbox_err err = { "" };
	ssize_t ret = res->err < 0 ? res->err : res->n;
	struct dbox_msg now;

	if (res->err < 0 && !ar->retried && !ar->fd_reader_ran &&
	    moved_by_purge(ar->store, &ar->msg, &now)) {
		dbox_fcache_put(ar->store, ar->file);
		ar->msg = now;
		ar->retried = true;
		async_read_submit(ar);
		return;
	}
	if (res->err < 0)
		dbox_fail(&err, res->err, "read %s: %s", ar->path,
			  strerror(-res->err));
	else if (ar->buf != NULL && (size_t)res->n < ar->want)
		ret = dbox_fail(&err, -EBADMSG, "Corrupted dbox file %s: file "
				"ends inside a message", ar->path);
	dbox_fcache_put(ar->store, ar->file);
	ar->cb(ar->ctx, ret, &err);
	free(ar);
}

/* A read of at most len bytes of msg's body from off (off < body_size),
 * or NULL after cb has been told -ENOMEM. */
static struct async_read *async_read_new(struct dbox_store *store,
					 const struct dbox_msg *msg,
					 size_t len, uint64_t off,
					 dbox_read_cb *cb, void *ctx)
{
	struct dbox_err err = { "" };
	struct async_read *ar = calloc(1, sizeof(*ar));

	if (ar == NULL) {
		cb(ctx, -ENOMEM, &err);
		return NULL;
	}
	if (len > dbox_msg_where(msg)->body_size - off)
		len = (size_t)(dbox_msg_where(msg)->body_size - off);
	*ar = (struct async_read){ .store = store, .cb = cb, .ctx = ctx,
				   .want = len, .msg = *msg, .off = off };
	return ar;
}

void dbox_msg_pread_async(struct dbox_store *store, const struct dbox_msg *msg,
			  void *buf, size_t len, uint64_t off,
			  dbox_read_cb *cb, void *ctx)
{
	struct dbox_err err = { "" };
	struct async_read *ar;
	ssize_t ret;

	if (!dbox_msg_is_plain(msg) || off >= dbox_msg_where(msg)->body_size) {
		/* decompression is CPU work on an in-memory stream; EOF
		 * needs no I/O at all; external attachments are read from
		 * several files */
		ret = dbox_msg_pread(store, msg, buf, len, off, &err);
		cb(ctx, ret, &err);
		return;
	}
	ar = async_read_new(store, msg, len, off, cb, ctx);
	if (ar == NULL)
		return;
	ar->buf = buf;
	async_read_submit(ar);
}

static void async_read_submit(struct async_read *ar)
{
	struct dbox_err err = { "" };
	const struct dbox_msg *msg = &ar->msg;

	if (dbox_msg_file_path(ar->store, msg, ar->path, sizeof(ar->path)) < 0 ||
	    dbox_fcache_get(ar->store, ar->path, &ar->file) < 0) {
		dbox_fail(&err, -ENAMETOOLONG, "path of message");
		ar->cb(ar->ctx, -ENAMETOOLONG, &err);
		free(ar);
		return;
	}
	if (ar->buf == NULL)
		dfs_read_fd(ar->file, ar->want,
			    (off_t)(dbox_msg_body_at(msg) + ar->off),
			    fd_reader_trampoline, ar,
			    async_read_done, ar);
	else
		dfs_pread(ar->file, ar->buf, ar->want,
			  (off_t)(dbox_msg_body_at(msg) + ar->off),
			  async_read_done, ar);
}

void dbox_msg_read_fd_async(struct dbox_store *store,
			    const struct dbox_msg *msg, size_t len,
			    uint64_t off,
			    ssize_t (*fn)(void *arg, int fd, size_t len,
					  off_t file_off),
			    void *arg, dbox_read_cb *cb, void *ctx)
{
	struct dbox_err err = { "" };
	struct async_read *ar;

	if (!dbox_msg_is_plain(msg)) {
		dbox_fail(&err, -EOPNOTSUPP, "compressed message or external "
			  "attachments");
		cb(ctx, -EOPNOTSUPP, &err);
		return;
	}
	if (off >= dbox_msg_where(msg)->body_size) {
		cb(ctx, 0, &err);
		return;
	}
	ar = async_read_new(store, msg, len, off, cb, ctx);
	if (ar == NULL)
		return;
	ar->fd_reader = fn;
	ar->fd_reader_arg = arg;
	async_read_submit(ar);
}

