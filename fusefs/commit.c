/* commit.c - commit jobs and the committer thread (group commit). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "backing.h"
#include "commit.h"
#include "dbox/save.h"
#include "flush.h"
#include "msgname.h"
#include "prepare.h"
#include "reply.h"


/* ------------------------------------------------------ jobs */

/* A message keeps the mode its file had, as on a local filesystem (rsync
 * -a sets it before its rename); 0 stands for the store's default. */
static uint32_t msg_mode(struct dboxfs *fs, mode_t mode)
{
	mode &= 07777;
	return mode == fs->file_mode ? 0 : (uint32_t)(S_IFREG | mode);
}

/* The uid a file reserved, for its commit into mailbox box (0: none, or
 * one it cannot have: of another mailbox, beyond an index rebuilt since,
 * or taken by a message, which a daemon killed after the commit and
 * before the file went would leave). */
static uint32_t reserved_uid_for(struct dboxfs *fs, int fd, int64_t box)
{
	struct dbox_mailbox b;
	struct dbox_msg m;
	int64_t resv_box;
	uint32_t uid;

	if (!backing_resv_read(fd, &resv_box, &uid) || resv_box != box ||
	    dbox_mailbox_get(fs->store, box, &b, NULL) < 0 ||
	    uid >= b.next_uid ||
	    dbox_msg_get(fs->store, box, uid, &m, NULL) != -ENOENT)
		return 0;
	return uid;
}

int commit_job_make(struct dboxfs *fs, int src_dirfd, const char *src_name,
		    uint64_t src_ino, int64_t box, enum view_sub sub,
		    const char *name, bool unlink_src,
		    struct commit_job **job_r)
{
	struct commit_job *j = calloc(1, sizeof(*j));
	const char *info;
	struct stat st;

	if (j == NULL)
		return -ENOMEM;
	if (!view_final_name(name, j->base, sizeof(j->base), &info)) {
		free(j);
		return -EINVAL;
	}
	/* a link's source comes as /proc/self/fd/N, which must be
	 * followed; names in a backing directory must not be */
	j->fd = openat(src_dirfd, src_name, O_RDONLY | O_CLOEXEC |
		       (src_dirfd == AT_FDCWD ? 0 : O_NOFOLLOW));
	if (j->fd < 0 || fstat(j->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int ret = j->fd < 0 ? -errno : -EINVAL;

		if (j->fd >= 0)
			close(j->fd);
		free(j);
		return ret;
	}
	dbox_maildir_info_parse(info, false, &j->flags, &j->keywords);
	j->box = box;
	j->in_new = sub == SUB_NEW;
	j->new_info = j->in_new && info != NULL;
	j->mode = msg_mode(fs, st.st_mode);
	j->received = st.st_mtim.tv_sec;
	j->received_ns = st.st_mtim.tv_nsec;
	/* a rename or close keeps the file's number; a link is a second
	 * file, and its message a number of its own */
	j->resv_uid = unlink_src ? reserved_uid_for(fs, j->fd, box) : 0;
	j->src_ino = src_ino != 0 ? src_ino : backing_node_ino(j->fd, NULL,
								 &st);
	/* renamed, the file is no longer the client's: after a crash the
	 * sweep removes what is left of it */
	if (unlink_src) {
		backing_unmark_linked(j->fd);
		backing_drop_node_ino(j->fd);
	}
	j->src_dirfd = unlink_src ? dup(src_dirfd) : -1;
	snprintf(j->src_name, sizeof(j->src_name), "%s", src_name);
	j->src = backing_get(fs, j->src_ino);  /* put by the committer */
	*job_r = j;
	return 0;
}

static void commit_batch(struct dboxfs *fs, struct commit_job **jobs,
			 size_t n);

void commit_submit(struct dboxfs *fs, struct commit_job *job)
{
	bool here;

	job->next = NULL;
	pthread_mutex_lock(&fs->commit.lock);
	/* before the thread runs (start-up), commit_queued takes the queue */
	here = fs->commit.started && !fs->commit.stop && !fs->commit.busy &&
		fs->commit.head == NULL;
	if (here) {
		fs->commit.busy = true;
	} else {
		*fs->commit.tail = job;
		fs->commit.tail = &job->next;
		if (!fs->commit.busy)
			pthread_cond_signal(&fs->commit.cond);
	}
	pthread_mutex_unlock(&fs->commit.lock);
	if (!here)
		return;
	commit_batch(fs, &job, 1);
	pthread_mutex_lock(&fs->commit.lock);
	fs->commit.busy = false;
	/* what queued behind this commit is the committer's (and a stop
	 * waits for this commit) */
	if (fs->commit.head != NULL || fs->commit.stop)
		pthread_cond_signal(&fs->commit.cond);
	pthread_mutex_unlock(&fs->commit.lock);
}

static enum dbox_maildir_dir job_dir(const struct commit_job *j)
{
	if (!j->in_new)
		return DBOX_DIR_CUR;
	return j->new_info ? DBOX_DIR_NEW_INFO : DBOX_DIR_NEW;
}

/* An existing message of the same name is replaced (rename(2) semantics):
 * it is expunged in the same transaction. */
static int add_job(struct dboxfs *fs, struct dbox_save_txn *txn,
		   struct commit_job *j, struct dbox_err *err)
{
	struct dbox_save_opts o = {
		.mailbox_id = j->box,
		.received = j->received,
		.received_ns = j->received_ns,
		.base = j->base,
		.flags = j->flags,
		.keywords = j->keywords,
		.in_new = j->in_new,
		.new_info = j->new_info,
		.mode = j->mode,
		.uid = j->resv_uid,
		.keep_dir_mtime = j->keep_dir_mtime,
	};
	struct dbox_msg like = {
		.flags = j->flags,
		.keywords = j->keywords,
		.in_new = j->in_new,
		.new_info = j->new_info,
	};
	struct dbox_msg old;
	int ret;

