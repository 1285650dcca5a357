/* dbox-store.c - creating, detecting and opening stores. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/dindex-meta.h"
#include "store/mdbox-file.h"
#include "store/mdbox-maplock.h"
#include "store/store-private.h"

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool dir_is_empty(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return true;
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return false;
	DIR *d = fdopendir(fd);
	struct dirent *e;
	bool empty = true;

	if (d == NULL) {
		close(fd);
		return false;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

static const char *format_name(enum dbox_store_format f)
{
	return f == DBOX_FORMAT_MDBOX ? "mdbox" : "sdbox";
}

static int write_meta(struct dindex *idx, enum dbox_store_format format,
		      enum dbox_store_origin origin, uint64_t rotate_size,
		      const char *root, struct dbox_err *err)
{
	char buf[32];
	int ret = dindex_write_begin(idx, err);

	if (ret < 0)
		return ret;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rotate_size);
	ret = dindex_meta_set(idx, "format", format_name(format), err);
	if (ret == 0)
		ret = dindex_meta_set(idx, "origin", origin ==
				      DBOX_ORIGIN_DOVECOT ? "dovecot" :
				      "dboxfs", err);
	if (ret == 0)
		ret = dindex_meta_set(idx, "rotate_size", buf, err);
	if (ret == 0)
		ret = dindex_meta_set(idx, "root", root, err);
	if (ret == 0)
		return dindex_write_commit(idx, err);
	dindex_write_rollback(idx);
	return ret;
}

static void store_free(struct dbox_store *store)
{
	dbox_dovecot_free(store->dovecot);
	mdbox_append_cache_clear(store);
	pthread_mutex_destroy(&store->append_lock);
	mdbox_maplock_free(store);
	pthread_mutex_destroy(&store->maplock_mutex);
	pthread_mutex_destroy(&store->purge_lock);
	if (store->fs != NULL) {
		dbox_fcache_clear(store);
		dfs_free(store->fs);
	}
	dindex_close(store->idx);
	if (store->owner_lock_fd >= 0) {
		/* a clean close leaves nothing behind in scratch */
		dbox_remove_tree(store->owner_dir);
		close(store->owner_lock_fd);
	}
	pthread_mutex_destroy(&store->fcache_lock);
	dbox_rcache_drop(store, "", true);
	pthread_mutex_destroy(&store->rcache_lock);
	free(store->root);
	free(store->ctl_dir);
	free(store->scratch_dir);
	free(store->owner_dir);
	free(store->files_dir);
	free(store->tree_files_dir);
	dbox_tree_free(store);
	free(store->attachment_dir);
	free(store->dovecot_index_dir);
	free(store->dovecot_prefix);
	free(store->hidden);
	free(store);
}

static struct dbox_store *store_alloc(const char *root)
{
	struct dbox_store *store = calloc(1, sizeof(*store));

	if (store == NULL)
		return NULL;
	store->owner_lock_fd = -1;
	pthread_mutex_init(&store->fcache_lock, NULL);
	pthread_mutex_init(&store->rcache_lock, NULL);
	pthread_mutex_init(&store->append_lock, NULL);
	pthread_mutex_init(&store->maplock_mutex, NULL);
	pthread_mutex_init(&store->purge_lock, NULL);
	store->root = strdup(root);
	if (store->root == NULL) {
		store_free(store);
		return NULL;
	}
	return store;
}

static int set_ctl_dirs(struct dbox_store *store, const char *ctl,
			struct dbox_err *err)
{
	char buf[PATH_MAX];

