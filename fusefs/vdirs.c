/* vdirs.c - the fs layout's parents that are no mailbox (see vdirs.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dirmode.h"
#include "vdirs.h"

#define VDIRS "vdirs"

static int vdir_path(const char *files_dir, const char *prefix, char *buf,
		     size_t len)
{
	int o = snprintf(buf, len, "%s/" VDIRS "/", files_dir);
	size_t start = (size_t)o;

	if (o < 0 || (size_t)o >= len)
		return -ENAMETOOLONG;
	for (const char *p = prefix; *p != '\0' && (size_t)o + 4 < len; p++)
		o += *p == '%' || *p == '/' ?
			snprintf(buf + o, len - (size_t)o, "%%%02X",
				 (unsigned char)*p) :
			snprintf(buf + o, len - (size_t)o, "%c", *p);
	return (size_t)o - start > NAME_MAX || (size_t)o + 4 >= len ||
		prefix[0] == '\0' ? -ENAMETOOLONG : 0;
}

/* The prefix an entry stands for (undoes vdir_path). */
static void vdir_unescape(const char *name, char *buf, size_t len)
{
	size_t o = 0;

	for (const char *p = name; *p != '\0' && o + 1 < len; p++) {
		unsigned int c;

		if (*p == '%' && sscanf(p + 1, "%2X", &c) == 1) {
			buf[o++] = (char)c;
			p += 2;
		} else {
			buf[o++] = *p;
		}
	}
	buf[o] = '\0';
}

uint64_t vdirs_hash_id(const char *name, size_t len)
{
	uint64_t h = 14695981039346656037ull;   /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
	return VDIRS_HASH_BIT | (h & (VDIRS_HASH_BIT - 1));
}

/* An entry's inode number as identity (a number the hashes never take;
 * an inode number beyond them, which no local filesystem gives out for
 * a small directory, falls back to the hash). */
static uint64_t id_of(ino_t ino, const char *name)
{
	return ino != 0 && (uint64_t)ino < VDIRS_HASH_BIT ? (uint64_t)ino :
		vdirs_hash_id(name, strlen(name));
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct vdir_entry *)a)->name,
		      ((const struct vdir_entry *)b)->name);
}

static int list_add(struct vdir_entry **e, size_t *n, const char *d_name,
		    ino_t ino)
{
	char name[NAME_MAX + 1];
	struct vdir_entry *grown = realloc(*e, (*n + 1) * sizeof(**e));

	if (grown == NULL)
		return -ENOMEM;
	*e = grown;
	vdir_unescape(d_name, name, sizeof(name));
	grown[*n].name = strdup(name);
	if (grown[*n].name == NULL)
		return -ENOMEM;
	grown[*n].id = id_of(ino, name);
	(*n)++;
	return 0;
}