	snprintf(like.base, sizeof(like.base), "%s", j->base);
	if (lseek(j->fd, 0, SEEK_SET) < 0) {
		snprintf(err->msg, sizeof(err->msg), "seek: %s",
			 strerror(errno));
		return -errno;
	}
	j->replaced = false;
	if (msgname_like(fs, j->box, &like, &old) == 0) {
		ret = dbox_save_expunge(txn, j->box, old.uid, err);
		if (ret < 0)
			return ret;
		j->replaced = true;
	}
	if (j->prepared != NULL) {
		/* its bytes are in the store and durable already */
		ret = dbox_save_set_state(j->prepared, 0, j->flags,
					  j->keywords, job_dir(j), err);
		if (ret == 0)
			ret = dbox_save_set_mode(j->prepared, 0, j->mode, err);
		if (ret == 0)
			ret = dbox_save_merge(txn, j->prepared, err);
		if (ret == 0) {
			j->prepared = NULL;
			return 0;
		}
		dbox_save_rollback(j->prepared);
		j->prepared = NULL;
		err->msg[0] = '\0';
	}
	return dbox_save_add_fd(txn, j->fd, &o, err);
}

static int run_txn(struct dboxfs *fs, struct commit_job **jobs, size_t n,
		   struct dbox_err *err)
{
	struct dbox_save_txn *txn = NULL;
	uint32_t uids[COMMIT_BATCH_MAX];
	int ret = dbox_save_begin(fs->store, &txn, err);

	if (ret < 0)
		return ret;    /* txn was never set */
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = add_job(fs, txn, jobs[i], err);
	if (ret < 0) {
		dbox_save_rollback(txn);
		return ret;
	}
	ret = dbox_save_commit(txn, uids, err);
	for (size_t i = 0; ret == 0 && i < n; i++)
		jobs[i]->uid = uids[i];
	return ret;
}

/* A file committed at its close may get a chmod or utimensat before its
 * commit is done (rsync --inplace sets them by path after the close):
 * those went to the file, and the message takes them over before it
 * answers for the file; later ones go to the message. */
static void become_msg(struct dboxfs *fs, struct commit_job *j)
{
	struct dbox_err err = { "" };
	struct stat st;
	int ret = 0;

	pthread_mutex_lock(&fs->commit.attr_lock);
	if (fstat(j->fd, &st) == 0) {
		if (msg_mode(fs, st.st_mode) != j->mode)
			ret = dbox_msg_set_mode(fs->store, j->box, j->uid,
						S_IFREG | (st.st_mode & 07777),
						&err);
		if (ret == 0 && (st.st_mtim.tv_sec != j->received ||
				 st.st_mtim.tv_nsec != j->received_ns))
			ret = dbox_msg_set_received(fs->store, j->box, j->uid,
						    st.st_mtim.tv_sec,
						    st.st_mtim.tv_nsec, &err);
	}
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: attributes of %s: %s\n",
			 j->base, err.msg);
	backing_msg_set(fs, j->src, j->box, j->uid);
	pthread_mutex_unlock(&fs->commit.attr_lock);
}

static void finish_job(struct dboxfs *fs, struct commit_job *j)
{
	if (j->ret == 0) {
		/* a renamed file's inode goes on as the message's; a
		 * link()ed one stays an ordinary file of tmp/ (spec 3),
		 * which the client may link again or read after the
		 * message is gone */
		if (j->src != NULL && j->src_dirfd >= 0)
			become_msg(fs, j);
		if (j->src_dirfd >= 0) {
			struct timespec tv[2];
			bool keep = j->keep_dir_mtime &&
				    backing_dir_times_save(j->src_dirfd, tv);

			flush_spool_done(fs, j->src_dirfd, j->src_name,
					 j->box, j->uid);
			if (keep)
				backing_dir_times_restore(j->src_dirfd, tv);
		}
	}
	if (j->req != NULL && j->reply_entry && j->ret == 0) {
		struct stat st;
		int ret = attr_get(fs, view_ino_msg(j->box, j->uid), &st);

		if (ret < 0)
			fuse_reply_err(j->req, dboxfs_errno(ret));
		else
			reply_entry(j->req, &st);
	} else if (j->req != NULL) {
		fuse_reply_err(j->req, j->ret == 0 ? 0 : dboxfs_errno(j->ret));
	}
	/* No cache invalidation here: the kernel may hold the directory
	 * locks of a following rename that waits for us, and a notify that
	 * waits for those locks could never be interrupted.  The kernel's
	 * inode for the new name is the delivered file's, which answers
	 * for the message from now on (binode msg_box/msg_uid), and its
	 * entry times out. */
	if (j->prepared != NULL)
		dbox_save_rollback(j->prepared);
	if (j->src_dirfd >= 0)
		close(j->src_dirfd);
	backing_put(fs, j->src);
	close(j->fd);
	free(j);
}

