/* dbox-msg-verify.c - a message's record checked before it is served
 * (header magic and size, post magic, the GUID of its metadata), at once
 * or asynchronously. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/dfs-private.h"
#include "index/dindex-msg.h"
#include "store/dbox-attach.h"
#include "store/dbox-decompress.h"
#include "store/dbox-msg-private.h"
#include "store/store-private.h"

/* The checks of a record's framing on what was read of it: the message
 * header (hdr_n bytes) and the 4 bytes after the body (post_n). */
int dbox_msg_check_framing(const char *path, const struct dbox_msg *m,
			   const unsigned char *hdr, size_t hdr_n,
			   const unsigned char *post, size_t post_n,
			   struct dbox_err *err)
{
	char reason[128];
	uint64_t size;

	if (hdr_n < dbox_msg_where(m)->hdr_size)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): EOF reading msg header", path,
				 (unsigned long long)dbox_msg_where(m)->offset);
	if (dbox_msg_hdr_parse(hdr, dbox_msg_where(m)->hdr_size, &size, reason,
			       sizeof(reason)) < 0)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): %s", path,
				 (unsigned long long)dbox_msg_where(m)->offset,
				 reason);
	if (size != dbox_msg_where(m)->body_size)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): size %llu, index says %llu",
				 path,
				 (unsigned long long)dbox_msg_where(m)->offset,
				 (unsigned long long)size,
				 (unsigned long long)
				 dbox_msg_where(m)->body_size);
	if (post_n < DBOX_MAGIC_POST_LEN ||
	    memcmp(post, DBOX_MAGIC_POST, DBOX_MAGIC_POST_LEN) != 0)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): metadata header has bad magic "
				 "value", path,
				 (unsigned long long)dbox_msg_meta_at(m));
	return 0;
}

/* The metadata region of a record: from the post magic to the record's
 * end; its length per the index (0: the row does not say, only the post
 * magic is read). */
#define VERIFY_META_MAX (64u * 1024)

size_t dbox_msg_meta_len(const struct dbox_msg *m)
{
	uint64_t before = dbox_msg_meta_at(m) - dbox_msg_where(m)->offset;

	if (dbox_msg_where(m)->rec_size < before + DBOX_MAGIC_POST_LEN)
		return DBOX_MAGIC_POST_LEN;
	if (dbox_msg_where(m)->rec_size - before > VERIFY_META_MAX)
		return VERIFY_META_MAX;
	return (size_t)(dbox_msg_where(m)->rec_size - before);
}

/* The record's GUID (metadata G) must be the index's: a file swapped with
 * another message's (same sizes, so the framing checks pass) must not be
 * served as this message.  meta: n bytes from the post magic on. */
int dbox_msg_check_guid(const char *path, const struct dbox_msg *m,
			const unsigned char *meta, size_t n,
			struct dbox_err *err)
{
	struct dbox_meta md;
	size_t used;
	int ret;

	if (m->guid[0] == '\0' || n <= DBOX_MAGIC_POST_LEN)
		return 0;
	ret = dbox_meta_parse((const char *)meta + DBOX_MAGIC_POST_LEN,
			      n - DBOX_MAGIC_POST_LEN, &md, &used);
	if (ret == -EAGAIN && dbox_msg_where(m)->rec_size -
	    dbox_msg_where(m)->hdr_size - dbox_msg_where(m)->body_size > n)
		return 0;  /* metadata longer than we read: not judged */
	if (ret < 0)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): metadata cannot be read", path,
				 (unsigned long long)dbox_msg_where(m)->offset);
	ret = md.guid == NULL || strcmp(md.guid, m->guid) != 0 ?
		dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around "
			  "offset=%llu): GUID %s, index says %s", path,
			  (unsigned long long)dbox_msg_where(m)->offset,
			  md.guid != NULL ? md.guid : "(none)", m->guid) : 0;
	dbox_meta_clear(&md);
	return ret;
}

int dbox_msg_verify(struct dbox_store *store, const struct dbox_msg *msg,
		    struct dbox_err *err)
{
	unsigned char hdr[4096], *meta;
	char path[PATH_MAX];
	struct dfs_file *file;
	size_t hdr_n = 0, meta_n = 0, mlen = dbox_msg_meta_len(msg);
	int ret;

