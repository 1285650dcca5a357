/* deliver.c - files becoming messages: the commit job of a delivered
 * file, files created in cur/ new/ tmp/ and the folders' plain files,
 * their writes, syncs and closes (maildir-view.md section 3). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "dbox/fs.h"
#include "commit.h"
#include "flush.h"
#include "node.h"
#include "ops.h"
#include "prepare.h"

/* ------------------------------------------------------------- commits */

/* A file created in cur/ or new/ (cp, rsync) reserves the uid of the
 * message it is to become, so that its inode number is that message's
 * from the start and never changes (backing.h).  Without one (the index
 * is busy) it shows its own number until it is a message. */
static void reserve_uid(struct dboxfs *fs, int fd, int64_t box)
{
	struct dbox_err err = { "" };
	int64_t have_box;
	uint32_t uid;

	if (backing_resv_read(fd, &have_box, &uid))
		return;
	if (dbox_mailbox_reserve_uid(fs->store, box, &uid, &err) < 0) {
		fuse_log(FUSE_LOG_WARNING, "dboxfs: reserve a uid in mailbox "
			 "%lld: %s\n", (long long)box, err.msg);
		return;
	}
	backing_resv_write(fd, box, uid);
}

/* ------------------------------------------------------------- create */

/* Where a new file in directory `parent` lives; reserved names of the
 * view cannot be created. */
int opw_create_target(struct dboxfs *fs, const struct view_ino *v,
		      const char *name, int *dirfd_r, enum backing_area *area_r,
		      int64_t *box_r)
{
	int ret = node_of(v)->may_create(fs, v, name);

	if (ret < 0)
		return ret;
	return opw_area_of(fs, v, dirfd_r, area_r, box_r);
}

void opw_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	enum backing_area area;
	struct view_ino v;
	struct binode *bi;
	struct fh *fh;
	int64_t box;
	int dirfd, fd, ret;

	if (!opw_begin_change(req, parent, &v))
		return;
	ret = opw_create_target(fs, &v, name, &dirfd, &area, &box);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	fd = openat(dirfd, name, (fi->flags | O_CREAT | O_CLOEXEC) &
		    ~O_NOFOLLOW, mode & 07777);
	if (fd < 0) {
		ret = errno;
		close(dirfd);
		fuse_reply_err(req, ret);
		return;
	}
	if (area == AREA_CUR || area == AREA_NEW)
		reserve_uid(fs, fd, box);
	memset(&e, 0, sizeof(e));
	ret = opw_own(req, dirfd, name);
	/* with O_EXCL the file is this call's own: no mark to read */
	if (ret == 0 && (fi->flags & O_EXCL))
		ret = backing_lookup_created(fs, dirfd, name, box, area, &bi,
					     &e.attr);
	else if (ret == 0)
		ret = backing_lookup(fs, dirfd, name, box, area, &bi, &e.attr);
	fh = calloc(1, sizeof(*fh));
	if (ret < 0 || fh == NULL) {
		close(fd);
		close(dirfd);
		free(fh);
		fuse_reply_err(req, ret < 0 ? -ret : ENOMEM);
		return;
	}
	close(dirfd);
	fh->type = FH_FD;
	fh->fd = fd;
	fh->ino = bi->ino;
	fh->box = box;
	fh->area = area;
	snprintf(fh->name, sizeof(fh->name), "%s", name);
	/* cp and a restore write straight into cur/ or new/: such a file
	 * becomes a message when its last handle closes */
	{
		char base[DBOX_NAME_MAX + 1];
		const char *info;

		fh->commit_on_release = (area == AREA_CUR || area == AREA_NEW) &&
			view_final_name(name, base, sizeof(base), &info);
	}
	fh_track(fs, fh);
	/* only those get the closed mark at close(2): see opw_flush */
	fi->noflush = !fh->commit_on_release;
	e.ino = bi->ino;
	e.attr.st_ino = backing_shown_ino(fs, bi->ino);
	e.attr_timeout = fs->attr_timeout;
	e.entry_timeout = fs->entry_timeout;
	fi->fh = (uint64_t)(uintptr_t)fh;
	fuse_reply_create(req, &e, fi);
}

void opw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, dev_t rdev)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum backing_area area;
	struct view_ino v;
	int64_t box;
	int dirfd = -1, ret;

	if (!opw_begin_change(req, parent, &v))
		return;
	ret = opw_create_target(fs, &v, name, &dirfd, &area, &box);
	if (ret == 0 && !S_ISREG(mode) && area != AREA_FILES)
		ret = -EPERM;  /* only plain areas hold fifos and sockets */
	if (ret == 0 && mknodat(dirfd, name, mode, rdev) < 0)
		ret = -errno;
	if (ret < 0) {
		if (dirfd >= 0)
			close(dirfd);
		fuse_reply_err(req, -ret);
		return;
	}
	opw_reply_backing_entry(req, dirfd, name, box, area);
	close(dirfd);
}