/* Two jobs for one name must not share a transaction (the second replaces
 * the first); such a job waits for the next batch. */
static bool name_in(struct commit_job **jobs, size_t n,
		    const struct commit_job *j)
{
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->box == j->box && strcmp(jobs[i]->base, j->base) == 0)
			return true;
	}
	return false;
}

static size_t take_batch(struct dboxfs *fs, struct commit_job **jobs)
{
	struct commit_job **pp = &fs->commit.head, *j;
	size_t n = 0;

	while ((j = *pp) != NULL && n < COMMIT_BATCH_MAX) {
		if (name_in(jobs, n, j)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		jobs[n++] = j;
	}
	fs->commit.tail = &fs->commit.head;
	while (*fs->commit.tail != NULL)
		fs->commit.tail = &(*fs->commit.tail)->next;
	return n;
}

static void commit_batch(struct dboxfs *fs, struct commit_job **jobs, size_t n)
{
	struct dbox_err err = { "" };
	int ret;

	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->src_ino != 0)
			jobs[i]->prepared = prepare_take(fs, jobs[i]->src_ino,
							 jobs[i]->fd,
							 jobs[i]->box,
							 jobs[i]->base);
	}
	flush_commit_begin(fs);
	ret = run_txn(fs, jobs, n, &err);

	if (ret < 0 && n > 1) {
		/* isolate the failing file: each on its own */
		for (size_t i = 0; i < n; i++) {
			err.msg[0] = '\0';
			jobs[i]->ret = run_txn(fs, &jobs[i], 1, &err);
			if (jobs[i]->ret < 0)
				fuse_log(FUSE_LOG_ERR, "dboxfs: delivery of %s "
					 "failed: %s\n", jobs[i]->base,
					 err.msg);
		}
	} else {
		for (size_t i = 0; i < n; i++)
			jobs[i]->ret = ret;
		if (ret < 0)
			fuse_log(FUSE_LOG_ERR, "dboxfs: delivery of %s failed:"
				 " %s\n", jobs[0]->base, err.msg);
	}
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->replaced && jobs[i]->ret == 0) {
			flush_expunged(fs);
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		finish_job(fs, jobs[i]);
	flush_commit_end(fs);
}

static void *committer_main(void *arg)
{
	struct dboxfs *fs = arg;
	struct commit_job **jobs = fs->commit.batch;

	for (;;) {
		size_t n;

		pthread_mutex_lock(&fs->commit.lock);
		while ((fs->commit.head == NULL || fs->commit.busy) &&
		       !(fs->commit.stop && !fs->commit.busy))
			pthread_cond_wait(&fs->commit.cond, &fs->commit.lock);
		if (fs->commit.head == NULL && fs->commit.stop) {
			pthread_mutex_unlock(&fs->commit.lock);
			return NULL;
		}
		n = take_batch(fs, jobs);
		fs->commit.busy = true;
		pthread_mutex_unlock(&fs->commit.lock);
		commit_batch(fs, jobs, n);
		pthread_mutex_lock(&fs->commit.lock);
		fs->commit.busy = false;
		pthread_mutex_unlock(&fs->commit.lock);
	}
}

/* Commits what is queued, in this thread: for start-up, before the
 * committer runs. */
void commit_queued(struct dboxfs *fs)
{
	struct commit_job **jobs = fs->commit.queued_batch;
	size_t n;

	for (;;) {
		pthread_mutex_lock(&fs->commit.lock);
		n = take_batch(fs, jobs);
		pthread_mutex_unlock(&fs->commit.lock);
		if (n == 0)
			return;
		commit_batch(fs, jobs, n);
	}
}

int commit_start(struct dboxfs *fs)
{
	int ret = pthread_create(&fs->commit.thread, NULL, committer_main,
				 fs);

	fs->commit.started = ret == 0;
	return -ret;
}

/* Finishes queued commits (their requests get replies), then stops. */
void commit_stop(struct dboxfs *fs)
{
	if (!fs->commit.started)
		return;
	pthread_mutex_lock(&fs->commit.lock);
	fs->commit.stop = true;
	pthread_cond_broadcast(&fs->commit.cond);
	pthread_mutex_unlock(&fs->commit.lock);
	pthread_join(fs->commit.thread, NULL);
	fs->commit.started = false;
}
