/* dbox-scan.c - walking mailbox directories and dbox files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/dbox-scan.h"
#include "store/store-private.h"

int dbox_scan_file(const char *path, uint64_t limit,
		   const struct dbox_scan_ops *ops, void *ctx,
		   const char *mailbox, uint32_t file_id, uint32_t uid,
		   uint64_t *good_end_r)
{
	struct dbox_file_hdr hdr;
	struct dbox_reader rd;
	struct dbox_record rec;
	char reason[256];
	struct stat st;
	uint64_t off, size;
	int fd, ret = 0;

	*good_end_r = 0;
	fd = dbox_open_regular(path, O_RDONLY, 0);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(reason, sizeof(reason), "cannot open: %s",
			 fd == -EBADMSG ? "a symbolic link or not a regular "
			 "file" : strerror(fd < 0 ? -fd : errno));
		ops->problem(ctx, path, 0, reason);
		if (fd >= 0)
			close(fd);
		return ops->broken == NULL ? 0 :
			ops->broken(ctx, mailbox, file_id, uid, 0);
	}
	size = (uint64_t)st.st_size;
	if (limit != 0 && limit < size)
		size = limit;
	dbox_reader_init_fd(&rd, fd);
	if (dbox_file_hdr_read(&rd, &hdr, reason, sizeof(reason)) < 0) {
		ops->problem(ctx, path, 0, reason);
		close(fd);
		return ops->broken == NULL ? 0 :
			ops->broken(ctx, mailbox, file_id, uid, 0);
	}
	off = hdr.length;
	*good_end_r = off;
	while (off < size && ret == 0) {
		int r = dbox_record_read(&rd, &hdr, off, size, &rec, reason,
					 sizeof(reason));
		if (r < 0) {
			if (r != -EBADMSG)
				snprintf(reason, sizeof(reason), "offset=%llu:"
					 " %s", (unsigned long long)off,
					 strerror(-r));
			/* the rest of the file cannot be framed without
			 * guessing, and we never guess */
			ops->problem(ctx, path, off, reason);
			if (ops->broken != NULL)
				ret = ops->broken(ctx, mailbox, file_id, uid,
						  off);
			break;
		}
		ret = ops->record(ctx, mailbox, file_id, uid, &rec);
		off = rec.end;
		*good_end_r = off;
		dbox_record_clear(&rec);
		if (file_id == 0)
			break;  /* sdbox: one record per file */
	}
	if (ret == 0 && file_id == 0 && off < size)
		ops->problem(ctx, path, off, "trailing bytes after the message");
	close(fd);
	return ret;
}

static int walk_mailbox_dirs(struct dbox_store *store, const char *rel,
			     const struct dbox_scan_ops *ops, void *ctx,
			     bool records);

static int scan_sdbox_dir(struct dbox_store *store, const char *dir,
			  const char *name, const struct dbox_scan_ops *ops,
			  void *ctx)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	if (d == NULL)
		return 0;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		char path[PATH_MAX], *end;
		unsigned long uid;
		uint64_t good;

		if (strncmp(e->d_name, "u.", 2) != 0)
			continue;
		uid = strtoul(e->d_name + 2, &end, 10);
		if (*end != '\0' || uid == 0 || uid > UINT32_MAX ||
		    e->d_name[2] == '0')
			continue;
		if (dbox_path(path, sizeof(path), "%s/%s", dir, e->d_name) < 0)
			continue;
		ret = dbox_scan_file(path, 0, ops, ctx, name, 0,
				     (uint32_t)uid, &good);
	}
	closedir(d);
	return ret;
}

