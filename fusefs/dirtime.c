/* dirtime.c - st_mtime of the view's directories (see dirtime.h). */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "backing.h"
#include "dboxfs.h"
#include "dirtime.h"
#include "folders.h"

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

void dirtime_folder_changed(const struct view_ino *dir)
{
	int64_t files_box = folders_files_box(dboxfs.layout, dboxfs.inbox_id,
					      dir);

	if (files_box >= 0)
		backing_area_set_times(files_box, AREA_FILES, now2);
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
		files_box = folders_files_box(dboxfs.layout,
					      dboxfs.inbox_id, v);
		return files_box < 0 ? 0 :
			backing_area_set_times(files_box, AREA_FILES, tv);
	default:
		return 0;   /* fs-layout parents that are no mailbox */
	}
}
