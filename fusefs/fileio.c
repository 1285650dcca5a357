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
#include "deliver.h"
#include "fileio.h"
#include "moved.h"
#include "pagepush.h"
#include "reply.h"


/* An open message: a struct fh first, so fi->fh tells the kinds apart. */
struct open_msg {
	struct fh fh;
	struct dbox_msg msg;
};

/* Checked now without I/O: the record is in what the store read ahead
 * for an earlier message of the same file (dbox_msg_read_cached). */
static bool verified_ahead(struct dboxfs *fs, uint64_t ino,
			   const struct dbox_msg *m)
{
	char none[1];

	return verified_has(&fs->verified, ino, m) ||
		dbox_msg_read_cached(fs->store, m, none, 0, 0) == 0;
}

/* ----------------------------------------- checks ahead (sdbox) */

/* a record this size or less is read whole by its check and kept in the
 * store's read-ahead cache (dbox-msg-verify.c); larger ones are not
 * checked ahead, to keep the cache for the rest */
#define AHEAD_MAX_SIZE (256u * 1024)

struct ahead {
	struct dboxfs *fs;
	uint64_t ino;
	struct dbox_msg msg;
};

struct pending_open;
static void open_verified(void *ctx, int ret, const struct dbox_err *err);
static void open_cold(struct dboxfs *fs, struct pending_open *po,
		      int64_t box, uint32_t uid);
static void open_answer(struct pending_open *po, bool pushed);

/* An open that overtook the check of its message (fileio_open_msg) gets
 * the check's result: answered at once when the check passed and pushed
 * the bytes; else checked (and pushed) on its own, as a cold open. */
static void ahead_waited(struct ahead *a, struct pending_open *po, int ret,
			 bool pushed);

static void ahead_done(void *ctx, int ret, const struct dbox_err *err,
		       const void *body, size_t len)
{
	struct ahead *a = ctx;
	struct pending_open *po;
	size_t n = pagepush_len(&a->msg);
	bool pushed;

	(void)err;  /* the message's own open or read checks it again */
	/* its pages pushed from what the check read, then marked verified:
	 * its open is warm and finds them.  When the kernel does not know
	 * the inode yet (looked up only when opened: the push fails) it
	 * stays unmarked: its open, cold, finds the record in the read-ahead
	 * cache and pushes it then (open_push), rather than a warm open
	 * leaving its bytes to a READ. */
	pushed = ret == 0 && len >= n &&
		(n > 0 ? pagepush_bytes(a->fs, a->ino, body, n) == 0 :
		 pagepush_known(a->fs, a->ino));
	if (pushed)
		verified_add(&a->fs->verified, a->ino, &a->msg);
	po = verified_pending_done(&a->fs->verified, a->ino);
	if (po != NULL)
		ahead_waited(a, po, ret, pushed);
	free(a);
}

struct ahead_list {
	uint32_t last;
	unsigned int n;
	struct dbox_msg msgs[VERIFIED_AHEAD];
};

static int ahead_listed(void *ctx, const struct dbox_msg *m)
{
	struct ahead_list *l = ctx;

	if (m->uid > l->last)
		return 1;
	l->msgs[l->n++] = *m;
	return l->n == VERIFIED_AHEAD;
}

/* sdbox keeps a message per file, so there is nothing to read ahead in
 * it: a cold read of a folder in uid order (find, grep -r, rsync: inode
 * numbers follow uids) would pay an open and a read of one u.N after the
 * other, which slow storage makes 2 x its latency per message.  When the
 * opens go in uid order, the next messages are checked ahead, in
 * parallel on the store's I/O workers: each check reads the record whole
 * and pushes it into the page cache, and marks it verified, so that its
 * open is warm and its reads send no READ.  The window slides: an open
 * in order that finds fewer than VERIFIED_REFILL messages checked ahead
 * of it (warm ones too: verified_refill_due, fileio_open_msg_quick)
 * moves it on by a batch, listed with one index query and the mailbox's
 * name with another, so that the reader does not catch up with the
 * checks; one that did (it waits for its check: slow storage) moves it
 * on whatever is left, so that a whole window's checks are in flight
 * while it waits, not only the last batch's.  mdbox has its window
 * along m.N instead. */
