/* dbox-purge.c - reclaim the space of expunged mdbox messages.
 *
 * As Dovecot's purge (dbox-format.md 5.6): a file with unreferenced records
 * is rewritten by appending its live records to other files through the
 * normal append path, then one index transaction moves their rows, and the
 * old file is unlinked while we still hold its lock.  Readers that had the
 * old location find the new one in the index (dbox_msg_pread retries).
 *
 * Dovecot, handed a store of ours, rebuilds its map from the m.N files
 * alone (force-resync) and restores every record it finds (dbox-format.md
 * 5.8): an expunged message stays expunged for Dovecot only once its
 * bytes are gone.  So the expunge's own index transaction names the m.N
 * in the meta table ("purge.<id>"), and the file is rewritten when the
 * store is closed, or at the next open if the process died first. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "index/dindex-file.h"
#include "store/dbox-scan.h"
#include "store/mdbox-file.h"
#include "store/mdbox-orig.h"
#include "store/store-private.h"

struct live_rec {
	uint64_t old_offset, new_offset;
	uint32_t new_file;
};

struct purge_file {
	struct dbox_store *store;
	struct dbox_err *err;
	int fd;
	struct dbox_file_hdr hdr;
	struct mdbox_append *apps;   /* files we appended to */
	struct live_rec *live;
	size_t live_count, live_cap;
	uint64_t dead_bytes;
	unsigned int records;
};

