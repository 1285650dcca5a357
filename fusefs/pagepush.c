/* pagepush.c - message bytes pushed into the kernel's page cache (see
 * pagepush.h). */
#include <errno.h>
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

/* Pushes a->msgs[from..n) and marks them verified; false at the first
 * that is not at hand or whose inode the kernel does not know. */
static bool push_listed(struct dboxfs *fs, struct after *a, unsigned int from,
			char *buf)
{
	for (unsigned int i = from; i < a->n; i++) {
		const struct dbox_msg *n = &a->msgs[i];
		uint64_t ino = view_ino_msg(n->mailbox_id, n->uid);

		if (verified_has(&fs->verified, ino, n))
			continue;   /* opened or pushed before */
		if (push_cached(fs, ino, n, buf) < 0)
			return false;  /* past the window, or an inode the
					* kernel has not seen (not listed
					* with its attributes, not looked
					* up yet) */
		verified_add(&fs->verified, ino, n);
	}
	return true;
}

void pagepush_after(struct dboxfs *fs, const struct dbox_msg *m)
{
	struct after *a;
	char *buf;

	if (dbox_msg_file_id(m) == 0)
		return;   /* sdbox: its checks ahead push (fileio.c) */
	a = malloc(sizeof(*a));
	buf = malloc(PAGEPUSH_MAX);
	if (a == NULL || buf == NULL)
		goto out;
	a->file_id = dbox_msg_file_id(m);
	a->n = 0;
	/* listed first, pushed after: no statement stays open while a push
	 * waits for a folio.  The next message alone first: when the kernel
	 * does not know it (a reader that looks names up one by one), that
	 * is all this costs. */
	if (dbox_msg_list(fs->store, m->mailbox_id, m->uid, -1, 1, after_one,
			  a, NULL) != 1 || !push_listed(fs, a, 0, buf))
		goto out;
	a->n = 0;
	(void)dbox_msg_list(fs->store, m->mailbox_id, a->msgs[0].uid, -1,
			    PAGEPUSH_AHEAD - 1, after_one, a, NULL);
	(void)push_listed(fs, a, 0, buf);
out:
	free(buf);
	free(a);
}
