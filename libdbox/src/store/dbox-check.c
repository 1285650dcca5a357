/* dbox-check.c - does every indexed message frame correctly where the index
 * says, and do the files hold nothing the index does not account for? */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/dbox-attach.h"
#include "store/dbox-rfile.h"
#include "store/dbox-scan.h"
#include "store/mdbox-file.h"
#include "index/dindex.h"
#include "store/store-private.h"

struct check_ctx {
	struct dbox_store *store;
	void (*cb)(void *ctx, const struct dbox_check_problem *p);
	void *cb_ctx;
	int problems;
	/* last opened file, reused while rows of one m.N follow each other */
	struct dbox_rfile file;
	struct mdbox_dovecot_map map;   /* read when a file needs it */
};

static void problem(struct check_ctx *c, const char *path, uint64_t offset,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void problem(struct check_ctx *c, const char *path, uint64_t offset,
		    const char *fmt, ...)
{
	struct dbox_check_problem p = { path, offset, NULL };
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	p.what = what;
	c->problems++;
	c->cb(c->cb_ctx, &p);
}

static void scan_problem(void *ctx, const char *path, uint64_t offset,
			 const char *what)
{
	problem(ctx, path, offset, "%s", what);
}

static bool open_file(struct check_ctx *c, const char *path)
{
	char reason[256];
	int e = 0;

	switch (dbox_rfile_open(&c->file, path, &e, reason, sizeof(reason))) {
	case DBOX_RFILE_READY:
		return true;
	case DBOX_RFILE_CANNOT_OPEN:
		problem(c, path, 0, "indexed file cannot be opened: %s",
			e == EBADMSG ? "a symbolic link or not a regular "
			"file" : strerror(e));
		return false;
	case DBOX_RFILE_BAD_HEADER:
		problem(c, path, 0, "%s", reason);
		return false;
	default:
		return false;
	}
}

static void compare(struct check_ctx *c, const struct dbox_msg *m,
		    const struct dbox_record *rec)
{
	const char *path = c->file.path;
	const char *guid = rec->meta.guid != NULL ? rec->meta.guid : "";
	uint64_t size = rec->meta.has_psize ? rec->meta.psize : rec->body_size;

	if (rec->body_size != dbox_msg_where(m)->body_size)
		problem(c, path, dbox_msg_where(m)->offset,
			"size %llu, index says %llu",
			(unsigned long long)rec->body_size,
			(unsigned long long)dbox_msg_where(m)->body_size);
	if (rec->end - rec->offset != dbox_msg_where(m)->rec_size)
		problem(c, path, dbox_msg_where(m)->offset,
			"record length %llu, index says "
			"%llu", (unsigned long long)(rec->end - rec->offset),
			(unsigned long long)dbox_msg_where(m)->rec_size);
	if (strcmp(guid, m->guid) != 0)
		problem(c, path, dbox_msg_where(m)->offset,
			"GUID %s, index says %s", guid,
			m->guid);
	if (size != m->size)
		problem(c, path, dbox_msg_where(m)->offset,
			"physical size %llu, index says "
			"%llu", (unsigned long long)size,
			(unsigned long long)m->size);
}

/* The virtual size (CRLF line ends) recomputed from the message as it
 * reads now: a damaged body of unchanged size (a byte that became LF) no
 * longer matches what was stored at save time.  Only the stored values
 * are judged: a record without V whose row took the physical size as a
 * stand-in has nothing to compare with. */
static void check_vsize(struct check_ctx *c, const struct dbox_msg *m,
			const struct dbox_record *rec)
{
	const char *path = c->file.path;
	char buf[64 * 1024];
	struct dbox_vsize vs = { 0 };
	uint64_t off = 0;
	ssize_t n;

	if (!rec->meta.has_vsize && m->vsize == m->size)
		return;
	while ((n = dbox_msg_pread(c->store, m, buf, sizeof(buf), off,
				   NULL)) > 0) {
		dbox_vsize_update(&vs, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (n < 0 || off != m->size)
		return;  /* unreadable: its framing or attachments say why */
	if (vs.vsize != m->vsize ||
	    (rec->meta.has_vsize && rec->meta.vsize != vs.vsize))
		problem(c, path, dbox_msg_where(m)->offset,
			"vsize mismatch: the message "
			"reads as %llu, index says %llu, metadata V %s%llx",
			(unsigned long long)vs.vsize,
			(unsigned long long)m->vsize,
			rec->meta.has_vsize ? "" : "(none) ",
			(unsigned long long)rec->meta.vsize);
}

static int check_msg(void *ctx, const struct dbox_msg *m)
{
	struct check_ctx *c = ctx;
	char path[PATH_MAX], reason[256];
	struct dbox_err err = { "" };
	struct dbox_record rec;

	if (dbox_msg_file_path(c->store, m, path, sizeof(path)) < 0) {
		problem(c, "?", dbox_msg_where(m)->offset,
			"no path for mailbox #%lld uid %u",
			(long long)m->mailbox_id, m->uid);
		return 0;
	}
	if (!open_file(c, path))
		return 0;
	if (dbox_msg_where(m)->hdr_size != c->file.hdr.msg_hdr_size)
		problem(c, path, dbox_msg_where(m)->offset,
			"header size %u, index says %u",
			c->file.hdr.msg_hdr_size, dbox_msg_where(m)->hdr_size);
	if (dbox_rfile_record(&c->file, dbox_msg_where(m)->offset, &rec, reason,
			      sizeof(reason)) < 0) {
		problem(c, path, dbox_msg_where(m)->offset, "%s", reason);
		return 0;
	}
	compare(c, m, &rec);
	if (dbox_attach_check(c->store, m, &rec, path, &err) < 0)
		problem(c, path, dbox_msg_where(m)->offset, "%s", err.msg);
	else
		check_vsize(c, m, &rec);
	dbox_record_clear(&rec);
	return 0;
}

static int check_mailbox_msgs(void *ctx, const struct dbox_mailbox *box)
{
	struct check_ctx *c = ctx;

	dbox_msg_list(c->store, box->id, 0, -1, 0, check_msg, c, NULL);
	return 0;
}

static int ignore_record(void *ctx, const char *mailbox, uint32_t file_id,
			 uint32_t uid, const struct dbox_record *rec)
{
	return 0;
}

static bool locked_by_other(const char *path)
{
	/* a writer's owner directory: never a FIFO's open that blocks */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	bool locked;

	if (fd < 0)
		return false;
	locked = flock(fd, LOCK_EX | LOCK_NB) < 0;
	close(fd);
	return locked;
}

/* The bytes of a known m.N beyond its committed end: reported unless
 * Dovecot's map places records there (mdbox_file_committed_end). */
static void check_tail(struct check_ctx *c, const char *path,
		       uint64_t size, uint64_t ours, uint64_t end)
{
	if (end == UINT64_MAX)
		problem(c, path, ours, "%llu bytes after the committed end, "
			"and Dovecot's map, which may have records there, "
			"cannot be read", (unsigned long long)(size - ours));
	else if (size > end)
		problem(c, path, end, "%llu uncommitted bytes after the "
			"committed end", (unsigned long long)(size - end));
	else if (size < ours)
		problem(c, path, size, "file is shorter than its committed "
			"end %llu", (unsigned long long)ours);
}

/* Every m.N: its records frame up to the committed end, nothing is beyond
 * it, and the index knows the file.  Checked under the file's flock, as
 * appenders (ours and Dovecot's) hold it until their commit: its size and
 * committed end then agree with each other. */
static void check_mfile(struct check_ctx *c, uint32_t id)
{
	struct dbox_scan_ops ops = { .record = ignore_record,
				     .problem = scan_problem };
	char path[PATH_MAX];
	uint64_t ours = 0, end = 0, limit, good;
	struct stat sb;
	bool known;
	int fd;

	dbox_mdbox_path(c->store, id, path, sizeof(path));
	/* never a FIFO's open that blocks */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno != ENOENT)  /* ENOENT: purged since the listing */
			problem(c, path, 0, "cannot be opened: %s",
				strerror(errno));
		return;
	}
	/* shared: two checks do not exclude each other; appenders (ours
	 * and Dovecot's) take it exclusive */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 || fstat(fd, &sb) < 0) {
		close(fd);
		return;  /* a writer is at work on it */
	}
	known = mdbox_file_committed_end(c->store, &c->map, id,
					 (uint64_t)sb.st_size, &ours, &end,
					 NULL) == 0;
	if (!known && c->store->origin == DBOX_ORIGIN_DOVECOT) {
		/* Dovecot's file: its map, not our index, accounts for it;
		 * only its framing is ours to check */
		dbox_scan_file(path, 0, &ops, c, NULL, id, 0, &good);
	} else if (!known && sb.st_nlink > 1) {
		/* a new file a writer filled and closed before its commit:
		 * its owner directory links it (a dead writer's were
		 * removed at open) */
	} else if (!known) {
		/* recovery at the open removed every file a dead writer of
		 * ours left, so this one came from elsewhere (Dovecot) */
		problem(c, path, 0, "file is not in the index (not written "
			"by dboxfs; `dboxctl reindex` adds its messages)");
	} else {
		limit = end == UINT64_MAX ? ours : end;
		dbox_scan_file(path, limit, &ops, c, NULL, id, 0, &good);
		if (good != limit && (uint64_t)sb.st_size >= limit)
			problem(c, path, good, "records end at %llu, committed "
				"end is %llu", (unsigned long long)good,
				(unsigned long long)limit);
		check_tail(c, path, (uint64_t)sb.st_size, ours, end);
	}
	close(fd);
}