static void ahead_release(struct dboxfs *fs, int64_t box, uint32_t uid);

static void ahead_start(struct dboxfs *fs, const struct dbox_msg *m,
			const char *box_name)
{
	uint64_t ino = view_ino_msg(m->mailbox_id, m->uid);
	struct ahead *a;

	if (dbox_msg_file_id(m) != 0 || !dbox_msg_is_plain(m) ||
	    m->size > AHEAD_MAX_SIZE || verified_has(&fs->verified, ino, m) ||
	    (a = malloc(sizeof(*a))) == NULL) {
		ahead_release(fs, m->mailbox_id, m->uid);
		return;
	}
	a->fs = fs;
	a->ino = ino;
	a->msg = *m;
	dbox_msg_check_whole_async(fs->store, m, box_name, ahead_done, a);
}

static void check_ahead(struct dboxfs *fs, int64_t box, uint32_t uid,
			bool waiting)
{
	struct dbox_mailbox mb;
	struct ahead_list *l;
	uint32_t first = 0, claimed, span;

	claimed = verified_ahead_of(&fs->verified, box, uid, waiting, &first);
	if (claimed == 0)
		return;
	span = 32 - (uint32_t)__builtin_clz(claimed);
	l = malloc(sizeof(*l));
	if (l != NULL) {
		l->last = first + span - 1;
		l->n = 0;
		if (dbox_mailbox_get(fs->store, box, &mb, NULL) < 0 ||
		    dbox_msg_list(fs->store, box, first - 1, -1, span,
				  ahead_listed, l, NULL) < 0)
			l->n = 0;
		for (unsigned int i = 0; i < l->n; i++) {
			uint32_t bit = 1u << (l->msgs[i].uid - first);

			if (claimed & bit)
				ahead_start(fs, &l->msgs[i], mb.name);
			claimed &= ~bit;
		}
		free(l);
	}
	/* not there (expunged, a gap in the uids), or not listed */
	for (uint32_t i = 0; i < span; i++) {
		if (claimed & (1u << i))
			ahead_release(fs, box, first + i);
	}
}

/* check_ahead for a message of any kind: mdbox's go along the window
 * (pagepush_after) */
static void check_ahead_of(struct dboxfs *fs, const struct dbox_msg *m)
{
	if (dbox_msg_file_id(m) == 0 && dbox_msg_is_plain(m))
		check_ahead(fs, m->mailbox_id, m->uid, false);
}

struct pending_open {
	fuse_req_t req;
	struct fuse_file_info fi;
	struct open_msg *om;
};

/* The open's reply, after (mdbox) the messages after it in the window
 * its check read are pushed too: before, not after, so that the opener
 * cannot overtake the pushes and open the next ones cold, which would
 * push them a second time. */
static void open_reply(struct pending_open *po)
{
	struct dboxfs *fs = fuse_req_userdata(po->req);

	pagepush_after(fs, &po->om->msg);
	if (fuse_reply_open(po->req, &po->fi) == -ENOENT) {
		/* interrupted: no release will come */
		fh_untrack(fs, &po->om->fh);
		free(po->om);
	}
	free(po);
}

struct pending_push {
	struct pending_open *po;
	char buf[];
};

static void open_pushed(void *ctx, ssize_t ret, const struct dbox_err *err)
{
	struct pending_push *pp = ctx;
	struct pending_open *po = pp->po;

	(void)err;   /* its READ will meet the error and report it */
	if (ret == (ssize_t)pagepush_len(&po->om->msg))
		(void)pagepush_bytes(fuse_req_userdata(po->req),
				     po->om->fh.ino, pp->buf, (size_t)ret);
	free(pp);
	open_reply(po);
}

