/* reply.c - replies and errors shared by the operations. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "reply.h"

int dboxfs_errno(int ret)
{
	if (ret == -EBADMSG)
		return EIO;
	return ret < 0 ? -ret : EIO;
}

void dboxfs_log_once(struct dboxfs *fs, uint64_t ino, const char *msg)
{
	bool seen = false;

	pthread_mutex_lock(&fs->log_lock);
	for (unsigned int i = 0; i < 256; i++)
		seen |= fs->logged[i] == ino;
	if (!seen)
		fs->logged[fs->logged_next++ % 256] = ino;
	pthread_mutex_unlock(&fs->log_lock);
	if (!seen)
		fuse_log(FUSE_LOG_ERR, "dboxfs: %s\n", msg);
}



void reply_entry_param(struct dboxfs *fs, struct fuse_entry_param *e,
		       const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->attr = *st;
	e->attr.st_ino = backing_shown_ino(fs, e->ino);
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
}

void reply_entry(fuse_req_t req, const struct stat *st)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;

	reply_entry_param(fs, &e, st);
	fuse_reply_entry(req, &e);
}

void reply_negative(fuse_req_t req)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;

	/* ino 0 with a timeout: the kernel caches "no such name" */
	memset(&e, 0, sizeof(e));
	e.entry_timeout = fs->neg_timeout;
	fuse_reply_entry(req, &e);
}