static void check_storage(struct check_ctx *c)
{
	char dir[PATH_MAX];
	uint32_t *ids = NULL;
	size_t n = 0;

	dbox_path(dir, sizeof(dir), "%s/%s", c->store->root, DBOX_STORAGE_DIR);
	if (dbox_scan_mfile_ids(dir, &ids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		check_mfile(c, ids[i]);
	free(ids);
}

/* sdbox: a u.N the index does not know */
static int orphan_record(void *ctx, const char *mailbox, uint32_t file_id,
			 uint32_t uid, const struct dbox_record *rec)
{
	struct check_ctx *c = ctx;
	struct dbox_mailbox box;
	char path[PATH_MAX];

	if (dbox_mailbox_lookup(c->store, mailbox, &box, NULL) == 0 &&
	    dbox_msg_get(c->store, box.id, uid, NULL, NULL) == 0)
		return 0;
	dbox_sdbox_path(c->store, mailbox, uid, path, sizeof(path));
	problem(c, path, rec->offset, "message file is not in the index");
	return 0;
}

static void check_scratch(struct check_ctx *c)
{
	DIR *d = opendir(c->store->scratch_dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];

		if (e->d_name[0] == '.' ||
		    dbox_path(path, sizeof(path), "%s/%s",
			      c->store->scratch_dir, e->d_name) < 0)
			continue;
		if (c->store->owner_dir != NULL &&
		    strcmp(path, c->store->owner_dir) == 0)
			continue;
		if (!locked_by_other(path))
			problem(c, path, 0, "unfinished transaction of a "
				"writer that died (removed at the next open)");
	}
	closedir(d);
}

int dbox_store_check(struct dbox_store *store,
		     void (*cb)(void *ctx, const struct dbox_check_problem *p),
		     void *ctx, struct dbox_err *err)
{
	struct check_ctx c = { .store = store, .cb = cb, .cb_ctx = ctx };
	struct dbox_scan_ops ops = { .record = orphan_record,
				     .problem = scan_problem };
	int ret;

	/* the open may have trusted the index's stamp; check means check */
	ret = dindex_check(store->idx, err);
	if (ret < 0)
		return ret;
	dbox_rfile_init(&c.file);
	ret = dbox_mailbox_list(store, check_mailbox_msgs, &c, err);
	dbox_rfile_close(&c.file);
	if (ret < 0)
		return ret;
	if (store->format == DBOX_FORMAT_MDBOX)
		check_storage(&c);
	else
		dbox_scan_records(store, &ops, &c);
	mdbox_dovecot_map_free(&c.map);
	check_scratch(&c);
	return c.problems;
}