void deliver_release_fd(struct dboxfs *fs, struct fh *fh)
{
	struct commit_job *job;
	int dirfd;

	if (fh->commit_on_release &&
	    backing_area_dir(fs, fh->box, fh->area, &dirfd) == 0) {
		enum view_sub sub = backing_sub_of_area(fh->area);

		if (commit_job_make(fs, dirfd, fh->name, fh->ino, fh->box, sub,
				    fh->name, true, &job) == 0) {
			job->keep_dir_mtime = true;
			commit_submit(fs, job);
		}
		close(dirfd);
	}
	close(fh->fd);
	free(fh);
}


/* ------------------------------------------------------ data of files */

void opw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf,
		   off_t off, struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(buf));
	ssize_t n;

	(void)ino;
	if (fh->type != FH_FD) {
		fuse_reply_err(req, EBADF);
		return;
	}
	prepare_drop(fs, fh->ino);
	if (fh->area == AREA_CUR || fh->area == AREA_NEW)
		backing_mark_drop(fs, fh->ino);  /* written after a close */
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fh->fd;
	out.buf[0].pos = off;
	if (dfs_powercut_active()) {
		/* the spool under the power-cut simulator (tests) */
		dfs_powercut_write(fh->fd, off, fuse_buf_size(buf));
		n = fuse_buf_copy(&out, buf, 0);
		dfs_powercut_done(fh->fd, false);
	} else {
		n = fuse_buf_copy(&out, buf, 0);
	}
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	fh->wrote = true;
	fuse_reply_write(req, (size_t)n);
}

/* A file in tmp/ being synced is about to be delivered (prepare.h).  What
 * its writer opened may be write-only: the record is read from a
 * descriptor of our own.  Failure only means the rename does the work. */
static void prepare_delivery(struct dboxfs *fs, const struct fh *fh)
{
	char base[DBOX_NAME_MAX + 1];
	struct binode *bi;
	const char *info;
	int fd;

	if (fs->readonly || fh->box == 0 ||
	    !view_final_name(fh->name, base, sizeof(base), &info))
		return;
	bi = backing_get(fs, fh->ino);
	fd = bi != NULL ? backing_open(bi, O_RDONLY | O_CLOEXEC) : -1;
	backing_put(fs, bi);
	if (fd < 0)
		return;
	prepare_fsync(fs, fh->ino, fd, fh->box, base);
	close(fd);
}

void opw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	int r = 0;

	(void)ino;
	if (fh->type == FH_MSG) {
		/* a message is durable with the commits before: flush.h */
		flush_request(fuse_req_userdata(req), req);
		return;
	}
	if (fh->type == FH_FD && fh->area == AREA_TMP && fh->wrote) {
		/* the file's writeback starts before its record is synced:
		 * on a journaling file system (ext4 data=ordered) the
		 * record's fdatasync then commits the journal transaction
		 * that holds the file's new blocks too, and the file's
		 * fsync below finds nothing left to commit (one journal
		 * commit for both, not two in a row: bench/RESULTS.md).
		 * What is synced, and in which order, stays the same. */
		sync_file_range(fh->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		prepare_delivery(fs, fh);
	}
	if (fh->type == FH_FD && dfs_powercut_active()) {
		dfs_powercut_sync(fh->fd);
		r = datasync ? fdatasync(fh->fd) : fsync(fh->fd);
		r = r < 0 ? errno : 0;
		dfs_powercut_done(fh->fd, r == 0);
	} else if (fh->type == FH_FD) {
		r = datasync ? fdatasync(fh->fd) : fsync(fh->fd);
		r = r < 0 ? errno : 0;
	}
	fuse_reply_err(req, r);
}

/* Nothing is buffered here (writes reach the file before they are
 * answered) and file locks are the kernel's own (no lock operations), so
 * close(2) has nothing to do for most files: they are opened with
 * noflush, one round trip fewer per close.  A file created in cur/ or
 * new/ under its final name gets its closed mark (backing.h) here, before
 * close(2) returns, so that a commit the daemon did not live to make is
 * made at the next start.  (Never ENOSYS: the kernel would stop sending
 * FLUSH for every file.) */
void opw_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh->type == FH_FD && fh->commit_on_release)
		backing_mark_closed(fs, fh->ino, fh->fd);
	fuse_reply_err(req, 0);
}

void opw_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh->type != FH_FD) {
		fuse_reply_err(req, EACCES);
		return;
	}
	prepare_drop(fs, fh->ino);
	if (fh->area == AREA_CUR || fh->area == AREA_NEW)
		backing_mark_drop(fs, fh->ino);
	fuse_reply_err(req, fallocate(fh->fd, mode, offset, length) < 0 ?
		       errno : 0);
}
