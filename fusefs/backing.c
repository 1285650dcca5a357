/* backing.c - the table of real-file-backed inodes (see backing.h). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/xattr.h>

#include "backing.h"
#include "dboxfs.h"

static bool is_msg_number(uint64_t ino)
{
	return ino >> 60 == VK_MSG;
}
/* An area directory kept open (fs->backing.area_fds). */
struct area_fd {
	int64_t key;             /* box * 4 + area */
	int fd;
};

/* Directory names of the spool areas under spool/<mailbox id>/ */
static const char *const spool_sub[] = {
	[AREA_TMP] = "tmp", [AREA_CUR] = "cur", [AREA_NEW] = "new",
};

static void free_area(void *p)
{
	struct area_fd *a = p;

	close(a->fd);
	free(a);
}

static int cmp_ino(const void *a, const void *b)
{
	const struct binode *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int open_root(struct dboxfs *fs, const char *path, int *fd_r)
{
	if (!fs->backing.readonly && mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	*fd_r = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return *fd_r < 0 ? -errno : 0;
}

int backing_init(struct dboxfs *fs, const char *ctl_dir)
{
	int ret;

	snprintf(fs->backing.files_root, sizeof(fs->backing.files_root),
		 "%s/files", ctl_dir);
	snprintf(fs->backing.spool_root, sizeof(fs->backing.spool_root),
		 "%s/spool", ctl_dir);
	ret = open_root(fs, fs->backing.files_root, &fs->backing.files_fd);
	if (ret == 0)
		ret = open_root(fs, fs->backing.spool_root,
				&fs->backing.spool_fd);
	return ret;
}

int backing_init_readonly(struct dboxfs *fs, const char *ctl_dir)
{
	int ret, ret2;

	fs->backing.readonly = true;
	snprintf(fs->backing.files_root, sizeof(fs->backing.files_root),
		 "%s/files", ctl_dir);
	snprintf(fs->backing.spool_root, sizeof(fs->backing.spool_root),
		 "%s/spool", ctl_dir);
	/* a store that never had a plain file or delivery: nothing shows */
	ret = open_root(fs, fs->backing.files_root, &fs->backing.files_fd);
	ret2 = open_root(fs, fs->backing.spool_root, &fs->backing.spool_fd);
	return ret < 0 ? ret : ret2;
}

int backing_use_tree_files(struct dboxfs *fs, const char *files_dir)
{
	int fd = open(files_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fs->backing.files_fd >= 0)
		close(fs->backing.files_fd);
	fs->backing.files_fd = fd;
	snprintf(fs->backing.files_root, sizeof(fs->backing.files_root),
		 "%s", files_dir);
	fs->backing.tree_ids = true;
	return 0;
}

static void free_node(void *p)
{
	struct binode *bi = p;

	close(bi->fd);
	free(bi);
}

void backing_shutdown(struct dboxfs *fs)
{
	pthread_mutex_lock(&fs->backing.lock);
	tdestroy(fs->backing.table, free_node);
	fs->backing.table = NULL;
	fs->backing.msg_nodes = 0;
	tdestroy(fs->backing.area_fds, free_area);
	fs->backing.area_fds = NULL;
	pthread_mutex_unlock(&fs->backing.lock);
	if (fs->backing.files_fd >= 0)
		close(fs->backing.files_fd);
	if (fs->backing.spool_fd >= 0)
		close(fs->backing.spool_fd);
	fs->backing.files_fd = fs->backing.spool_fd = -1;
}

static int mkdirat_p(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}


static int cmp_area(const void *a, const void *b)
{
	const struct area_fd *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static void walk_area(int spool, const char *box_dir, int64_t box,
		      enum backing_area area, backing_walk_fn *fn, void *ctx)
{
	char path[NAME_MAX + 8];
	struct dirent *de;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", box_dir, spool_sub[area]);
	fd = openat(spool, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			fn(ctx, box, area, dirfd(d), de->d_name, &st);
	}
	closedir(d);
}

int backing_spool_walk(struct dboxfs *fs, backing_walk_fn *fn, void *ctx)
{
	struct dirent *de;
	DIR *d;
	int fd = fs->backing.spool_fd < 0 ? -1 :
		openat(fs->backing.spool_fd, ".",
		       O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fs->backing.spool_fd < 0 ? -EROFS : -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		long long box = strtoll(de->d_name, &end, 10);

		if (*end != '\0' || box <= 0)
			continue;
		for (int area = AREA_TMP; area <= AREA_NEW; area++)
			walk_area(dirfd(d), de->d_name, box, area, fn, ctx);
	}
	closedir(d);
	return 0;
}

static int area_open(struct dboxfs *fs, int64_t box, enum backing_area area,
		     int *fd_r);

int backing_move_to_tmp(struct dboxfs *fs, int64_t box, int dirfd,
			const char *name)
{
	return backing_move_to_tmp_as(fs, box, dirfd, name, name);
}

int backing_move_to_tmp_as(struct dboxfs *fs, int64_t box, int dirfd,
			   const char *name,
			   const char *as)
{
	char to[NAME_MAX + 1];
	int tmp, n = 0, ret = backing_area_dir(fs, box, AREA_TMP, &tmp);

	if (ret < 0)
		return ret;
	snprintf(to, sizeof(to), "%s", as);
	while (renameat2(dirfd, name, tmp, to, RENAME_NOREPLACE) < 0) {
		ret = -errno;
		if (ret != -EEXIST || ++n == 1000)
			break;
		ret = 0;
		if (snprintf(to, sizeof(to), "%s.%d", as, n) >=
		    (int)sizeof(to)) {
			ret = -ENAMETOOLONG;
			break;
		}
	}
	close(tmp);
	return ret;
}

/* The reserved uid (backing.h): "<mailbox id> <uid>". */
#define RESV_XATTR "user.dboxfs.uid"

int backing_resv_write(int fd, int64_t box, uint32_t uid)
{
	char val[48];
	int n = snprintf(val, sizeof(val), "%lld %u", (long long)box, uid);

	return fsetxattr(fd, RESV_XATTR, val, (size_t)n, 0) < 0 ? -errno : 0;
}

static bool resv_parse(const char *val, ssize_t n, int64_t *box_r,
		       uint32_t *uid_r)
{
	char buf[48], *end;
	long long box;
	unsigned long uid;

	if (n <= 0 || n >= (ssize_t)sizeof(buf))
		return false;
	memcpy(buf, val, (size_t)n);
	buf[n] = '\0';
	box = strtoll(buf, &end, 10);
	if (*end != ' ' || box <= 0 || (uint64_t)box > VIEW_MAILBOX_MAX)
		return false;
	uid = strtoul(end + 1, &end, 10);
	if (*end != '\0' || uid == 0 || uid > UINT32_MAX)
		return false;
	*box_r = box;
	*uid_r = (uint32_t)uid;
	return true;
}

bool backing_resv_read(int fd, int64_t *box_r, uint32_t *uid_r)
{
	char val[48];

	return resv_parse(val, fgetxattr(fd, RESV_XATTR, val, sizeof(val)),
			  box_r, uid_r);
}

static bool resv_read_path(const char *path, int64_t *box_r,
			   uint32_t *uid_r)
{
	char val[48];

	return resv_parse(val, getxattr(path, RESV_XATTR, val, sizeof(val)),
			  box_r, uid_r);
}

uint64_t backing_shown_ino(struct dboxfs *fs, uint64_t ino)
{
	struct binode *bi;
	uint64_t shown = ino;

	if (ino >> 60 != VK_PLAIN)
		return ino;
	bi = backing_get(fs, ino);
	if (bi != NULL && bi->resv_uid != 0)
		shown = view_ino_msg(bi->resv_box, bi->resv_uid);
	backing_put(fs, bi);
	return shown;
}

uint64_t backing_shown_ino_at(int dirfd, const char *name,
			      enum backing_area area, uint64_t ino)
{
	char path[64 + NAME_MAX];
	int64_t box;
	uint32_t uid;

	if (area == AREA_FILES)
		return ino;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	return resv_read_path(path, &box, &uid) ? view_ino_msg(box, uid) : ino;
}

bool backing_dir_times_save(int dirfd, struct timespec tv[2])
{
	struct stat st;

	if (fstatat(dirfd, "", &st, AT_EMPTY_PATH) < 0)
		return false;
	tv[0] = st.st_atim;
	tv[1] = st.st_mtim;
	return true;
}

void backing_dir_times_restore(int dirfd, const struct timespec tv[2])
{
	char path[32];

	backing_fd_path(dirfd, path, sizeof(path));
	utimensat(AT_FDCWD, path, tv, 0);
}

/* The number of a message renamed into tmp/ (backing.h), in decimal. */
#define INO_XATTR "user.dboxfs.ino"

uint64_t backing_node_ino(int fd, const char *name, const struct stat *st)
{
	char path[NAME_MAX + 40], val[24], *end;
	unsigned long long ino;
	ssize_t n;

	if (!S_ISREG(st->st_mode))
		return backing_ino_of(st->st_ino);
	if (name != NULL) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", fd, name);
		n = lgetxattr(path, INO_XATTR, val, sizeof(val) - 1);
	} else {
		/* the magic link of an O_PATH descriptor is followed */
		backing_fd_path(fd, path, sizeof(path));
		n = getxattr(path, INO_XATTR, val, sizeof(val) - 1);
	}
	if (n <= 0)
		return backing_ino_of(st->st_ino);
	val[n] = '\0';
	ino = strtoull(val, &end, 10);
	if (*end != '\0' || ino >> 60 != VK_MSG)
		return backing_ino_of(st->st_ino);
	return ino;
}

int backing_set_node_ino(int fd, uint64_t ino)
{
	char val[24];
	int n = snprintf(val, sizeof(val), "%llu", (unsigned long long)ino);

	return fsetxattr(fd, INO_XATTR, val, (size_t)n, 0) < 0 ? -errno : 0;
}

void backing_drop_node_ino(int fd)
{
	fremovexattr(fd, INO_XATTR);
}

bool backing_any_msg_node(struct dboxfs *fs)
{
	return fs->backing.msg_nodes > 0;
}

bool backing_has_node(struct dboxfs *fs, uint64_t ino)
{
	struct binode *bi = backing_get(fs, ino);

	backing_put(fs, bi);
	return bi != NULL;
}

int backing_area_dir(struct dboxfs *fs, int64_t box, enum backing_area area,
		     int *fd_r)
{
	struct area_fd key = { .key = box * 4 + (int64_t)area }, **found, *a;
	int fd, ret;

	pthread_mutex_lock(&fs->backing.lock);
	found = tfind(&key, &fs->backing.area_fds, cmp_area);
	fd = found != NULL ? dup((*found)->fd) : -1;
	pthread_mutex_unlock(&fs->backing.lock);
	if (fd >= 0) {
		*fd_r = fd;
		return 0;
	}
	ret = area_open(fs, box, area, &fd);
	if (ret < 0)
		return ret;
	a = malloc(sizeof(*a));
	pthread_mutex_lock(&fs->backing.lock);
	if (a != NULL && tfind(&key, &fs->backing.area_fds, cmp_area) == NULL) {
		a->key = key.key;
		a->fd = dup(fd);
		if (a->fd < 0 || tsearch(a, &fs->backing.area_fds,
					 cmp_area) == NULL) {
			if (a->fd >= 0)
				close(a->fd);
			free(a);
		}
	} else {
		free(a);
	}
	pthread_mutex_unlock(&fs->backing.lock);
	*fd_r = fd;
	return 0;
}

void backing_forget_mailbox(struct dboxfs *fs, int64_t box)
{
	char path[64];

	/* the directories are empty (rmdir checked): remove them too */
	for (int area = AREA_TMP;
	     area <= AREA_NEW && fs->backing.spool_fd >= 0; area++) {
		snprintf(path, sizeof(path), "%lld/%s", (long long)box,
			 spool_sub[area]);
		unlinkat(fs->backing.spool_fd, path, AT_REMOVEDIR);
	}
	if (fs->backing.spool_fd >= 0) {
		snprintf(path, sizeof(path), "%lld", (long long)box);
		unlinkat(fs->backing.spool_fd, path, AT_REMOVEDIR);
	}
	if (fs->backing.files_fd >= 0) {
		snprintf(path, sizeof(path), "%lld", (long long)box);
		unlinkat(fs->backing.files_fd, path, AT_REMOVEDIR);
	}
	pthread_mutex_lock(&fs->backing.lock);
	for (int area = AREA_FILES; area <= AREA_NEW; area++) {
		struct area_fd key = { .key = box * 4 + area }, **found;

		found = tfind(&key, &fs->backing.area_fds, cmp_area);
		if (found != NULL) {
			struct area_fd *a = *found;

			tdelete(a, &fs->backing.area_fds, cmp_area);
			free_area(a);
		}
	}
	pthread_mutex_unlock(&fs->backing.lock);
}

/* The path of an area directory below the root fd of its kind (-1:
 * there is none). */
static int area_path(struct dboxfs *fs, int64_t box, enum backing_area area,
		     char *buf,
		     size_t len)
{
	/* box 0 (the fs layout's root) is no mailbox's, in any index */
	if (area == AREA_FILES && fs->backing.tree_ids && box != 0 &&
	    dbox_store_tree_mailbox_id(fs->store, box, &box) < 0)
		return -1;
	if (area == AREA_FILES) {
		snprintf(buf, len, "%lld", (long long)box);
		return fs->backing.files_fd;
	}
	snprintf(buf, len, "%lld/%s", (long long)box, spool_sub[area]);
	return fs->backing.spool_fd;
}

/* area_path of an area that is only looked at, never made: -ENOENT
 * when the store has no backing tree or the mailbox no area */
static int area_existing(struct dboxfs *fs, int64_t box,
			 enum backing_area area, char *buf, size_t len)
{
	int root;

	if (fs->backing.files_fd < 0)
		return -ENOENT;
	root = area_path(fs, box, area, buf, len);
	return root < 0 ? -ENOENT : root;
}

/* An area directory made on demand (a listing, a first file) has seen
 * no change of the view yet: its mtime is 0, which backing_area_mtime
 * reports as "none" (dirtime.c then shows the store's time).  It is made
 * under another name and renamed into place, so that a file another
 * thread creates in it at once cannot lose its change of the mtime. */
static int mkdir_area(int root, const char *path)
{
	struct timespec zero[2] = { { 0, 0 }, { 0, 0 } };
	char tmp[96];
	int ret = 0;

	if (faccessat(root, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.mk%ld", path, (long)gettid());
	if (mkdirat(root, tmp, 0700) < 0)
		return -errno;
	utimensat(root, tmp, zero, AT_SYMLINK_NOFOLLOW);
	if (renameat2(root, tmp, root, path, RENAME_NOREPLACE) < 0) {
		ret = errno == EEXIST ? 0 : -errno;
		unlinkat(root, tmp, AT_REMOVEDIR);
	}
	return ret;
}

static int area_open(struct dboxfs *fs, int64_t box, enum backing_area area,
		     int *fd_r)
{
	char path[64];
	int root, ret = 0;

	if (fs->backing.readonly) {
		/* what is there, as it is: nothing made */
		root = area_path(fs, box, area, path, sizeof(path));
		*fd_r = root < 0 ? -1 :
			openat(root, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		return root < 0 ? -ENOENT : *fd_r < 0 ? -errno : 0;
	}
	if (fs->backing.files_fd < 0)
		return -EROFS;
	if (area != AREA_FILES) {
		snprintf(path, sizeof(path), "%lld", (long long)box);
		ret = mkdirat_p(fs->backing.spool_fd, path);
	}
	root = area_path(fs, box, area, path, sizeof(path));
	if (ret == 0)
		ret = mkdir_area(root, path);
	if (ret == 0)
		*fd_r = openat(root, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return ret < 0 ? ret : *fd_r < 0 ? -errno : 0;
}

int backing_area_stat(struct dboxfs *fs, int64_t box, enum backing_area area,
		      struct stat *st)
{
	char path[64];
	int root = area_existing(fs, box, area, path, sizeof(path));

	if (root < 0)
		return root;
	return fstatat(root, path, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int64_t backing_area_mtime(struct dboxfs *fs, int64_t box,
			   enum backing_area area)
{
	struct stat st;

	if (backing_area_stat(fs, box, area, &st) < 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

int backing_area_peek(struct dboxfs *fs, int64_t box, enum backing_area area,
		      int *fd_r)
{
	char path[64];
	int root = area_existing(fs, box, area, path, sizeof(path));

	if (root < 0)
		return root;
	*fd_r = openat(root, path, O_PATH | O_DIRECTORY | O_CLOEXEC |
		       O_NOFOLLOW);
	return *fd_r < 0 ? -errno : 0;
}

int backing_area_set_times(struct dboxfs *fs, int64_t box,
			   enum backing_area area,
			   const struct timespec tv[2])
{
	char path[64];
	int fd, ret = backing_area_dir(fs, box, area, &fd);

	if (ret < 0)
		return ret;
	backing_fd_path(fd, path, sizeof(path));
	ret = utimensat(AT_FDCWD, path, tv, 0) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

struct binode *backing_get(struct dboxfs *fs, uint64_t ino)
{
	struct binode key = { .ino = ino }, **found, *bi = NULL;

	pthread_mutex_lock(&fs->backing.lock);
	found = tfind(&key, &fs->backing.table, cmp_ino);
	if (found != NULL) {
		bi = *found;
		bi->refs++;
	}
	pthread_mutex_unlock(&fs->backing.lock);
	return bi;
}

/* Under fs->backing.lock: takes bi out of the table once nothing holds it;
 * true if the caller must free it (after unlocking). */
static bool unlink_if_unused(struct dboxfs *fs, struct binode *bi)
{
	DBOXFS_ASSERT_LOCKED(&fs->backing.lock);
	if (bi->nlookup > 0 || bi->refs > 0)
		return false;
	tdelete(bi, &fs->backing.table, cmp_ino);
	if (is_msg_number(bi->ino))
		fs->backing.msg_nodes--;
	return true;
}

void backing_put(struct dboxfs *fs, struct binode *bi)
{
	bool dead;

	if (bi == NULL)
		return;
	pthread_mutex_lock(&fs->backing.lock);
	assert(bi->refs > 0);
	bi->refs--;
	dead = unlink_if_unused(fs, bi);
	pthread_mutex_unlock(&fs->backing.lock);
	if (dead)
		free_node(bi);
}

bool backing_msg_of(struct dboxfs *fs, struct binode *bi, int64_t *box_r,
		    uint32_t *uid_r)
{
	pthread_mutex_lock(&fs->backing.lock);
	*box_r = bi->msg_box;
	*uid_r = bi->msg_uid;
	pthread_mutex_unlock(&fs->backing.lock);
	return *uid_r != 0;
}

void backing_msg_set(struct dboxfs *fs, struct binode *bi, int64_t box,
		     uint32_t uid)
{
	pthread_mutex_lock(&fs->backing.lock);
	bi->msg_box = box;
	bi->msg_uid = uid;
	bi->stat_ino = 0;
	pthread_mutex_unlock(&fs->backing.lock);
}

static int lookup(struct dboxfs *fs, int dirfd, const char *name, int64_t box,
		  enum backing_area area, bool created, struct binode **bi_r,
		  struct stat *st_r)
{
	struct binode *bi, **slot;
	struct stat st;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	bi = calloc(1, sizeof(*bi));
	if (bi == NULL) {
		close(fd);
		return -ENOMEM;
	}
	bi->ino = created ? backing_ino_of(st.st_ino) :
		backing_node_ino(fd, NULL, &st);
	bi->fd = fd;
	bi->dev = st.st_dev;
	bi->backing_ino = st.st_ino;
	bi->box = box;
	bi->area = area;
	bi->nlookup = 1;
	if (area == AREA_CUR || area == AREA_NEW ||
	    (area != AREA_FILES && !created)) {
		char path[32];

		backing_fd_path(fd, path, sizeof(path));
		resv_read_path(path, &bi->resv_box, &bi->resv_uid);
	}
	pthread_mutex_lock(&fs->backing.lock);
	slot = tsearch(bi, &fs->backing.table, cmp_ino);
	if (slot != NULL && *slot != bi) {
		/* known already: keep the old node, count the lookup.  It is
		 * read under the lock: a tdelete of another key may free the
		 * tree node slot points into (glibc moves the successor's key
		 * into the deleted node). */
		struct binode *known = *slot;

		known->nlookup++;
		pthread_mutex_unlock(&fs->backing.lock);
		close(fd);
		free(bi);
		bi = known;
	} else {
		if (slot != NULL && is_msg_number(bi->ino))
			fs->backing.msg_nodes++;
		pthread_mutex_unlock(&fs->backing.lock);
		if (slot == NULL) {
			close(fd);
			free(bi);
			return -ENOMEM;
		}
	}
	st.st_ino = bi->ino;
	*st_r = st;
	*bi_r = bi;
	return 0;
}

int backing_lookup(struct dboxfs *fs, int dirfd, const char *name, int64_t box,
		   enum backing_area area, struct binode **bi_r,
		   struct stat *st_r)
{
	return lookup(fs, dirfd, name, box, area, false, bi_r, st_r);
}

int backing_lookup_created(struct dboxfs *fs, int dirfd, const char *name,
			   int64_t box, enum backing_area area,
			   struct binode **bi_r, struct stat *st_r)
{
	return lookup(fs, dirfd, name, box, area, true, bi_r, st_r);
}

void backing_forget(struct dboxfs *fs, uint64_t ino, uint64_t n)
{
	struct binode key = { .ino = ino }, **found, *bi = NULL;

	pthread_mutex_lock(&fs->backing.lock);
	found = tfind(&key, &fs->backing.table, cmp_ino);
	if (found != NULL) {
		bi = *found;
		/* the kernel forgets no more lookups than it was given
		 * (passthrough_ll asserts the same); but a message's number
		 * that became a binode (renamed into tmp/) also carries the
		 * kernel's lookups of the message, which kcache.c counted:
		 * those the clamp below absorbs */
		assert(n <= bi->nlookup || is_msg_number(bi->ino));
		bi->nlookup = n >= bi->nlookup ? 0 : bi->nlookup - n;
		if (!unlink_if_unused(fs, bi))
			bi = NULL;
	}
	pthread_mutex_unlock(&fs->backing.lock);
	if (bi != NULL)
		free_node(bi);
}

int backing_stat(struct dboxfs *fs, struct binode *bi, struct stat *st)
{
	if (fstatat(bi->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	pthread_mutex_lock(&fs->backing.lock);
	st->st_ino = bi->stat_ino != 0 ? bi->stat_ino : bi->ino;
	pthread_mutex_unlock(&fs->backing.lock);
	return 0;
}

struct retarget {
	int64_t box, tmp_box;
	uint32_t uid;
	int fd;
	uint64_t stat_ino;
	int count;
};

static void retarget_one(const void *nodep, VISIT which, void *arg)
{
	struct binode *bi = *(struct binode *const *)nodep;
	struct retarget *r = arg;

	if ((which != postorder && which != leaf) || bi->msg_uid != r->uid ||
	    bi->msg_box != r->box || bi->area != AREA_TMP ||
	    bi->box != r->tmp_box)
		return;
	/* dup3 replaces the file behind the descriptor number at once:
	 * a thread using bi->fd meanwhile gets the old or the new file */
	if (dup3(r->fd, bi->fd, O_CLOEXEC) < 0)
		return;
	bi->msg_box = 0;
	bi->msg_uid = 0;
	bi->stat_ino = r->stat_ino;
	r->count++;
}

int backing_retarget_msg(struct dboxfs *fs, int64_t box, uint32_t uid,
			 int64_t tmp_box,
			 int path_fd, uint64_t stat_ino)
{
	struct retarget r = { box, tmp_box, uid, path_fd, stat_ino, 0 };

	pthread_mutex_lock(&fs->backing.lock);
	twalk_r(fs->backing.table, retarget_one, &r);
	pthread_mutex_unlock(&fs->backing.lock);
	return r.count;
}

void backing_fd_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

int backing_reopen(int fd, int flags)
{
	char path[32];
	int ret;

	backing_fd_path(fd, path, sizeof(path));
	ret = open(path, flags | O_CLOEXEC);
	return ret < 0 ? -errno : ret;
}

int backing_open(struct binode *bi, int flags)
{
	return backing_reopen(bi->fd, flags & ~O_NOFOLLOW);
}
