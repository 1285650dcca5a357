/* pagepush.c - message bytes pushed into the kernel's page cache (see
 * pagepush.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pagepush.h"

/* a round after a window: at most this many messages, and only while
 * each is in the window (1 MiB, DBOX_RCACHE_WINDOW) */
#define PAGEPUSH_AHEAD 32

size_t pagepush_len(const struct dbox_msg *m)
{
	return m->size < PAGEPUSH_MAX ? (size_t)m->size : PAGEPUSH_MAX;
}

int pagepush_bytes(struct dboxfs *fs, uint64_t ino, const void *buf,
		   size_t len)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);

	if (len == 0)
		return 0;   /* an empty file has no page to fill */
	bv.buf[0].mem = (void *)buf;
	return fuse_lowlevel_notify_store(fs->se, ino, 0, &bv, 0);
}

bool pagepush_known(struct dboxfs *fs, uint64_t ino)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	char none[1];

	/* the kernel looks the inode up and stores nothing */
	bv.buf[0].mem = none;
	return fuse_lowlevel_notify_store(fs->se, ino, 0, &bv, 0) == 0;
}

/* buf: PAGEPUSH_MAX bytes */
static int push_cached(struct dboxfs *fs, uint64_t ino,
		       const struct dbox_msg *m, char *buf)
{
	size_t len = pagepush_len(m);

	if (len > 0 && dbox_msg_read_cached(fs->store, m, buf, len, 0) !=
	    (ssize_t)len)
		return -EAGAIN;
	return pagepush_bytes(fs, ino, buf, len);
}

int pagepush_cached(struct dboxfs *fs, uint64_t ino,
		    const struct dbox_msg *m)
{
	char *buf = malloc(pagepush_len(m) + 1);
	int ret = buf == NULL ? -ENOMEM : push_cached(fs, ino, m, buf);

	free(buf);
	return ret;
}

struct after {
	uint32_t file_id;
	unsigned int n;
	struct dbox_msg msgs[PAGEPUSH_AHEAD];
};

static int after_one(void *ctx, const struct dbox_msg *m)
{
	struct after *a = ctx;

	if (dbox_msg_file_id(m) != a->file_id || !dbox_msg_is_plain(m))
		return 1;   /* the window is along one m.N */
	a->msgs[a->n++] = *m;
	return a->n == PAGEPUSH_AHEAD;
}

/* Pushes a->msgs and marks them verified, up to the first that is not
 * at hand or whose inode the kernel does not know. */
static void push_listed(struct dboxfs *fs, struct after *a, char *buf)
{
	for (unsigned int i = 0; i < a->n; i++) {
		const struct dbox_msg *n = &a->msgs[i];
		uint64_t ino = view_ino_msg(n->mailbox_id, n->uid);

		if (verified_has(&fs->verified, ino, n))
			continue;   /* opened or pushed before */
		if (push_cached(fs, ino, n, buf) < 0)
			return;  /* past the window, or an inode the kernel
				  * has not seen (not listed with its
				  * attributes, not looked up yet) */
		verified_add(&fs->verified, ino, n);
	}
}

void pagepush_after(struct dboxfs *fs, const struct dbox_msg *m)
{
	struct after *a;
	char *buf;

	if (dbox_msg_file_id(m) == 0)
		return;   /* sdbox: its checks ahead push (fileio.c) */
	/* a reader that looks names up one by one (cat of a list, find
	 * after a plain READDIR) has not shown the kernel the next one yet:
	 * one system call tells, before the index and the window are asked
	 * (the uid after m's, most often the next message's) */
	if (m->uid == UINT32_MAX ||
	    !pagepush_known(fs, view_ino_msg(m->mailbox_id, m->uid + 1)))
		return;
	a = malloc(sizeof(*a));
	buf = malloc(PAGEPUSH_MAX);
	if (a == NULL || buf == NULL)
		goto out;
	a->file_id = dbox_msg_file_id(m);
	a->n = 0;
	/* listed first, pushed after: no statement stays open while a push
	 * waits for a folio */
	(void)dbox_msg_list(fs->store, m->mailbox_id, m->uid, -1,
			    PAGEPUSH_AHEAD, after_one, a, NULL);
	push_listed(fs, a, buf);
out:
	free(buf);
	free(a);
}