int vdirs_list(const char *files_dir, struct vdir_entry **e, size_t *n)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir;
	int ret = 0;

	*e = NULL;
	*n = 0;
	if (snprintf(path, sizeof(path), "%s/" VDIRS, files_dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	dir = opendir(path);
	if (dir == NULL)
		return errno == ENOENT ? 0 : -errno;
	while (ret == 0 && (d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' ||
		    (d->d_type != DT_DIR && d->d_type != DT_UNKNOWN))
			continue;
		ret = list_add(e, n, d->d_name, d->d_ino);
	}
	closedir(dir);
	if (ret < 0) {
		vdirs_list_free(*e, *n);
		*e = NULL;
		*n = 0;
		return ret;
	}
	if (*n > 1)
		qsort(*e, *n, sizeof(**e), cmp_entry);
	return 0;
}

void vdirs_list_free(struct vdir_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

uint64_t vdirs_find(const struct vdir_entry *e, size_t n, const char *name,
		    size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(e[mid].name, name, len);

		if (c == 0 && e[mid].name[len] != '\0')
			c = 1;
		if (c == 0)
			return e[mid].id;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* mkdir of the entry, and of files/vdirs itself the first time. */
static int make_dir(char *path)
{
	char *slash;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	slash = strrchr(path, '/');
	*slash = '\0';
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		*slash = '/';
		return -errno;
	}
	*slash = '/';
	return mkdir(path, 0700) == 0 ? 0 : -errno;
}

int vdirs_make(const char *files_dir, const char *prefix, int64_t ns,
	       uint64_t *id_r)
{
	char path[PATH_MAX];
	struct timespec tv[2];
	struct stat st;
	int ret = vdir_path(files_dir, prefix, path, sizeof(path));

	if (ret < 0)
		return ret;
	ret = make_dir(path);
	if (ret == 0) {
		/* no time known: now, as a new directory */
		tv[0].tv_sec = ns > 0 ? ns / 1000000000 : 0;
		tv[0].tv_nsec = ns > 0 ? ns % 1000000000 : UTIME_NOW;
		tv[1] = tv[0];
		/* failing loses nothing: the parent shows the time of now */
		utimensat(AT_FDCWD, path, tv, 0);
	}
	if ((ret == 0 || ret == -EEXIST) && stat(path, &st) == 0)
		*id_r = id_of(st.st_ino, prefix);
	else if (ret == 0)
		ret = -errno;
	return ret;
}

int vdirs_remove(const char *files_dir, const char *prefix)
{
	char path[PATH_MAX];
	int ret = vdir_path(files_dir, prefix, path, sizeof(path));

	if (ret < 0)
		return ret;
	return rmdir(path) == 0 ? 0 : -errno;
}

void vdirs_rename(const char *files_dir, const char *from, const char *to)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	char newname[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	size_t n = strlen(from);
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/" VDIRS, files_dir);
	d = opendir(dir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		vdir_unescape(e->d_name, name, sizeof(name));
		if (strncmp(name, from, n) != 0 ||
		    (name[n] != '\0' && name[n] != '/'))
			continue;
		/* the parents below keep their identities and times, as
		 * directories do; an empty entry of the same name (the
		 * empty parent this one replaces) goes */
		snprintf(newname, sizeof(newname), "%s%s", to, name + n);
		if (vdir_path(files_dir, name, a, sizeof(a)) == 0 &&
		    vdir_path(files_dir, newname, b, sizeof(b)) == 0)
			rename(a, b);
	}
	if (d != NULL)
		closedir(d);
}

int64_t vdirs_mtime(const char *files_dir, const char *prefix)
{
	char path[PATH_MAX];
	struct stat st;

	if (vdir_path(files_dir, prefix, path, sizeof(path)) < 0 ||
	    stat(path, &st) < 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

void vdirs_set_times(const char *files_dir, const char *prefix,
		     const struct timespec tv[2])
{
	char path[PATH_MAX];

	if (vdir_path(files_dir, prefix, path, sizeof(path)) < 0)
		return;
	make_dir(path);
	utimensat(AT_FDCWD, path, tv, 0);
}

int vdirs_open(const char *files_dir, const char *prefix, bool make,
	       int *fd_r)
{
	char path[PATH_MAX];
	uint64_t id;
	int ret = vdir_path(files_dir, prefix, path, sizeof(path));

	if (ret < 0)
		return ret;
	*fd_r = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*fd_r >= 0 || errno != ENOENT || !make)
		return *fd_r >= 0 ? 0 : -errno;
	ret = vdirs_make(files_dir, prefix, 0, &id);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	*fd_r = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return *fd_r >= 0 ? 0 : -errno;
}

bool vdirs_has_files(const char *files_dir, const char *prefix)
{
	char path[PATH_MAX];
	struct dirent *e;
	bool found = false;
	DIR *d;

	if (vdir_path(files_dir, prefix, path, sizeof(path)) < 0 ||
	    (d = opendir(path)) == NULL)
		return false;
	while (!found && (e = readdir(d)) != NULL)
		found = strcmp(e->d_name, ".") != 0 &&
			strcmp(e->d_name, "..") != 0;
	closedir(d);
	return found;
}

/* The entries of directory `from` into directory `to`, none replaced. */
static int move_entries(const char *from, const char *to)
{
	int ret = 0, to_fd = open(to, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d = to_fd >= 0 ? opendir(from) : NULL;

	if (d == NULL) {
		ret = -errno;
		if (to_fd >= 0)
			close(to_fd);
		return ret;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (renameat2(dirfd(d), e->d_name, to_fd, e->d_name,
			      RENAME_NOREPLACE) < 0 && ret == 0)
			ret = -errno;
	}
	closedir(d);
	close(to_fd);
	return ret;
}

/* A folder's area made as backing.c makes one (mtime 0: no change of
 * the view yet), under another name first. */
static int make_area(const char *to)
{
	struct timespec zero[2] = { { 0, 0 }, { 0, 0 } };
	char tmp[PATH_MAX + 32];

	if (access(to, F_OK) == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.mk%ld", to, (long)gettid());
	if (mkdir(tmp, 0700) < 0)
		return -errno;
	utimensat(AT_FDCWD, tmp, zero, 0);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
		int ret = errno == EEXIST ? 0 : -errno;

		rmdir(tmp);
		return ret;
	}
	return 0;
}

/* The mode chmod gave the parent (dirmode.h) becomes the folder's, as a
 * directory keeps its mode when it becomes a maildir. */
static int carry_mode(const char *from, const char *to)
{
	struct stat st;

	if (stat(from, &st) < 0 || chmod(to, st.st_mode & 07777) < 0 ||
	    setxattr(to, DIRMODE_XATTR, "1", 1, 0) < 0)
		return -errno;
	return 0;
}

int vdirs_hand_over(const char *files_dir, const char *prefix, int64_t box)
{
	char path[PATH_MAX], to[PATH_MAX];
	int ret = vdir_path(files_dir, prefix, path, sizeof(path));
	bool files, moded;

	if (ret < 0)
		return ret;
	files = vdirs_has_files(files_dir, prefix);
	moded = getxattr(path, DIRMODE_XATTR, NULL, 0) >= 0;
	if (!files && !moded)
		return rmdir(path) == 0 ? 0 : -errno;
	if (snprintf(to, sizeof(to), "%s/%lld", files_dir, (long long)box) >=
	    (int)sizeof(to))
		return -ENAMETOOLONG;
	ret = make_area(to);
	if (ret == 0 && moded)
		ret = carry_mode(path, to);
	if (ret == 0 && files)
		ret = move_entries(path, to);
	if (ret == 0 && rmdir(path) < 0)
		ret = -errno;
	return ret;
}
