/* dirtime.c - st_mtime of the view's directories (see dirtime.h). */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dirtime.h"
#include "folders.h"
#include "ops.h"

int64_t dirtime_sub_ns(int64_t box, enum view_sub sub, int64_t index_ns)
{
	int64_t pending = backing_area_mtime(box, backing_area_of_sub(sub));

	return pending != 0 && pending > index_ns ? pending : index_ns;
}

int64_t dirtime_tmp_ns(int64_t box, int64_t created_ns)
{
	int64_t t = backing_area_mtime(box, AREA_TMP);

	return t != 0 ? t : created_ns;
}

int64_t dirtime_folder_ns(int64_t files_box, int64_t fallback_ns)
{
	int64_t t = files_box < 0 ? 0 :
		backing_area_mtime(files_box, AREA_FILES);

	return t != 0 ? t : fallback_ns;
}

static const struct timespec now2[2] = {
	{ 0, UTIME_NOW }, { 0, UTIME_NOW }
};

/* Failing to set a time loses no data: the directory shows an older
 * time, as after a crash of a filesystem without a journal. */
void dirtime_tmp_changed(int64_t box)
{
	backing_area_set_times(box, AREA_TMP, now2);
}

/* ---------------------------------- fs-layout parents that are no mailbox
 *
 * Such a parent (A of A/B) has no area of its own: its time is the mtime
 * of an empty directory files/vdirs/NAME, NAME its mailbox-name prefix
 * with '%' and '/' written %25 and %2F (a prefix too long for a file
 * name keeps the time of its first child). */
#define VDIRS "vdirs"

static int vdir_path(const char *prefix, char *buf, size_t len)
{
	int o = snprintf(buf, len, "%s/" VDIRS "/",
			 dbox_store_files_dir(dboxfs.store));
	size_t start = (size_t)o;

	for (const char *p = prefix; *p != '\0' && (size_t)o + 4 < len; p++)
		o += *p == '%' || *p == '/' ?
			snprintf(buf + o, len - (size_t)o, "%%%02X",
				 (unsigned char)*p) :
			snprintf(buf + o, len - (size_t)o, "%c", *p);
	return (size_t)o - start > NAME_MAX || (size_t)o + 4 >= len ||
		prefix[0] == '\0' ? -ENAMETOOLONG : 0;
}

static int64_t vdir_ns(const char *prefix)
{
	char path[PATH_MAX];
	struct stat st;

	if (vdir_path(prefix, path, sizeof(path)) < 0 ||
	    stat(path, &st) < 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void vdir_set(const char *prefix, const struct timespec tv[2])
{
	char path[PATH_MAX], *slash;

	if (vdir_path(prefix, path, sizeof(path)) < 0)
		return;
	if (mkdir(path, 0700) < 0 && errno == ENOENT) {
		slash = strrchr(path, '/');
		*slash = '\0';
		mkdir(path, 0700);
		*slash = '/';
		mkdir(path, 0700);
	}
	utimensat(AT_FDCWD, path, tv, 0);
}

/* The prefix a vdir entry stands for (undoes vdir_path). */
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

void dirtime_folder_renamed(const char *from, const char *to)
{
	char dir[PATH_MAX], name[DBOX_NAME_MAX * 4 + 1];
	char newname[DBOX_NAME_MAX * 4 + 1], a[PATH_MAX], b[PATH_MAX];
	size_t n = strlen(from);
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/" VDIRS,
		 dbox_store_files_dir(dboxfs.store));
	d = opendir(dir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		vdir_unescape(e->d_name, name, sizeof(name));
		if (strncmp(name, from, n) != 0 ||
		    (name[n] != '\0' && name[n] != '/'))
			continue;
		/* the parents below keep their times, as directories do */
		snprintf(newname, sizeof(newname), "%s%s", to, name + n);
		if (vdir_path(name, a, sizeof(a)) == 0 &&
		    vdir_path(newname, b, sizeof(b)) == 0)
			rename(a, b);
	}
	if (d != NULL)
		closedir(d);
}

/* The mailbox-name prefix of a folder-level directory (root: ""). */
static int dir_prefix(const struct view_ino *dir, char *buf, size_t len)
{
	struct folder_list fl;
	int ret = folders_load(dboxfs.store, &fl);

	if (ret < 0)
		return ret;
	ret = folders_prefix(&fl, dboxfs.layout, dir, buf, len);
	folders_free(&fl);
	return ret;
}

void dirtime_folder_changed(const struct view_ino *dir)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	int64_t files_box = ops_files_box(dir);

	if (files_box >= 0)
		backing_area_set_times(files_box, AREA_FILES, now2);
	if (dir->kind == VK_VDIR && dir_prefix(dir, prefix, sizeof(prefix)) >= 0)
		vdir_set(prefix, now2);
}

int64_t dirtime_dir_ns(const struct view_ino *v, const char *prefix,
		       int64_t fallback_ns)
{
	int64_t t = v->kind == VK_VDIR ? vdir_ns(prefix) : 0;

	return t != 0 ? t : dirtime_folder_ns(ops_files_box(v), fallback_ns);
}

void dirtime_folder_made(int64_t box)
{
	backing_area_set_times(box, AREA_FILES, now2);
}

void dirtime_requested(const struct stat *attr, int to_set,
		       struct timespec tv[2])
{
	tv[0] = tv[1] = (struct timespec){ 0, UTIME_OMIT };
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		tv[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		tv[1] = attr->st_mtim;
}

/* cur/ and new/: the index's change time, and the spool area's if it has
 * one (the later of the two is shown). */
static int set_sub_mtime(int64_t box, enum view_sub sub, struct timespec mt)
{
	struct timespec tv[2] = { { 0, UTIME_OMIT }, mt };
	int ret;

	if (mt.tv_nsec == UTIME_NOW)
		clock_gettime(CLOCK_REALTIME, &tv[1]);
	/* the index keeps nanoseconds in 64 bits: years 1678 to 2262 */
	if (tv[1].tv_sec > INT64_MAX / 1000000000 - 1 ||
	    tv[1].tv_sec < INT64_MIN / 1000000000 + 1)
		return -EOVERFLOW;
	ret = dbox_mailbox_set_dir_mtime(dboxfs.store, box, sub == SUB_NEW,
					 (int64_t)tv[1].tv_sec * 1000000000 +
					 tv[1].tv_nsec, NULL);
	if (ret == 0 && backing_area_mtime(box, backing_area_of_sub(sub)) != 0)
		ret = backing_area_set_times(box, backing_area_of_sub(sub), tv);
	return ret;
}

int dirtime_set(const struct view_ino *v, const struct stat *attr,
		int to_set)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct timespec tv[2];
	int64_t files_box;

	dirtime_requested(attr, to_set, tv);
	if (tv[0].tv_nsec == UTIME_OMIT && tv[1].tv_nsec == UTIME_OMIT)
		return 0;
	switch (v->kind) {
	case VK_SUB:
		if (v->sub == SUB_TMP)
			return backing_area_set_times(v->box, AREA_TMP, tv);
		return tv[1].tv_nsec == UTIME_OMIT ? 0 :
			set_sub_mtime(v->box, v->sub, tv[1]);
	case VK_ROOT:
	case VK_FOLDER:
		files_box = ops_files_box(v);
		return files_box < 0 ? 0 :
			backing_area_set_times(files_box, AREA_FILES, tv);
	case VK_VDIR:
		if (tv[1].tv_nsec != UTIME_OMIT &&
		    dir_prefix(v, prefix, sizeof(prefix)) >= 0)
			vdir_set(prefix, tv);
		return 0;
	default:
		return 0;
	}
}