static int copy_range(struct purge_file *pf, struct mdbox_append *app,
		      uint64_t from, uint64_t len)
{
	char buf[65536];

	while (len > 0) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		ssize_t r = pread(pf->fd, buf, n, (off_t)from);
		int ret;

		if (r <= 0)
			return r < 0 ? -errno : -EBADMSG;
		ret = dfs_sync_pwrite(app->file, buf, (size_t)r,
				      (off_t)app->end);
		if (ret < 0)
			return ret;
		app->end += (uint64_t)r;
		from += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

static int live_add(struct purge_file *pf, uint64_t old_off, uint64_t new_off,
		    uint32_t new_file)
{
	if (pf->live_count == pf->live_cap) {
		size_t cap = pf->live_cap ? pf->live_cap * 2 : 64;
		struct live_rec *p = realloc(pf->live, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		pf->live = p;
		pf->live_cap = cap;
	}
	pf->live[pf->live_count++] = (struct live_rec){ old_off, new_off,
							new_file };
	return 0;
}

/* A live record is written anew with a 30-byte header (the old file may
 * use another header size) followed by its body and metadata verbatim. */
static int move_record(struct purge_file *pf, const struct dbox_record *rec)
{
	unsigned char hdr[DBOX_MSG_HEADER_SIZE];
	struct mdbox_append *app = pf->apps;
	uint64_t start;
	int ret;

	uint64_t need = rec->end - rec->offset;

	if (app == NULL || app->end + need >= pf->store->rotate_size) {
		ret = mdbox_append_get(pf->store, need, &app, pf->err);
		if (ret < 0)
			return ret;
		app->next = pf->apps;
		pf->apps = app;
	}
	start = app->end;
	dbox_msg_hdr_format(hdr, rec->body_size);
	ret = dfs_sync_pwrite(app->file, hdr, sizeof(hdr), (off_t)start);
	if (ret == 0) {
		app->end += sizeof(hdr);
		ret = copy_range(pf, app, rec->body_offset,
				 rec->end - rec->body_offset);
	}
	if (ret == 0)
		ret = live_add(pf, rec->offset, start, app->file_id);
	if (ret < 0)
		return dbox_fail(pf->err, ret, "purge copy: %s", strerror(-ret));
	return 0;
}

static int purge_record(void *ctx, const char *mailbox, uint32_t file_id,
			uint32_t uid, const struct dbox_record *rec)
{
	struct purge_file *pf = ctx;
	int64_t refs;
	int ret = dindex_file_refs_at(pf->store->idx, file_id, rec->offset,
				      &refs);

	pf->records++;
	if (ret < 0)
		return ret;
	if (refs == 0) {
		pf->dead_bytes += rec->end - rec->offset;
		return 0;
	}
	return move_record(pf, rec);
}

static void purge_problem(void *ctx, const char *path, uint64_t offset,
			  const char *what)
{
	struct purge_file *pf = ctx;

	/* a file we cannot frame completely is left alone: rewriting it
	 * would drop what we cannot read */
	pf->dead_bytes = 0;
	pf->live_count = 0;
	pf->records = UINT32_MAX;
	dbox_log(DBOX_LOG_WARNING, "purge: skipping %s (offset %llu): %s",
		 path, (unsigned long long)offset, what);
}

/* A move committed after our copy rewrote B in the old place: the copy
 * must name the mailbox the row has now (mdbox-orig.h). */
static int orig_follows(struct dbox_store *store, const struct live_rec *l,
			struct dbox_err *err)
{
	struct dbox_msg msg;
	int64_t box;
	uint32_t uid;
	int ret = dindex_file_msg_at(store->idx, l->new_file, l->new_offset,
				     &box, &uid);

	if (ret == 0)
		ret = dbox_msg_get(store, box, uid, &msg, err);
	if (ret == 0)
		ret = mdbox_orig_set(store, &msg, box, err);
	return ret == -ENOSPC ? 0 : ret;
}

static int commit_moves(struct purge_file *pf, uint32_t old_id,
			struct dbox_err *err)
{
	struct dbox_store *store = pf->store;
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	for (size_t i = 0; ret == 0 && i < pf->live_count; i++) {
		bool moved;

		ret = dindex_file_move_rec(store->idx, old_id,
					   pf->live[i].old_offset,
					   pf->live[i].new_file,
					   pf->live[i].new_offset, &moved, err);
		/* expunged after our scan: dead in its new place now */
		if (ret == 0 && !moved)
			ret = dbox_purge_mark(store, pf->live[i].new_file, err);
		else if (ret == 0)
			ret = orig_follows(store, &pf->live[i], err);
	}
	if (ret == 0)
		ret = dindex_purge_unmark(store->idx, old_id, NULL, err);
	for (struct mdbox_append *a = pf->apps; ret == 0 && a != NULL;
	     a = a->next)
		ret = mdbox_append_record(store, a, err);
	if (ret == 0)
		ret = dindex_file_delete(store->idx, old_id, err);
	/* nothing may point into the old file any more */
	if (ret == 0 && dindex_file_referenced(store->idx, old_id))
		ret = dbox_fail(err, -EAGAIN, "m.%u gained a reference during "
				"purge", old_id);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

static void release_apps(struct purge_file *pf, bool rollback)
{
	while (pf->apps != NULL) {
		struct mdbox_append *a = pf->apps;

		pf->apps = a->next;
		mdbox_append_release(pf->store, a, rollback);
	}
}

/* Returns bytes reclaimed from this file, 0 if it was left alone;
 * *done_r = false if it was busy (someone appends to it). */
static int64_t purge_one(struct dbox_store *store, uint32_t id,
			 uint64_t committed, bool *done_r,
			 struct dbox_err *err)
{
	struct dbox_scan_ops ops = { .record = purge_record,
				     .problem = purge_problem };
	struct purge_file pf = { .store = store, .err = err, .fd = -1 };
	char path[PATH_MAX];
	uint64_t good;
	int ret;

	*done_r = true;
	dbox_mdbox_path(store, id, path, sizeof(path));
	pf.fd = dbox_open_regular(path, O_RDWR, 0);
	if (pf.fd < 0)
		return 0;
	if (flock(pf.fd, LOCK_EX | LOCK_NB) < 0) {
		close(pf.fd);
		*done_r = false;
		return 0;  /* someone appends to it: next time */
	}
	/* the size listed before we held the lock may have grown since */
	mdbox_file_committed(store, id, &committed, NULL);
	ret = dbox_scan_file(path, committed, &ops, &pf, NULL, id, 0, &good);
	if (ret == 0 && (pf.dead_bytes == 0 || pf.records == UINT32_MAX)) {
		release_apps(&pf, true);
		close(pf.fd);
		free(pf.live);
		return 0;
	}
	for (struct mdbox_append *a = pf.apps; ret == 0 && a != NULL;
	     a = a->next)
		ret = mdbox_append_sync(a, err);
	if (ret == 0)
		ret = commit_moves(&pf, id, err);
	release_apps(&pf, ret < 0);
	/* the old file goes once the index no longer names it durably */
	if (ret == 0)
		ret = dindex_sync(store->idx, err);
	if (ret == 0) {
		dbox_fcache_drop(store, path);
		unlink(path);
	}
	close(pf.fd);
	free(pf.live);
	return ret < 0 ? ret : (int64_t)pf.dead_bytes;
}

struct file_list {
	uint32_t *ids;
	uint64_t *sizes;
	size_t n, cap;
};

static int file_list_add(void *ctx, uint32_t file_id, uint64_t size,
			 bool sealed)
{
	struct file_list *fl = ctx;

	(void)sealed;
	if (fl->n == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 64;
		uint32_t *ni = realloc(fl->ids, cap * sizeof(*ni));
		uint64_t *ns;

		if (ni == NULL)
			return -ENOMEM;
		fl->ids = ni;
		ns = realloc(fl->sizes, cap * sizeof(*ns));
		if (ns == NULL)
			return -ENOMEM;
		fl->sizes = ns;
		fl->cap = cap;
	}
	fl->ids[fl->n] = file_id;
	fl->sizes[fl->n++] = size;
	return 0;
}

int64_t dbox_store_purge(struct dbox_store *store, struct dbox_err *err)
{
	struct file_list fl = { 0 };
	int64_t total = 0;
	int ret;

	if (store->format != DBOX_FORMAT_MDBOX)
		return 0;
	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	/* a tree taken over from Dovecot: its map points into the m.N files
	 * by offset, which a rewrite here would leave wrong */
	if (store->origin != DBOX_ORIGIN_DBOXFS)
		return dbox_fail(err, -EOPNOTSUPP, "a store Dovecot made: "
				 "purge it with doveadm purge");
	/* the whole list first: each file's purge is a write of its own */
	ret = dindex_files_each(store->idx, file_list_add, &fl, err);
	for (size_t i = 0; ret == 0 && i < fl.n && total >= 0; i++) {
		bool done;
		int64_t r = purge_one(store, fl.ids[i], fl.sizes[i], &done, err);

		total = r < 0 ? r : total + r;
	}
	free(fl.ids);
	free(fl.sizes);
	if (ret == -ENOMEM)
		return dbox_fail(err, -ENOMEM, "out of memory");
	if (ret < 0)
		return ret;
	if (total >= 0) {
		/* what the open already purged counts as this purge's */
		total += (int64_t)atomic_exchange(&store->purged, 0);
	}
	return total;
}

int dbox_purge_mark(struct dbox_store *store, uint32_t file_id,
		    struct dbox_err *err)
{
	char token[33];

	/* a tree taken over from Dovecot: Dovecot's map still counts the
	 * message, so its bytes must stay where the map says */
	if (store->origin != DBOX_ORIGIN_DBOXFS)
		return 0;
	/* a fresh value each time: a purge that scanned the file before
	 * this mark was set leaves it in place (dbox_purge_pending) */
	dbox_guid_generate(token);
	atomic_store(&store->purge_marked, true);
	return dindex_purge_mark(store->idx, file_id, token, err);
}

struct pending {
	uint32_t id;
	char token[33];
};

struct pending_list {
	struct pending *p;
	size_t n;
};

static int pending_add(void *ctx, uint32_t file_id, const char *token)
{
	struct pending_list *pl = ctx;
	struct pending *np = realloc(pl->p, (pl->n + 1) * sizeof(*np));

	if (np == NULL)
		return -ENOMEM;
	pl->p = np;
	np[pl->n].id = file_id;
	snprintf(np[pl->n].token, sizeof(np[pl->n].token), "%s", token);
	pl->n++;
	return 0;
}

static int list_pending(struct dbox_store *store, struct pending **p_r,
			size_t *n_r, struct dbox_err *err)
{
	struct pending_list pl = { NULL, 0 };
	int ret = dindex_purge_marks(store->idx, pending_add, &pl, err);

	*p_r = NULL;
	*n_r = 0;
	if (ret < 0) {
		free(pl.p);
		return ret == -ENOMEM ? dbox_fail(err, ret, "out of memory") :
			ret;
	}
	*p_r = pl.p;
	*n_r = pl.n;
	return 0;
}

/* The file had nothing dead (or cannot be framed): its mark goes, unless
 * an expunge set it again since we read it. */
static int unmark(struct dbox_store *store, const struct pending *p,
		  struct dbox_err *err)
{
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = dindex_purge_unmark(store->idx, p->id, p->token, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

int dbox_purge_pending(struct dbox_store *store, struct dbox_err *err)
{
	struct pending *p;
	size_t n;
	int ret;

	if (store->format != DBOX_FORMAT_MDBOX || store->readonly)
		return 0;
	ret = list_pending(store, &p, &n, err);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		uint64_t committed = 0;
		bool done;
		int64_t r;

		if (mdbox_file_committed(store, p[i].id, &committed,
					 NULL) == -ENOENT) {
			ret = unmark(store, &p[i], err);  /* purged already */
			continue;
		}
		r = purge_one(store, p[i].id, committed, &done, err);
		if (r < 0)
			ret = (int)r;
		else if (r == 0 && done)
			ret = unmark(store, &p[i], err);
		else
			store->purged += (uint64_t)r;
		/* someone appends to it: the next sync tries again */
		if (r >= 0 && !done)
			atomic_store(&store->purge_marked, true);
	}
	free(p);
	return ret;
}
