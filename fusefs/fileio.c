/* fileio.c - open, read and release of files: messages (read through
 * the store's async fs layer, spliced into the reply), dovecot-keywords
 * and plain files. */
#include <errno.h>
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
		if (backing_has_node(ino))
			open_plain(req, ino, fi);
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

static void read_msg(fuse_req_t req, struct open_msg *om, size_t size,
		     off_t off)
{
	struct pending_read *pr;

	bool zero_copy = dbox_msg_is_plain(&om->msg);

	if (off < 0 || (uint64_t)off >= om->msg.size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
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

void fileio_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

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
