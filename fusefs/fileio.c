/* fileio.c - open, read and release of files: messages (read through
 * the store's async fs layer, spliced into the reply), dovecot-keywords
 * and plain files. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "fileio.h"
#include "ops.h"


/* An open message: a struct fh first, so fi->fh tells the kinds apart. */
struct open_msg {
	struct fh fh;
	struct dbox_msg msg;
};

/* Messages whose record was verified at the place the index gives now:
 * a message's bytes never change, so a warm open needs no read (the check
 * is against damage, which a move of the record would show). */
#define VERIFIED_SLOTS 4096

struct verified {
	uint64_t ino;
	uint32_t file_id;
	uint64_t offset;
};

static struct verified verified[VERIFIED_SLOTS];
static pthread_mutex_t verified_lock = PTHREAD_MUTEX_INITIALIZER;

static struct verified *verified_slot(uint64_t ino)
{
	return &verified[(ino * 0x9e3779b97f4a7c15ull) >> 52];
}

static bool verified_has(uint64_t ino, const struct dbox_msg *m)
{
	struct verified *v = verified_slot(ino);
	bool hit;

	pthread_mutex_lock(&verified_lock);
	hit = v->ino == ino && v->file_id == dbox_msg_file_id(m) &&
		v->offset == dbox_msg_file_offset(m);
	pthread_mutex_unlock(&verified_lock);
	return hit;
}

/* Checked now without I/O: the record is in what the store read ahead
 * for an earlier message of the same file (dbox_msg_read_cached). */
static bool verified_ahead(uint64_t ino, const struct dbox_msg *m)
{
	char none[1];

	return verified_has(ino, m) ||
		dbox_msg_read_cached(dboxfs.store, m, none, 0, 0) == 0;
}

static void verified_add(uint64_t ino, const struct dbox_msg *m)
{
	struct verified *v = verified_slot(ino);

	pthread_mutex_lock(&verified_lock);
	*v = (struct verified){ ino, dbox_msg_file_id(m),
				dbox_msg_file_offset(m) };
	pthread_mutex_unlock(&verified_lock);
}

struct pending_open {
	fuse_req_t req;
	struct fuse_file_info fi;
	struct open_msg *om;
};

static void open_verified(void *ctx, int ret, const struct dbox_err *err)
{
	struct pending_open *po = ctx;

	if (ret < 0) {
		dboxfs_log_once(po->om->fh.ino, err->msg);
		fuse_reply_err(po->req, dboxfs_errno(ret));
		free(po->om);
	} else {
		verified_add(po->om->fh.ino, &po->om->msg);
		fh_track(&po->om->fh);
		po->fi.fh = (uint64_t)(uintptr_t)po->om;
		/* a message's bytes never change: let the page cache keep
		 * them across opens */
		po->fi.keep_cache = 1;
		po->fi.noflush = 1;   /* see opw_flush */
		if (fuse_reply_open(po->req, &po->fi) == -ENOENT) {
			/* interrupted: no release will come */
			fh_untrack(&po->om->fh);
			free(po->om);
		}
	}
	free(po);
}

static struct fh kwfile_fh = { .type = FH_KWFILE, .fd = -1 };

static void open_kwfile(fuse_req_t req, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, dboxfs.readonly ? EROFS : EACCES);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)&kwfile_fh;
	fi->direct_io = 1;  /* generated text: its size follows changes */
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void open_msg(fuse_req_t req, int64_t box, uint32_t uid, uint64_t ino,
		     struct fuse_file_info *fi)
{
	struct pending_open *po;
	int ret;


	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		/* messages are immutable (maildir-view.md section 2) */
		fuse_reply_err(req, dboxfs.readonly ? EROFS : EACCES);
		return;
	}
	po = calloc(1, sizeof(*po));
	if (po != NULL)
		po->om = calloc(1, sizeof(*po->om));
	if (po == NULL || po->om == NULL) {
		free(po);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = ops_msg_follow(box, uid, &po->om->msg);
	if (ret < 0) {
		free(po->om);
		free(po);
		fuse_reply_err(req, dboxfs_errno(ret));
		return;
	}
	po->om->fh.type = FH_MSG;
	po->om->fh.fd = -1;
	po->om->fh.ino = ino;
	po->req = req;
	po->fi = *fi;
	if (verified_ahead(ino, &po->om->msg)) {
		open_verified(po, 0, NULL);
		return;
	}
	dbox_msg_verify_async(dboxfs.store, &po->om->msg, open_verified, po);
}

