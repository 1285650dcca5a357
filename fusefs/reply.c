/* reply.c - replies and errors shared by the operations. */
#include <assert.h>
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

void reply_release_store(fuse_req_t req)
{
	struct dboxfs *fs = fuse_req_userdata(req);

	if (fs != NULL && fs->store != NULL)
		dbox_store_release(fs->store);
}

/* The request this thread's entry point serves, and its replies so far. */
static _Thread_local struct {
	fuse_req_t req;
	unsigned int replies;
	bool handed_off;
} scope;

void reply_scope_begin(fuse_req_t req)
{
	assert(scope.req == NULL);
	scope.req = req;
	scope.replies = 0;
	scope.handed_off = false;
}

/* req is compared, never read: replied, it may be freed */
void reply_scope_end(fuse_req_t req)
{
	assert(scope.req == req);
	assert(scope.replies == 1 || scope.handed_off);
	scope.req = NULL;
}

void reply_handed_off(fuse_req_t req)
{
	if (scope.req == req)
		scope.handed_off = true;
}

/* a reply of another request (a flusher's waiter, a commit's) is that
 * one's: counted only for the request in scope */
void reply_counted(fuse_req_t req)
{
	if (scope.req != req)
		return;
	assert(scope.replies == 0);
	scope.replies++;
}