/* rel: storage path below mailboxes/ ("" at the top) */
static int visit_entry(struct dbox_store *store, const char *rel,
		       const char *entry, const struct dbox_scan_ops *ops,
		       void *ctx, bool records)
{
	char sub[PATH_MAX], dir[PATH_MAX], name[PATH_MAX];
	struct stat st;
	int ret = 0;

	if (dbox_path(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
		      entry) < 0 ||
	    dbox_path(dir, sizeof(dir), "%s/%s/%s", store->root,
		      DBOX_MAILBOX_DIR, sub) < 0)
		return 0;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (strcmp(entry, DBOX_MAIL_DIRNAME) == 0) {
		if (rel[0] == '\0' ||
		    dbox_storage_to_name(rel, name, sizeof(name)) < 0) {
			ops->problem(ctx, dir, 0, "mailbox name is not valid "
				     "modified UTF-7");
			return 0;
		}
		if (ops->mailbox != NULL)
			ret = ops->mailbox(ctx, name);
		if (ret == 0 && records && store->format == DBOX_FORMAT_SDBOX)
			ret = scan_sdbox_dir(store, dir, name, ops, ctx);
		return ret;
	}
	return walk_mailbox_dirs(store, sub, ops, ctx, records);
}

static int walk_mailbox_dirs(struct dbox_store *store, const char *rel,
			     const struct dbox_scan_ops *ops, void *ctx,
			     bool records)
{
	char dir[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int ret = 0;

	if (dbox_path(dir, sizeof(dir), "%s/%s%s%s", store->root,
		      DBOX_MAILBOX_DIR, rel[0] ? "/" : "", rel) < 0)
		return 0;
	d = opendir(dir);
	if (d == NULL)
		return 0;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* Dovecot's trash of deleted mailboxes */
		if (strncmp(e->d_name, "..DOVECOT", 9) == 0)
			continue;
		ret = visit_entry(store, rel, e->d_name, ops, ctx, records);
	}
	closedir(d);
	return ret;
}

int dbox_scan_mailboxes(struct dbox_store *store,
			const struct dbox_scan_ops *ops, void *ctx)
{
	return walk_mailbox_dirs(store, "", ops, ctx, false);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int dbox_scan_mfile_ids(const char *dir, uint32_t **ids_r, size_t *count_r)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint32_t *ids = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char *end;
		unsigned long id;

		if (strncmp(e->d_name, "m.", 2) != 0)
			continue;
		id = strtoul(e->d_name + 2, &end, 10);
		if (*end != '\0' || id == 0 || id > UINT32_MAX)
			continue;  /* m.N.broken, m.N.lock, ... */
		if (n == cap) {
			uint32_t *p = realloc(ids, (cap = cap ? cap * 2 : 64) *
					      sizeof(*ids));
			if (p == NULL) {
				free(ids);
				closedir(d);
				return -ENOMEM;
			}
			ids = p;
		}
		ids[n++] = (uint32_t)id;
	}
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), cmp_u32);
	*ids_r = ids;
	*count_r = n;
	return 0;
}

static int scan_mdbox(struct dbox_store *store,
		      const struct dbox_scan_ops *ops, void *ctx)
{
	char dir[PATH_MAX], path[PATH_MAX];
	uint32_t *ids = NULL;
	size_t count = 0;
	int ret;

	dbox_path(dir, sizeof(dir), "%s/%s", store->root, DBOX_STORAGE_DIR);
	ret = dbox_scan_mfile_ids(dir, &ids, &count);
	if (ret < 0)
		return ret == -ENOENT ? 0 : ret;
	for (size_t i = 0; ret == 0 && i < count; i++) {
		uint64_t good;
		struct stat st;

		dbox_path(path, sizeof(path), "%s/m.%u", dir, ids[i]);
		ret = dbox_scan_file(path, 0, ops, ctx, NULL, ids[i], 0,
				     &good);
		if (ret == 0 && ops->file != NULL)
			ret = ops->file(ctx, ids[i], good,
					stat(path, &st) == 0 ? st.st_mtime : 0);
	}
	free(ids);
	return ret;
}

int dbox_scan_records(struct dbox_store *store,
		      const struct dbox_scan_ops *ops, void *ctx)
{
	if (store->format == DBOX_FORMAT_MDBOX)
		return scan_mdbox(store, ops, ctx);
	return walk_mailbox_dirs(store, "", ops, ctx, true);
}