/* Its bytes into the page cache before the reply (the kernel holds no
 * page of the file during an OPEN: pagepush.h), so that its reads send
 * no READ; and with no READ answered the kernel keeps its atime valid,
 * which spares the next pass over the folder a GETATTR per file (a
 * read-write superblock marks it stale at every READ,
 * fuse_invalidate_atime).  From the read-ahead cache when the check left
 * the record there; else (compressed, external attachments, a record
 * larger than the window) read as the READ would, then pushed. */
static void open_push(struct dboxfs *fs, struct pending_open *po)
{
	const struct dbox_msg *m = &po->om->msg;
	struct pending_push *pp;
	int ret = pagepush_cached(fs, po->om->fh.ino, m);

	if (ret != -EAGAIN ||
	    (pp = malloc(sizeof(*pp) + pagepush_len(m))) == NULL) {
		open_reply(po);
		return;
	}
	pp->po = po;
	dbox_msg_pread_async(fs->store, m, pp->buf, pagepush_len(m), 0,
			     open_pushed, pp);
}

static void open_verified(void *ctx, int ret, const struct dbox_err *err)
{
	struct pending_open *po = ctx;
	struct dboxfs *fs = fuse_req_userdata(po->req);

	if (ret < 0) {
		dboxfs_log_once(fs, po->om->fh.ino, err->msg);
		fuse_reply_err(po->req, dboxfs_errno(ret));
		free(po->om);
		free(po);
		return;
	}
	verified_add(&fs->verified, po->om->fh.ino, &po->om->msg);
	open_answer(po, false);
}

/* A checked message's open answered with a handle, its bytes pushed
 * first unless they were already. */
static void open_answer(struct pending_open *po, bool pushed)
{
	struct dboxfs *fs = fuse_req_userdata(po->req);

	fh_track(fs, &po->om->fh);
	po->fi.fh = (uint64_t)(uintptr_t)po->om;
	/* a message's bytes never change: let the page cache keep them
	 * across opens */
	po->fi.keep_cache = 1;
	po->fi.noflush = 1;   /* see opw_flush */
	if (pushed)
		open_reply(po);
	else
		open_push(fs, po);
}

/* A claimed uid not checked after all: an open waiting for it goes its
 * own way. */
static void ahead_release(struct dboxfs *fs, int64_t box, uint32_t uid)
{
	struct pending_open *po =
		verified_pending_done(&fs->verified, view_ino_msg(box, uid));

	if (po != NULL)
		open_cold(fs, po, box, uid);
}

static void ahead_waited(struct ahead *a, struct pending_open *po, int ret,
			 bool pushed)
{
	/* the row the check was of: listed just before, as the open's own
	 * lookup would have found it (an sdbox record does not move) */
	po->om->msg = a->msg;
	if (ret < 0)
		dbox_msg_verify_async(a->fs->store, &po->om->msg,
				      open_verified, po);
	else if (!pushed)
		open_verified(po, 0, NULL);
	else
		open_answer(po, true);
}

void fileio_open_kwfile(struct dboxfs *fs, fuse_req_t req,
			struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, fs->readonly ? EROFS : EACCES);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)&fs->kwfile_fh;
	fi->direct_io = 1;  /* generated text: its size follows changes */
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

/* A message checked before: answered from memory, without the index, a
 * read or a handle (a read-write mount's open costs the native maildir's
 * whole warm read of a small message otherwise).  Its reads, when the
 * page cache misses, come by inode (fh 0: fileio_read_msg_ino), which
 * finds the record where the index has it then and checks it there if
 * it moved; a message gone meanwhile (an expunge by another program not
 * yet followed) gives ENOENT at the read instead of at the open, as on a
 * read-only mount, which has no opens at all. */