	store->ctl_dir = strdup(ctl);
	if (dbox_path(buf, sizeof(buf), "%s/tmp", ctl) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long: %s", ctl);
	store->scratch_dir = strdup(buf);
	if (dbox_path(buf, sizeof(buf), "%s/files", ctl) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long: %s", ctl);
	store->files_dir = strdup(buf);
	if (store->ctl_dir == NULL || store->scratch_dir == NULL ||
	    store->files_dir == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	return 0;
}

int dbox_store_create(const char *root, const struct dbox_create_opts *opts,
		      struct dbox_err *err)
{
	char path[PATH_MAX], real[PATH_MAX];
	enum dbox_store_format format = opts->format;
	struct dindex *idx;
	struct dbox_store *store;
	struct dbox_mailbox inbox;
	int ret;

	if (format != DBOX_FORMAT_SDBOX && format != DBOX_FORMAT_MDBOX)
		return dbox_fail(err, -EINVAL, "unknown store format");
	if (!dir_is_empty(root))
		return dbox_fail(err, -EEXIST, "%s exists and is not empty",
				 root);
	ret = dbox_mkdir_p(root, DBOX_DIR_MODE);
	if (ret < 0)
		return dbox_fail(err, ret, "mkdir %s: %s", root,
				 strerror(-ret));
	if (realpath(root, real) == NULL)
		return dbox_fail(err, -errno, "realpath %s: %m", root);
	const char *const dirs[] = {
		DBOX_MAILBOX_DIR, DBOX_CTL_DIR, DBOX_CTL_DIR "/tmp",
		DBOX_CTL_DIR "/files",
		format == DBOX_FORMAT_MDBOX ? DBOX_STORAGE_DIR : NULL,
	};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (dirs[i] == NULL)
			continue;
		if (dbox_path(path, sizeof(path), "%s/%s", real, dirs[i]) < 0)
			return dbox_fail(err, -ENAMETOOLONG, "path too long");
		if (mkdir(path, DBOX_DIR_MODE) < 0 && errno != EEXIST)
			return dbox_fail(err, -errno, "mkdir %s: %m", path);
	}
	if (dbox_path(path, sizeof(path), "%s/%s/%s", real, DBOX_CTL_DIR,
		      DBOX_INDEX_NAME) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	ret = dindex_open(path, false, true, &idx, err);
	if (ret < 0)
		return ret;
	ret = write_meta(idx, format, DBOX_ORIGIN_DBOXFS, opts->rotate_size ?
			 opts->rotate_size : DBOX_DEFAULT_ROTATE_SIZE, real,
			 err);
	dindex_close(idx);
	if (ret < 0)
		return ret;
	ret = dbox_store_open(real, &(struct dbox_open_opts){ 0 }, &store,
			      err);
	if (ret < 0)
		return ret;
	ret = dbox_mailbox_create(store, "INBOX", &inbox, err);
	dbox_store_close(store);
	return ret;
}

/* Where the index of a Dovecot tree lives when we may not write into it:
 * one file per tree under the user's cache directory, named after the
 * tree's path ('/' and '%' percent-encoded so names cannot collide). */
static int foreign_ctl_dir(const char *root, char *buf, size_t len)
{
	const char *base = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char home_cache[PATH_MAX], name[PATH_MAX];
	size_t n = 0;

	if (base == NULL || base[0] == '\0') {
		if (home == NULL || home[0] == '\0')
			home = "/var/cache";
		if (dbox_path(home_cache, sizeof(home_cache), "%s/.cache",
			      home) < 0)
			return -ENAMETOOLONG;
		base = home_cache;
	}
	for (const char *p = root; *p != '\0'; p++) {
		if (n + 4 >= sizeof(name))
			return -ENAMETOOLONG;
		if (*p == '/' || *p == '%') {
			snprintf(name + n, 4, "%%%02X", (unsigned char)*p);
			n += 3;
		} else {
			name[n++] = *p;
		}
	}
	name[n] = '\0';
	return dbox_path(buf, len, "%s/dboxfs/%s", base, name);
}

struct detect {
	enum dbox_store_format format;
	enum dbox_store_origin origin;
	bool has_ctl;
};

static int detect_store(const char *root, struct detect *d,
			struct dbox_err *err)
{
	char path[PATH_MAX];

	memset(d, 0, sizeof(*d));
	if (!is_dir(root))
		return dbox_fail(err, -ENOENT, "%s: no such directory", root);
	dbox_path(path, sizeof(path), "%s/%s", root, DBOX_CTL_DIR);
	d->has_ctl = is_dir(path);
	dbox_path(path, sizeof(path), "%s/%s", root, DBOX_STORAGE_DIR);
	if (is_dir(path)) {
		d->format = DBOX_FORMAT_MDBOX;
	} else {
		dbox_path(path, sizeof(path), "%s/%s", root, DBOX_MAILBOX_DIR);
		if (!is_dir(path))
			return dbox_fail(err, -ENOENT, "%s is not a dbox store"
					 " (no mailboxes/ or storage/)", root);
		d->format = DBOX_FORMAT_SDBOX;
	}
	d->origin = d->has_ctl ? DBOX_ORIGIN_DBOXFS : DBOX_ORIGIN_DOVECOT;
	return 0;
}

static int owner_dir_create(struct dbox_store *store, struct dbox_err *err)
{
	char path[PATH_MAX], rnd[33];
	int ret;

	ret = dbox_mkdir_p(store->scratch_dir, DBOX_DIR_MODE);
	if (ret == 0)
		ret = dbox_mkdir_p(store->files_dir, DBOX_DIR_MODE);
	if (ret < 0)
		return dbox_fail(err, ret, "mkdir %s: %s", store->scratch_dir,
				 strerror(-ret));
	dbox_guid_generate(rnd);
	rnd[8] = '\0';
	if (dbox_path(path, sizeof(path), "%s/%ld.%s", store->scratch_dir,
		      (long)getpid(), rnd) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	if (mkdir(path, DBOX_DIR_MODE) < 0)
		return dbox_fail(err, -errno, "mkdir %s: %m", path);
	store->owner_dir = strdup(path);
	/* the lock on the directory itself says "its owner is alive" */
	store->owner_lock_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store->owner_dir == NULL || store->owner_lock_fd < 0 ||
	    flock(store->owner_lock_fd, LOCK_EX | LOCK_NB) < 0)
		return dbox_fail(err, -errno, "lock %s: %m", path);
	return 0;
}

static int load_meta(struct dbox_store *store, struct detect *d,
		     struct dbox_err *err)
{
	char buf[64];
	int ret = dindex_meta_get(store->idx, "format", buf, sizeof(buf), err);

	if (ret == -ENOENT)
		return 1;  /* new index */
	if (ret < 0)
		return ret;
	store->format = strcmp(buf, "mdbox") == 0 ? DBOX_FORMAT_MDBOX :
		DBOX_FORMAT_SDBOX;
	if (store->format != d->format)
		return dbox_fail(err, -EINVAL, "index %s says %s but %s looks "
				 "like %s", dindex_path(store->idx), buf,
				 store->root, format_name(d->format));
	if (dindex_meta_get(store->idx, "origin", buf, sizeof(buf), err) == 0)
		store->origin = strcmp(buf, "dovecot") == 0 ?
			DBOX_ORIGIN_DOVECOT : DBOX_ORIGIN_DBOXFS;
	if (dindex_meta_get(store->idx, "rotate_size", buf, sizeof(buf),
			    err) == 0)
		store->rotate_size = strtoull(buf, NULL, 10);
	if (store->rotate_size == 0)
		store->rotate_size = DBOX_DEFAULT_ROTATE_SIZE;
	return 0;
}

/* The tree an index kept outside it describes: the root directory as the
 * kernel knows it, and its path.  A tree removed and made anew by Dovecot
 * at the same path, or another tree given the index (-o index=, a copy,
 * a move), is another tree. */
static void tree_identity(const char *root, char *buf, size_t len)
{
	struct stat st;

	if (stat(root, &st) < 0)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
}

/* An index of another tree (or of one it cannot tell, from before it
 * kept the identity) is forgotten: mailboxes, messages and names are
 * indexed anew from this tree, never mixed with the old ones. */
static int tie_to_tree(struct dbox_store *store, struct dbox_err *err)
{
	char want[64], have[64] = "", root[PATH_MAX] = "";
	int ret;

	tree_identity(store->root, want, sizeof(want));
	if (dindex_meta_get(store->idx, "tree", have, sizeof(have),
			    NULL) == 0 &&
	    dindex_meta_get(store->idx, "root", root, sizeof(root),
			    NULL) == 0 &&
	    strcmp(have, want) == 0 && strcmp(root, store->root) == 0)
		return 0;
	if (have[0] != '\0')
		dbox_log(DBOX_LOG_INFO, "index %s described another tree "
			 "(%s); indexing %s anew", dindex_path(store->idx),
			 root, store->root);
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = dindex_clear(store->idx, err);
	if (ret == 0)
		ret = dindex_meta_set(store->idx, "tree", want, err);
	if (ret == 0)
		ret = dindex_meta_set(store->idx, "root", store->root, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

/* The damaged file and its WAL (which holds committed transactions)
 * move together to a name of their own, kept for a later look. */
static int move_aside(const char *path, char *aside, size_t len,
		      struct dbox_err *err)
{
	char from[PATH_MAX + 8], to[PATH_MAX + 8];
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	if (snprintf(aside, len, "%s.damaged-%s", path, stamp) >= (int)len)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	if (rename(path, aside) < 0)
		return dbox_fail(err, -errno, "rename %s: %m", path);
	snprintf(from, sizeof(from), "%s-wal", path);
	snprintf(to, sizeof(to), "%s-wal", aside);
	if (rename(from, to) < 0 && errno != ENOENT)
		return dbox_fail(err, -errno, "rename %s: %m", from);
	snprintf(from, sizeof(from), "%s-shm", path);
	unlink(from);
	return 0;
}

/* A new index with every row still readable in the damaged one (flags,
 * keywords, names, uids, mailbox ids); the rebuild that follows matches
 * them with the files as it does with any old index. */
static int repair_index(struct dbox_store *store, const char *path,
			struct dbox_err *err)
{
	char aside[PATH_MAX];
	struct dbox_err serr = { "" };
	int ret = move_aside(path, aside, sizeof(aside), err);

	if (ret < 0)
		return ret;
	dbox_log(DBOX_LOG_WARNING, "index %s is damaged: moved to %s, "
		 "rebuilding", path, aside);
	ret = dindex_open(path, false, true, &store->idx, err);
	if (ret < 0)
		return ret;
	/* nothing readable is no reason to stop: the files still are */
	if (dindex_salvage(store->idx, aside, &serr) < 0)
		dbox_log(DBOX_LOG_WARNING, "%s", serr.msg);
	return 0;
}

static int damaged_index(struct dbox_store *store,
			 const struct dbox_open_opts *o, struct dbox_err *err)
{
	char why[sizeof(err->msg)];

	snprintf(why, sizeof(why), "%s", err->msg);
	return dbox_fail(err, -EBADMSG, "%s; run `dboxctl %s%s%sreindex %s` "
			 "to rebuild it (the damaged file is kept)", why,
			 o->index_path != NULL ? "--index=" : "",
			 o->index_path != NULL ? o->index_path : "",
			 o->index_path != NULL ? " " : "", store->root);
}

/* The caller's kept copies (dbox_store_set_kept) before the open's own
 * resync or reindex removes rows (also a read-only open's of a Dovecot
 * tree, which writes its index). */
static void kept_from_open(struct dbox_store *store,
			   const struct dbox_open_opts *o, bool index_ro)
{
	if (index_ro || o->kept == NULL)
		return;
	if (o->kept_open != NULL)
		o->kept_open(o->kept_ctx, store->ctl_dir);
	dindex_set_kept(store->idx, o->kept, o->kept_ctx);
}

static int open_index(struct dbox_store *store, const struct dbox_open_opts *o,
		      struct detect *d, struct dbox_err *err)
{
	char path[PATH_MAX];
	bool index_ro, repaired = false;
	struct stat st;
	int ret;

	if (o->index_path != NULL)
		snprintf(path, sizeof(path), "%s", o->index_path);
	else if (dbox_path(path, sizeof(path), "%s/%s", store->ctl_dir,
			   DBOX_INDEX_NAME) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	/* read-only is about the mail; a missing index is rebuilt from the
	 * files even then, since nothing can be read without it */
	index_ro = store->readonly && store->origin == DBOX_ORIGIN_DBOXFS &&
		stat(path, &st) == 0;
	if (!index_ro) {
		char dir[PATH_MAX];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			/* only our own default place is made; a path the
			 * user gave with a typo must not grow directories */
			if (o->index_path == NULL)
				dbox_mkdir_p(dir, DBOX_DIR_MODE);
			else if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
				return dbox_fail(err, -ENOENT, "index %s: "
						 "directory %s does not exist",
						 path, dir);
		}
	}
	ret = o->index_checked ?
		dindex_open_checked(path, index_ro, !index_ro,
				    o->deferred_sync, &store->idx, err) :
		dindex_open_ex(path, index_ro, !index_ro, o->deferred_sync,
			       &store->idx, err);
	store->deferred = o->deferred_sync;
	if (ret == 0 && o->index_cache_kib > 0)
		dindex_set_cache(store->idx, (int)(o->index_cache_kib < 65536 ?
						   o->index_cache_kib : 65536));
	if (ret == -EBADMSG && o->repair_index && !index_ro) {
		ret = repair_index(store, path, err);
		repaired = ret == 0;
	} else if (ret == -EBADMSG && err != NULL)
		ret = damaged_index(store, o, err);
	if (ret < 0)
		return ret;
	kept_from_open(store, o, index_ro);
	ret = load_meta(store, d, err);
	if (ret < 0)
		return ret;
	if (ret == 0) {
		/* a Dovecot tree: bring the index up to date with Dovecot's
		 * own indexes on every open; a repaired index: before crash
		 * recovery, which removes m.N files the index does not know */
		if (store->origin == DBOX_ORIGIN_DOVECOT && store->readonly)
			ret = tie_to_tree(store, err);
		if (ret == 0 && (store->origin == DBOX_ORIGIN_DOVECOT ||
				 repaired))
			ret = dbox_store_reindex(store, err);
		return ret < 0 ? ret : 0;
	}
	/* a fresh index: describe the tree, then index its files */
	store->format = d->format;
	store->rotate_size = DBOX_DEFAULT_ROTATE_SIZE;
	ret = write_meta(store->idx, d->format, store->origin,
			 store->rotate_size, store->root, err);
	if (ret == 0 && store->origin == DBOX_ORIGIN_DOVECOT &&
	    store->readonly)
		ret = tie_to_tree(store, err);
	if (ret < 0)
		return ret;
	ret = dbox_store_reindex(store, err);
	return ret < 0 ? ret : 0;
}

/* Whether the index in the tree's control directory says Dovecot made
 * the tree (a takeover mount wrote it); read writing nothing there. */
static bool taken_over(const char *ctl)
{
	char path[PATH_MAX], buf[16] = "";

	return dbox_path(path, sizeof(path), "%s/%s", ctl,
			 DBOX_INDEX_NAME) == 0 &&
		dindex_meta_peek(path, "origin", buf, sizeof(buf)) == 0 &&
		strcmp(buf, "dovecot") == 0;
}

/* A read-only mount of a tree taken over is a read-only mount of a
 * Dovecot tree: its index is kept outside the tree (the one inside is
 * brought up to date with Dovecot's only by a takeover mount, which
 * writes), but the parents the takeover mount kept, and its folders'
 * plain files (by the mailboxes of its index: dbox-tree.c), are read
 * from the tree. */
static int taken_over_readonly(struct dbox_store *store,
			       const struct dbox_open_opts *o,
			       struct detect *d, struct dbox_err *err)
{
	char ctl[PATH_MAX];

	if (!d->has_ctl || !o->readonly || o->takeover ||
	    dbox_path(ctl, sizeof(ctl), "%s/%s", store->root,
		      DBOX_CTL_DIR) < 0 || !taken_over(ctl))
		return 0;
	d->origin = DBOX_ORIGIN_DOVECOT;
	if (dbox_path(ctl, sizeof(ctl), "%s/%s/%s", store->root,
		      DBOX_CTL_DIR, DBOX_INDEX_NAME) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	dbox_tree_load(store, ctl);
	if (dbox_path(ctl, sizeof(ctl), "%s/%s/files", store->root,
		      DBOX_CTL_DIR) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	store->tree_files_dir = strdup(ctl);
	return store->tree_files_dir == NULL ?
		dbox_fail(err, -ENOMEM, "out of memory") : 0;
}

static int choose_ctl(struct dbox_store *store, const struct dbox_open_opts *o,
		      struct detect *d, struct dbox_err *err)
{
	char ctl[PATH_MAX];
	int ret = taken_over_readonly(store, o, d, err);

	if (ret < 0)
		return ret;
	store->origin = d->origin;
	if (d->origin == DBOX_ORIGIN_DOVECOT && !o->takeover) {
		store->readonly = true;
		if (foreign_ctl_dir(store->root, ctl, sizeof(ctl)) < 0)
			return dbox_fail(err, -ENAMETOOLONG, "path too long");
	} else {
		store->readonly = o->readonly;
		if (dbox_path(ctl, sizeof(ctl), "%s/%s", store->root,
			      DBOX_CTL_DIR) < 0)
			return dbox_fail(err, -ENAMETOOLONG, "path too long");
		if (d->origin == DBOX_ORIGIN_DOVECOT && !o->readonly &&
		    mkdir(ctl, DBOX_DIR_MODE) < 0 && errno != EEXIST)
			return dbox_fail(err, -errno, "mkdir %s: %m", ctl);
	}
	return set_ctl_dirs(store, ctl, err);
}

/* Dovecot's mail_attachment_dir: checked now, so that a wrong path is
 * one clear error at open rather than EIO on every message using it. */
static int set_attachment_dir(struct dbox_store *store, const char *dir,
			      struct dbox_err *err)
{
	char real[PATH_MAX];
	struct stat st;

	if (dir == NULL)
		return 0;
	if (realpath(dir, real) == NULL || stat(real, &st) < 0)
		return dbox_fail(err, -errno, "attachment directory %s: %m",
				 dir);
	if (!S_ISDIR(st.st_mode))
		return dbox_fail(err, -ENOTDIR, "attachment directory %s: not "
				 "a directory", dir);
	store->attachment_dir = strdup(real);
	return store->attachment_dir == NULL ?
		dbox_fail(err, -ENOMEM, "out of memory") : 0;
}

/* Dovecot's INDEX= directory: read only, so only for a read-only open
 * of a Dovecot tree (a takeover's hand-back would write into the tree's
 * own index files, which Dovecot does not read then). */
static int set_dovecot_index_dir(struct dbox_store *store, const char *dir,
				 struct dbox_err *err)
{
	char real[PATH_MAX];
	struct stat st;

	if (dir == NULL)
		return 0;
	if (!store->readonly || store->origin != DBOX_ORIGIN_DOVECOT)
		return dbox_fail(err, -EINVAL, "Dovecot index directory %s: "
				 "only for a Dovecot tree mounted read-only "
				 "(not with takeover, not for a dboxfs store)",
				 dir);
	if (realpath(dir, real) == NULL || stat(real, &st) < 0)
		return dbox_fail(err, -errno, "Dovecot index directory %s: %m",
				 dir);
	if (!S_ISDIR(st.st_mode))
		return dbox_fail(err, -ENOTDIR, "Dovecot index directory %s: "
				 "not a directory", dir);
	store->dovecot_index_dir = strdup(real);
	return store->dovecot_index_dir == NULL ?
		dbox_fail(err, -ENOMEM, "out of memory") : 0;
}

/* Dovecot's BROKENCHAR: one character, as Dovecot requires, printable
 * ASCII as the separator, neither "&" (mUTF-7's own escape, which
 * Dovecot asserts it is not) nor the separator. */
static int set_dovecot_escape(struct dbox_store *store, const char *esc,
			      struct dbox_err *err)
{
	if (esc == NULL)
		return 0;
	if (strlen(esc) != 1 || !isgraph((unsigned char)esc[0]) ||
	    (unsigned char)esc[0] > 127 || esc[0] == '&' ||
	    esc[0] == store->dovecot_sep)
		return dbox_fail(err, -EINVAL, "Dovecot BROKENCHAR \"%s\": "
				 "not one printable ASCII character other "
				 "than \"&\" and the separator", esc);
	store->dovecot_escape = esc[0];
	return 0;
}

/* Dovecot's namespace, for the names its mailbox log hashes: checked
 * now: a bad separator is one clear error, not names hashed wrong. */
static int set_dovecot_ns(struct dbox_store *store,
			  const struct dbox_open_opts *opts,
			  struct dbox_err *err)
{
	const char *sep = opts->dovecot_separator;
	int ret;

	store->dovecot_sep = '/';
	store->dovecot_lock_ms = opts->dovecot_lock_ms;
	if (sep != NULL && (strlen(sep) != 1 ||
			    !isgraph((unsigned char)sep[0]) ||
			    (unsigned char)sep[0] > 127))
		return dbox_fail(err, -EINVAL, "Dovecot separator \"%s\": "
				 "not one printable ASCII character (not a "
				 "space)", sep);
	if (sep != NULL)
		store->dovecot_sep = sep[0];
	ret = set_dovecot_escape(store, opts->dovecot_escape, err);
	if (ret < 0 || opts->dovecot_prefix == NULL)
		return ret;
	store->dovecot_prefix = strdup(opts->dovecot_prefix);
	return store->dovecot_prefix == NULL ?
		dbox_fail(err, -ENOMEM, "out of memory") : 0;
}

int dbox_store_open(const char *root, const struct dbox_open_opts *opts,
		    struct dbox_store **store_r, struct dbox_err *err)
{
	char real[PATH_MAX], fserr[256];
	struct dfs_settings fsset = { 0 };
	struct dbox_store *store;
	struct detect d;
	int ret;

	if (realpath(root, real) == NULL)
		return dbox_fail(err, -errno, "%s: %m", root);
	ret = detect_store(real, &d, err);
	if (ret < 0)
		return ret;
	store = store_alloc(real);
	if (store == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	fsset.max_workers = opts->fs_max_workers;
	fsset.sync_inline = opts->fs_sync_inline;
	ret = dfs_new(opts->fs_config, &fsset, &store->fs, fserr,
		      sizeof(fserr));
	if (ret < 0)
		ret = dbox_fail(err, ret, "fs=%s: %s", opts->fs_config ?
				opts->fs_config : "", fserr);
	if (ret == 0)
		ret = set_attachment_dir(store, opts->attachment_dir, err);
	if (ret == 0)
		ret = set_dovecot_ns(store, opts, err);
	/* before choose_ctl makes the takeover's area in the tree */
	if (ret == 0 && opts->dovecot_index_dir != NULL && opts->takeover)
		ret = dbox_fail(err, -EINVAL, "Dovecot index directory %s: "
				"only for a read-only mount, not with takeover",
				opts->dovecot_index_dir);
	if (ret == 0)
		ret = choose_ctl(store, opts, &d, err);
	if (ret == 0)
		ret = set_dovecot_index_dir(store, opts->dovecot_index_dir,
					    err);
	if (ret == 0 && !store->readonly)
		ret = owner_dir_create(store, err);
	if (ret == 0)
		ret = open_index(store, opts, &d, err);
	if (ret == 0 && !store->readonly && !opts->no_recovery)
		ret = dbox_recover(store, err);
	/* rows a power cut may have left without their records */
	if (ret == 0 && !store->readonly && !opts->no_recovery)
		ret = dbox_unconfirmed_recover(store, err);
	else if (ret == 0 && store->readonly)
		ret = dbox_unconfirmed_hide(store, err);
	/* expunges whose purge a dead process did not get to */
	if (ret == 0 && !store->readonly && !opts->no_recovery)
		ret = dbox_purge_pending(store, err);
	if (ret < 0) {
		store_free(store);
		return ret;
	}
	/* after the open's own reindex of a Dovecot tree, which removes
	 * every row (and would record 4096 that no reader wants) */
	if (opts->track_removed)
		dindex_track_removed(store->idx);
	*store_r = store;
	return 0;
}

void dbox_store_close(struct dbox_store *store)
{
	struct dbox_err err = { "" };

	if (store == NULL)
		return;
	if (!store->readonly) {
		/* our kept append file is locked: purge could not take it */
		mdbox_append_cache_clear(store);
		if (dbox_purge_pending(store, &err) < 0)
			dbox_log(DBOX_LOG_WARNING, "purge of expunged messages "
				 "left for the next open: %s", err.msg);
		if (dindex_sync(store->idx, &err) < 0)
			dbox_log(DBOX_LOG_WARNING, "%s", err.msg);
	}
	store_free(store);
}

enum dbox_store_format dbox_store_get_format(const struct dbox_store *store)
{
	return store->format;
}

enum dbox_store_origin dbox_store_get_origin(const struct dbox_store *store)
{
	return store->origin;
}

bool dbox_store_is_readonly(const struct dbox_store *store)
{
	return store->readonly;
}

const char *dbox_store_root(const struct dbox_store *store)
{
	return store->root;
}

const char *dbox_store_index_path(const struct dbox_store *store)
{
	return dindex_path(store->idx);
}

struct dfs *dbox_store_fs(struct dbox_store *store)
{
	return store->fs;
}

const char *dbox_store_files_dir(const struct dbox_store *store)
{
	return store->files_dir;
}

const char *dbox_store_vdirs_dir(const struct dbox_store *store)
{
	return store->tree_files_dir != NULL ? store->tree_files_dir :
		store->files_dir;
}

const char *dbox_store_scratch_dir(const struct dbox_store *store)
{
	return store->scratch_dir;
}

int dbox_store_take_removed(struct dbox_store *store,
			    struct dbox_removed **rows_r)
{
	return dindex_take_removed(store->idx, rows_r);
}

uint64_t dbox_store_change_counter(struct dbox_store *store)
{
	uint64_t seq = 0;

	dindex_seq(store->idx, &seq, NULL);
	return seq;
}