static void open_binode(fuse_req_t req, uint64_t ino, struct binode *bi,
			struct fuse_file_info *fi);

static void open_plain(fuse_req_t req, uint64_t ino,
		       struct fuse_file_info *fi)
{
	struct binode *bi = backing_get(ino);
	int64_t msg_box;
	uint32_t msg_uid;

	if (bi == NULL)
		fuse_reply_err(req, ENOENT);
	else if (backing_msg_of(bi, &msg_box, &msg_uid))
		open_msg(req, msg_box, msg_uid, ino, fi);
	else
		open_binode(req, ino, bi, fi);
	backing_put(bi);
}

static void open_binode(fuse_req_t req, uint64_t ino, struct binode *bi,
			struct fuse_file_info *fi)
{
	struct fh *fh;
	int fd;

	if (dboxfs.readonly && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fh = calloc(1, sizeof(*fh));
	if (fh == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = backing_open(bi, fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
	if (fd < 0) {
		free(fh);
		fuse_reply_err(req, -fd);
		return;
	}
	fh->type = FH_FD;
	fh->fd = fd;
	fh->ino = ino;
	fh->box = bi->box;
	fh->area = bi->area;
	fh_track(fh);
	fi->fh = (uint64_t)(uintptr_t)fh;
	/* the same file can change under another name (hard links, the
	 * backing tree): no page cache reuse across opens */
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		fh_untrack(fh);
		close(fd);
		free(fh);
	}
}

void fileio_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct view_ino v;
	uint64_t fino;

	if (dboxfs.no_open) {
		/* the kernel stops sending opens: reads come by inode */
		fuse_reply_err(req, ENOSYS);
		return;
	}

	if (!view_ino_decode(ino, &v)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	switch (v.kind) {
	case VK_KWFILE:
		open_kwfile(req, fi);
		return;
	case VK_MSG:
		/* a message renamed into tmp/: a file there */
		if ((fino = ops_file_node(ino)) != 0)
			open_plain(req, fino, fi);
		else
			open_msg(req, v.box, v.uid, ino, fi);
		return;
	case VK_PLAIN:
		open_plain(req, ino, fi);
		return;
	default:
		fuse_reply_err(req, EISDIR);
		return;
	}
}

struct pending_read {
	fuse_req_t req;
	uint64_t ino;
	bool replied;          /* the splice reader answered the request */
	char buf[];
};

/* On an fs worker: the message's bytes go from the dbox file into the
 * reply by splice, never through a buffer of ours. */
static ssize_t splice_reply(void *arg, int fd, size_t len, off_t off)
{
	struct pending_read *pr = arg;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(len);
	int ret;

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	pr->replied = true;
	ret = fuse_reply_data(pr->req, &buf, FUSE_BUF_SPLICE_MOVE);
	return ret < 0 ? ret : (ssize_t)len;
}

static void read_done(void *ctx, ssize_t ret, const struct dbox_err *err)
{
	struct pending_read *pr = ctx;

	if (pr->replied) {
		/* the splice answered; a failed send has no one to tell */
	} else if (ret < 0) {
		dboxfs_log_once(pr->ino, err->msg);
		fuse_reply_err(pr->req, dboxfs_errno((int)ret));
	} else {
		fuse_reply_buf(pr->req, pr->buf, (size_t)ret);
	}
	free(pr);
}

static void read_kwfile(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off)
{
	char text[DBOX_MAX_KEYWORDS * 260];
	struct view_ino v;
	int n;

	view_ino_decode(ino, &v);
	n = attr_kwfile_text(v.box, text, sizeof(text));
	if (n < 0) {
		fuse_reply_err(req, dboxfs_errno(n));
		return;
	}
	if (off >= n) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	fuse_reply_buf(req, text + off, (size_t)n - (size_t)off < size ?
		       (size_t)n - (size_t)off : size);
}

static bool read_ahead_reply(fuse_req_t req, const struct dbox_msg *m,
			     size_t size, off_t off)
{
	char *buf = malloc(size);
	ssize_t n = buf == NULL ? -ENOMEM :
		dbox_msg_read_cached(dboxfs.store, m, buf, size,
				     (uint64_t)off);

	if (n >= 0)
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
	return n >= 0;
}

static void read_msg(fuse_req_t req, struct open_msg *om, size_t size,
		     off_t off)
{
	struct pending_read *pr;

	bool zero_copy = dbox_msg_is_plain(&om->msg);

	if (off < 0 || (uint64_t)off >= om->msg.size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* read ahead with an earlier message: answered at once */
	if (zero_copy && read_ahead_reply(req, &om->msg, size, off))
		return;
	/* stored plain: spliced from the dbox file; compressed or with
	 * external attachments: put together in a buffer */
	pr = malloc(sizeof(*pr) + (zero_copy ? 0 : size));
	if (pr == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pr->req = req;
	pr->ino = om->fh.ino;
	pr->replied = false;
	if (zero_copy)
		dbox_msg_read_fd_async(dboxfs.store, &om->msg, size,
				       (uint64_t)off, splice_reply, pr,
				       read_done, pr);
	else
		dbox_msg_pread_async(dboxfs.store, &om->msg, pr->buf, size,
				     (uint64_t)off, read_done, pr);
}

/* ------------------------------------------ reads without an open */

struct pending_vread {
	fuse_req_t req;
	struct open_msg om;
	size_t size;
};

static void vread_verified(void *ctx, int ret, const struct dbox_err *err)
{
	struct pending_vread *pv = ctx;

	if (ret < 0) {
		dboxfs_log_once(pv->om.fh.ino, err->msg);
		fuse_reply_err(pv->req, dboxfs_errno(ret));
	} else {
		verified_add(pv->om.fh.ino, &pv->om.msg);
		read_msg(pv->req, &pv->om, pv->size, 0);
	}
	free(pv);
}

/* The first read of a message is where an open would have checked its
 * record; the later ones of the same open come from the page cache or
 * continue it. */
static void read_msg_ino(fuse_req_t req, int64_t box, uint32_t uid,
			 uint64_t ino, size_t size, off_t off)
{
	struct pending_vread *pv = calloc(1, sizeof(*pv));
	int ret;

	if (pv == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = ops_msg_follow(box, uid, &pv->om.msg);
	if (ret < 0) {
		free(pv);
		fuse_reply_err(req, dboxfs_errno(ret));
		return;
	}
	pv->om.fh = (struct fh){ .type = FH_MSG, .fd = -1, .ino = ino };
	if (off != 0 || verified_ahead(ino, &pv->om.msg)) {
		read_msg(req, &pv->om, size, off);
		free(pv);
		return;
	}
	pv->req = req;
	pv->size = size;
	dbox_msg_verify_async(dboxfs.store, &pv->om.msg, vread_verified, pv);
}

static void read_plain_ino(fuse_req_t req, uint64_t ino, size_t size,
			   off_t off)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct binode *bi = backing_get(ino);
	int64_t msg_box;
	uint32_t msg_uid;
	int fd;

	if (bi == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (backing_msg_of(bi, &msg_box, &msg_uid)) {
		backing_put(bi);
		read_msg_ino(req, msg_box, msg_uid, ino, size, off);
		return;
	}
	fd = backing_open(bi, O_RDONLY);
	backing_put(bi);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	close(fd);
}

static void read_by_ino(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off)
{
	struct view_ino v;
	uint64_t fino;

	if (!view_ino_decode(ino, &v))
		fuse_reply_err(req, ENOENT);
	else if (v.kind == VK_KWFILE)
		read_kwfile(req, ino, size, off);
	else if (v.kind == VK_MSG && (fino = ops_file_node(ino)) == 0)
		read_msg_ino(req, v.box, v.uid, ino, size, off);
	else if (v.kind == VK_MSG)
		read_plain_ino(req, fino, size, off);
	else if (v.kind == VK_PLAIN)
		read_plain_ino(req, ino, size, off);
	else
		fuse_reply_err(req, EISDIR);
}

void fileio_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (fh == NULL) {
		read_by_ino(req, ino, size, off);
		return;
	}

	switch (fh->type) {
	case FH_KWFILE:
		read_kwfile(req, ino, size, off);
		return;
	case FH_MSG:
		read_msg(req, (struct open_msg *)fh, size, off);
		return;
	case FH_FD:
		/* a real file beside the store: spliced by the kernel */
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = fh->fd;
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		return;
	case FH_DIR:
		break;
	}
	fuse_reply_err(req, EBADF);
}

void fileio_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh->type == FH_MSG) {
		fh_untrack(fh);
		free(fh);
	} else if (fh->type == FH_FD) {
		fh_untrack(fh);
		opw_release_fd(fh);
	}
	fuse_reply_err(req, 0);
}