	if (dbox_msg_where(msg)->hdr_size < DBOX_MSG_HEADER_SIZE ||
	    dbox_msg_where(msg)->hdr_size > sizeof(hdr))
		return dbox_fail(err, -EBADMSG, "bad header size in index");
	ret = dbox_msg_file_path(store, msg, path, sizeof(path));
	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	meta = malloc(mlen);
	if (meta == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	ret = dbox_fcache_get(store, path, &file);
	if (ret < 0) {
		free(meta);
		return dbox_fail(err, ret, "open %s", path);
	}
	ret = dfs_sync_pread(file, hdr, dbox_msg_where(msg)->hdr_size,
			     (off_t)dbox_msg_where(msg)->offset,
			     &hdr_n);
	if (ret == 0)
		ret = dfs_sync_pread(file, meta, mlen,
				     (off_t)dbox_msg_meta_at(msg), &meta_n);
	dbox_fcache_put(store, file);
	if (ret < 0)
		ret = dbox_fail(err, ret, "read %s: %s", path, strerror(-ret));
	if (ret == 0)
		ret = dbox_msg_check_framing(path, msg, hdr, hdr_n, meta,
					     meta_n, err);
	if (ret == 0)
		ret = dbox_msg_check_guid(path, msg, meta, meta_n, err);
	free(meta);
	return ret;
}

/* Async verification: one read covering the message header, and one of
 * the metadata (post magic and GUID); both are submitted at once and the
 * last completion decides. */
struct async_verify;

struct verify_part {
	struct async_verify *av;
	bool is_hdr;
};

struct async_verify {
	struct verify_part parts[2];
	struct dbox_store *store;
	struct dfs_file *file;
	dbox_verify_cb *cb;
	void *ctx;
	struct dbox_msg msg;
	char path[PATH_MAX];
	unsigned char hdr[256];
	unsigned char *meta;    /* into whole, or its own buffer */
	size_t meta_len;
	pthread_mutex_t lock;
	int pending;
	int err;
	size_t hdr_n, meta_n;
	/* a small message is read whole: one I/O checks both ends and
	 * leaves the body in the page cache for the reads that follow */
	unsigned char *whole;
	size_t whole_len, whole_n;
};

#define VERIFY_READAHEAD_MAX (128u * 1024)

static int verify_result(struct async_verify *av, struct dbox_err *err)
{
	int ret;

	if (av->err < 0)
		return dbox_fail(err, av->err, "read %s: %s", av->path,
				 strerror(-av->err));
	ret = dbox_msg_check_framing(av->path, &av->msg, av->hdr, av->hdr_n,
				     av->meta, av->meta_n, err);
	return ret < 0 ? ret : dbox_msg_check_guid(av->path, &av->msg, av->meta,
						   av->meta_n, err);
}

static void whole_done(struct async_verify *av, size_t n)
{
	size_t h = dbox_msg_where(&av->msg)->hdr_size,
		before = h + dbox_msg_where(&av->msg)->body_size;

	memcpy(av->hdr, av->whole, n < h ? n : h);
	av->hdr_n = n < h ? n : h;
	av->meta = av->whole + before;
	av->meta_n = n > before ? n - before : 0;
	/* the window goes on past the record: its neighbours' bytes */
	if (av->meta_n > av->meta_len)
		av->meta_n = av->meta_len;
	av->whole_n = n;
}

static void async_verify_done(void *ctx, const struct dfs_result *res)
{
	struct verify_part *part = ctx;
	struct async_verify *av = part->av;
	struct dbox_err err = { "" };
	bool last;
	int ret;

	pthread_mutex_lock(&av->lock);
	if (res->err < 0 && av->err == 0)
		av->err = res->err;
	else if (res->err == 0 && av->whole != NULL)
		whole_done(av, (size_t)res->n);
	else if (res->err == 0 && part->is_hdr)
		av->hdr_n = (size_t)res->n;
	else if (res->err == 0)
		av->meta_n = (size_t)res->n;
	last = --av->pending == 0;
	pthread_mutex_unlock(&av->lock);
	if (!last)
		return;
	ret = verify_result(av, &err);
	dbox_fcache_put(av->store, av->file);
	/* kept for the reads that follow, this message's and (mdbox) its
	 * neighbours' */
	if (ret == 0 && av->whole != NULL) {
		dbox_rcache_put(av->store, av->path,
				dbox_msg_where(&av->msg)->offset, av->whole,
				av->whole_n);
		av->whole = NULL;
		av->meta = NULL;
	}
	av->cb(av->ctx, ret, &err);
	pthread_mutex_destroy(&av->lock);
	if (av->whole == NULL)
		free(av->meta);
	free(av->whole);
	free(av);
}

static void verify_fail(struct async_verify *av, int ret, const char *what,
			dbox_verify_cb *cb, void *ctx)
{
	struct dbox_err err = { "" };

	dbox_fail(&err, ret, "%s", what);
	free(av->meta);
	free(av);
	cb(ctx, ret, &err);
}

void dbox_msg_verify_async(struct dbox_store *store, const struct dbox_msg *msg,
			   dbox_verify_cb *cb, void *ctx)
{
	struct async_verify *av = calloc(1, sizeof(*av));
	struct dbox_err err = { "" };

	if (av == NULL) {
		cb(ctx, -ENOMEM, &err);
		return;
	}
	if (dbox_msg_where(msg)->hdr_size < DBOX_MSG_HEADER_SIZE ||
	    dbox_msg_where(msg)->hdr_size > sizeof(av->hdr)) {
		verify_fail(av, -EBADMSG, "bad header size in index", cb, ctx);
		return;
	}
	av->store = store;
	av->cb = cb;
	av->ctx = ctx;
	av->msg = *msg;
	av->meta_len = dbox_msg_meta_len(msg);
	if (dbox_msg_file_path(store, msg, av->path, sizeof(av->path)) < 0 ||
	    dbox_fcache_get(store, av->path, &av->file) < 0) {
		verify_fail(av, -ENOENT, "no file for message", cb, ctx);
		return;
	}
	pthread_mutex_init(&av->lock, NULL);
	av->whole_len = dbox_msg_meta_at(msg) - dbox_msg_where(msg)->offset +
		av->meta_len;
	/* mdbox: the messages after it in m.N come along (dbox-rcache.c) */
	if (av->whole_len <= VERIFY_READAHEAD_MAX &&
	    dbox_msg_where(msg)->file_id != 0)
		av->whole_len = DBOX_RCACHE_WINDOW;
	if (av->whole_len <= DBOX_RCACHE_WINDOW &&
	    (av->whole = malloc(av->whole_len)) != NULL) {
		av->pending = 1;
		av->parts[0] = (struct verify_part){ av, true };
		dfs_pread(av->file, av->whole, av->whole_len,
			  (off_t)dbox_msg_where(msg)->offset,
			  async_verify_done, &av->parts[0]);
		return;
	}
	av->meta = malloc(av->meta_len);
	if (av->meta == NULL) {
		dbox_fcache_put(store, av->file);
		pthread_mutex_destroy(&av->lock);
		verify_fail(av, -ENOMEM, "out of memory", cb, ctx);
		return;
	}
	av->pending = 2;
	av->parts[0] = (struct verify_part){ av, false };
	av->parts[1] = (struct verify_part){ av, true };
	dfs_pread(av->file, av->meta, av->meta_len,
		  (off_t)dbox_msg_meta_at(msg), async_verify_done,
		  &av->parts[0]);
	dfs_pread(av->file, av->hdr, dbox_msg_where(msg)->hdr_size,
		  (off_t)dbox_msg_where(msg)->offset,
		  async_verify_done, &av->parts[1]);
}

/* ------------------------------------------------ checks ahead (sdbox)
 *
 * A reader going through a folder in uid order opens one u.N after the
 * other; checked ahead in parallel, each on one fs worker from its open
 * to its close: the read is submitted from the open's completion and
 * the close from the read's, both run there (dfs_submit_here) rather
 * than handed to other workers, and the file stays out of the store's
 * open files (an sdbox file is read once, where the cache would evict a
 * file a READ still uses).  One hand-off per message instead of three
 * (open, read after it, close of an evicted file), and no index query:
 * the caller names the mailbox once for many. */
/* the largest record read whole: a message of 256 KiB, its metadata */
#define CHECK_WHOLE_MAX (256u * 1024 + DBOX_MSG_HEADER_SIZE + VERIFY_META_MAX)

struct check_whole {
	struct dbox_store *store;
	struct dbox_msg msg;
	dbox_checked_cb *cb;
	void *ctx;
	unsigned char *whole;
	size_t len;
	char path[PATH_MAX];
};

static void whole_finish(struct check_whole *cw, int ret,
			 const struct dbox_err *err, size_t n)
{
	size_t h = dbox_msg_where(&cw->msg)->hdr_size;
	size_t body = ret == 0 ? (size_t)dbox_msg_where(&cw->msg)->body_size :
		0;

	cw->cb(cw->ctx, ret, err, ret == 0 ? cw->whole + h : NULL, body);
	/* kept for an open whose inode a push could not reach yet */
	if (ret == 0)
		dbox_rcache_put(cw->store, cw->path,
				dbox_msg_where(&cw->msg)->offset, cw->whole, n);
	else
		free(cw->whole);
	free(cw);
}

static void whole_read(void *ctx, const struct dfs_result *res)
{
	struct check_whole *cw = ctx;
	struct dbox_err err = { "" };
	size_t n = res->err < 0 ? 0 : (size_t)res->n;
	size_t h = dbox_msg_where(&cw->msg)->hdr_size;
	size_t before = h + (size_t)dbox_msg_where(&cw->msg)->body_size;
	size_t meta_n = n > before ? n - before : 0;
	int ret;

	if (meta_n > dbox_msg_meta_len(&cw->msg))
		meta_n = dbox_msg_meta_len(&cw->msg);
	if (res->err < 0)
		ret = dbox_fail(&err, res->err, "read %s: %s", cw->path,
				strerror(-res->err));
	else
		ret = dbox_msg_check_framing(cw->path, &cw->msg, cw->whole,
					     n < h ? n : h, cw->whole + before,
					     meta_n, &err);
	if (ret == 0)
		ret = dbox_msg_check_guid(cw->path, &cw->msg,
					  cw->whole + before, meta_n, &err);
	whole_finish(cw, ret, &err, n);
	/* after the caller has the bytes: a slow close delays nobody */
	dfs_submit_here(true);
	dfs_close(res->file, NULL, NULL);
}

static void whole_opened(void *ctx, const struct dfs_result *res)
{
	struct check_whole *cw = ctx;
	struct dbox_err err = { "" };

	if (res->err < 0) {
		dfs_close(res->file, NULL, NULL);
		dbox_fail(&err, res->err, "open %s: %s", cw->path,
			  strerror(-res->err));
		whole_finish(cw, res->err, &err, 0);
		return;
	}
	dfs_submit_here(true);
	dfs_pread(res->file, cw->whole, cw->len,
		  (off_t)dbox_msg_where(&cw->msg)->offset, whole_read, cw);
}

void dbox_msg_check_whole_async(struct dbox_store *store,
				const struct dbox_msg *msg,
				const char *box_name, dbox_checked_cb *cb,
				void *ctx)
{
	struct dbox_err err = { "" };
	struct check_whole *cw;
	size_t len = dbox_msg_meta_at(msg) - dbox_msg_where(msg)->offset +
		dbox_msg_meta_len(msg);

	if (dbox_msg_where(msg)->file_id != 0 || !dbox_msg_is_plain(msg) ||
	    len > CHECK_WHOLE_MAX ||
	    dbox_msg_where(msg)->hdr_size < DBOX_MSG_HEADER_SIZE) {
		dbox_fail(&err, -EOPNOTSUPP, "not checked whole");
		cb(ctx, -EOPNOTSUPP, &err, NULL, 0);
		return;
	}
	cw = calloc(1, sizeof(*cw));
	if (cw == NULL || (cw->whole = malloc(len)) == NULL ||
	    dbox_sdbox_path(store, box_name, msg->uid, cw->path,
			    sizeof(cw->path)) < 0) {
		if (cw != NULL)
			free(cw->whole);
		free(cw);
		dbox_fail(&err, -ENOMEM, "no room to check a message");
		cb(ctx, -ENOMEM, &err, NULL, 0);
		return;
	}
	cw->store = store;
	cw->msg = *msg;
	cw->cb = cb;
	cw->ctx = ctx;
	cw->len = len;
	(void)dfs_open(store->fs, cw->path, O_RDONLY | O_CLOEXEC, 0,
		       whole_opened, cw);
}