static void open_warm(fuse_req_t req, struct fuse_file_info *fi)
{
	fi->fh = 0;
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

/* The opens that fileio_open_msg refuses or answers from memory. */
bool fileio_open_msg_quick(struct dboxfs *fs, uint64_t ino, int64_t box,
			   uint32_t uid, int flags)
{
	if (moved_file_node(fs, ino) != 0)
		return false;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return true;
	/* a warm open that moves the checks ahead on goes to a worker */
	return verified_has_ino(&fs->verified, ino) &&
		!verified_refill_due(&fs->verified, box, uid);
}

void fileio_open_msg(struct dboxfs *fs, fuse_req_t req, int64_t box,
		     uint32_t uid, uint64_t ino, struct fuse_file_info *fi)
{
	struct pending_open *po;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		/* messages are immutable (maildir-view.md section 2) */
		fuse_reply_err(req, fs->readonly ? EROFS : EACCES);
		return;
	}
	if (verified_has_ino(&fs->verified, ino)) {
		open_warm(req, fi);
		/* after the reply: the window moves on while it is read */
		if (verified_refill_due(&fs->verified, box, uid))
			check_ahead(fs, box, uid, false);
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
	po->om->fh.type = FH_MSG;
	po->om->fh.fd = -1;
	po->om->fh.ino = ino;
	po->req = req;
	po->fi = *fi;
	reply_handed_off(req);
	/* the reader overtook the check ahead of this message: its result
	 * answers the open (ahead_waited; po is that one's from now on), no
	 * second read and check */
	if (verified_pending_wait(&fs->verified, ino, po)) {
		check_ahead(fs, box, uid, true);
		return;
	}
	open_cold(fs, po, box, uid);
}

/* An open checked on its own: its row looked up, its record checked
 * (from what was read ahead, else read), then pushed and answered. */
static void open_cold(struct dboxfs *fs, struct pending_open *po,
		      int64_t box, uint32_t uid)
{
	int ret = attr_msg_follow(fs, box, uid, &po->om->msg);

	if (ret < 0) {
		fuse_reply_err(po->req, dboxfs_errno(ret));
		free(po->om);
		free(po);
		return;
	}
	if (verified_ahead(fs, po->om->fh.ino, &po->om->msg)) {
		check_ahead_of(fs, &po->om->msg);   /* the next, in order */
		open_verified(po, 0, NULL);
		return;
	}
	check_ahead_of(fs, &po->om->msg);
	dbox_msg_verify_async(fs->store, &po->om->msg, open_verified, po);
}

static void open_binode(struct dboxfs *fs, fuse_req_t req, uint64_t ino,
			struct binode *bi, struct fuse_file_info *fi);

void fileio_open_plain(struct dboxfs *fs, fuse_req_t req, uint64_t ino,
		       struct fuse_file_info *fi)
{
	struct binode *bi = backing_get(fs, ino);
	int64_t msg_box;
	uint32_t msg_uid;

	if (bi == NULL)
		fuse_reply_err(req, ENOENT);
	else if (backing_msg_of(fs, bi, &msg_box, &msg_uid))
		fileio_open_msg(fs, req, msg_box, msg_uid, ino, fi);
	else
		open_binode(fs, req, ino, bi, fi);
	backing_put(fs, bi);
}

static void open_binode(struct dboxfs *fs, fuse_req_t req, uint64_t ino,
			struct binode *bi, struct fuse_file_info *fi)
{
	struct fh *fh;
	int fd;

	if (fs->readonly && (fi->flags & O_ACCMODE) != O_RDONLY) {
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
	fh_track(fs, fh);
	fi->fh = (uint64_t)(uintptr_t)fh;
	/* the same file can change under another name (hard links, the
	 * backing tree): no page cache reuse across opens */
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		fh_untrack(fs, fh);
		close(fd);
		free(fh);
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
		dboxfs_log_once(fuse_req_userdata(pr->req), pr->ino, err->msg);
		fuse_reply_err(pr->req, dboxfs_errno((int)ret));
	} else {
		fuse_reply_buf(pr->req, pr->buf, (size_t)ret);
	}
	free(pr);
}

void fileio_read_kwfile(struct dboxfs *fs, fuse_req_t req, fuse_ino_t ino,
			size_t size, off_t off)
{
	char text[DBOX_MAX_KEYWORDS * 260];
	struct view_ino v;
	int n;

	view_ino_decode(ino, &v);
	n = attr_kwfile_text(fs, v.box, text, sizeof(text));
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
	struct dboxfs *fs = fuse_req_userdata(req);
	char *buf = malloc(size);
	ssize_t n = buf == NULL ? -ENOMEM :
		dbox_msg_read_cached(fs->store, m, buf, size,
				     (uint64_t)off);

	if (n >= 0)
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
	return n >= 0;
}

static void read_msg(fuse_req_t req, struct open_msg *om, size_t size,
		     off_t off)
{
	struct dboxfs *fs = fuse_req_userdata(req);
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
	reply_handed_off(req);
	pr->ino = om->fh.ino;
	pr->replied = false;
	if (zero_copy)
		dbox_msg_read_fd_async(fs->store, &om->msg, size,
				       (uint64_t)off, splice_reply, pr,
				       read_done, pr);
	else
		dbox_msg_pread_async(fs->store, &om->msg, pr->buf, size,
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
	struct dboxfs *fs = fuse_req_userdata(pv->req);

	if (ret < 0) {
		dboxfs_log_once(fs, pv->om.fh.ino, err->msg);
		fuse_reply_err(pv->req, dboxfs_errno(ret));
	} else {
		verified_add(&fs->verified, pv->om.fh.ino, &pv->om.msg);
		pagepush_after(fs, &pv->om.msg);
		read_msg(pv->req, &pv->om, pv->size, 0);
	}
	free(pv);
}

/* The first read of a message is where an open would have checked its
 * record; the later ones of the same open come from the page cache or
 * continue it. */
void fileio_read_msg_ino(struct dboxfs *fs, fuse_req_t req, int64_t box,
			 uint32_t uid, uint64_t ino, size_t size, off_t off)
{
	struct pending_vread *pv = calloc(1, sizeof(*pv));
	int ret;

	if (pv == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = attr_msg_follow(fs, box, uid, &pv->om.msg);
	if (ret < 0) {
		free(pv);
		fuse_reply_err(req, dboxfs_errno(ret));
		return;
	}
	pv->om.fh = (struct fh){ .type = FH_MSG, .fd = -1, .ino = ino };
	if (off != 0 || verified_has(&fs->verified, ino, &pv->om.msg)) {
		read_msg(req, &pv->om, size, off);
		free(pv);
		return;
	}
	if (verified_ahead(fs, ino, &pv->om.msg)) {
		/* the first read of a message in a window read before: the
		 * window's next messages go into the page cache as well,
		 * before the reply (as at an open: open_reply) */
		check_ahead_of(fs, &pv->om.msg);
		pagepush_after(fs, &pv->om.msg);
		read_msg(req, &pv->om, size, off);
		free(pv);
		return;
	}
	pv->req = req;
	reply_handed_off(req);
	pv->size = size;
	check_ahead_of(fs, &pv->om.msg);
	dbox_msg_verify_async(fs->store, &pv->om.msg, vread_verified, pv);
}

void fileio_read_plain_ino(struct dboxfs *fs, fuse_req_t req, uint64_t ino,
			   size_t size, off_t off)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct binode *bi = backing_get(fs, ino);
	int64_t msg_box;
	uint32_t msg_uid;
	int fd;

	if (bi == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (backing_msg_of(fs, bi, &msg_box, &msg_uid)) {
		backing_put(fs, bi);
		fileio_read_msg_ino(fs, req, msg_box, msg_uid, ino, size, off);
		return;
	}
	fd = backing_open(bi, O_RDONLY);
	backing_put(fs, bi);
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

void fileio_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	switch (fh->type) {
	case FH_KWFILE:
		fileio_read_kwfile(fs, req, ino, size, off);
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
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh == NULL) {
		/* a warm open of a message (open_warm): nothing kept */
	} else if (fh->type == FH_MSG) {
		fh_untrack(fs, fh);
		free(fh);
	} else if (fh->type == FH_FD) {
		fh_untrack(fs, fh);
		deliver_release_fd(fs, fh);
	}
	fuse_reply_err(req, 0);
}
