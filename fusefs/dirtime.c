/* dirtime.c - st_mtime of the view's directories (see dirtime.h). */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backing.h"
#include "dboxfs.h"
#include "dirtime.h"
#include "folders.h"
#include "node.h"
#include "vdirs.h"

int64_t dirtime_sub_at(int64_t area_ns, int64_t index_ns)
{
	return area_ns != 0 && area_ns > index_ns ? area_ns : index_ns;
}

int64_t dirtime_tmp_at(int64_t area_ns, int64_t created_ns)
{
	return area_ns != 0 ? area_ns : created_ns;
}

int64_t dirtime_sub_ns(struct dboxfs *fs, int64_t box, enum view_sub sub,
		       int64_t index_ns)
{
	return dirtime_sub_at(backing_area_mtime(fs, box,
						 backing_area_of_sub(sub)),
			      index_ns);
}

int64_t dirtime_tmp_ns(struct dboxfs *fs, int64_t box, int64_t created_ns)
{
	return dirtime_tmp_at(backing_area_mtime(fs, box, AREA_TMP),
			      created_ns);
}

int64_t dirtime_folder_ns(struct dboxfs *fs, int64_t files_box,
			  int64_t fallback_ns)
{
	int64_t t = files_box < 0 ? 0 :
		backing_area_mtime(fs, files_box, AREA_FILES);

	return t != 0 ? t : fallback_ns;
}

static const struct timespec now2[2] = {
	{ 0, UTIME_NOW }, { 0, UTIME_NOW }
};

/* Failing to set a time loses no data: the directory shows an older
 * time, as after a crash of a filesystem without a journal. */
void dirtime_tmp_changed(struct dboxfs *fs, int64_t box)
{
	backing_area_set_times(fs, box, AREA_TMP, now2);
}

/* fs-layout parents that are no mailbox (A of A/B): their time is the
 * mtime of their entry in files/vdirs (vdirs.h). */
void dirtime_folder_renamed(struct dboxfs *fs, const char *from, const char *to)
{
	vdirs_rename(dbox_store_vdirs_dir(fs->store), from, to);
}

/* ------------------------------------ changes the follower finds (ro)
 *
 * A read-only mount writes nothing: the times of directories whose
 * entries another program changed are kept here, for the mount's life. */
struct dirtime_seen {
	char *prefix;
	int64_t ns;
};


static int64_t ro_ns(struct dboxfs *fs, const char *prefix)
{
	int64_t ns = 0;

	pthread_mutex_lock(&fs->dirtime.lock);
	for (size_t i = 0; i < fs->dirtime.ro_count; i++) {
		if (strcmp(fs->dirtime.ro_times[i].prefix, prefix) == 0)
			ns = fs->dirtime.ro_times[i].ns;
	}
	pthread_mutex_unlock(&fs->dirtime.lock);
	return ns;
}

static void ro_set(struct dboxfs *fs, const char *prefix, int64_t ns)
{
	struct dirtime_state *dt = &fs->dirtime;
	struct dirtime_seen *grown;
	size_t i;

	pthread_mutex_lock(&dt->lock);
	for (i = 0; i < dt->ro_count; i++) {
		if (strcmp(dt->ro_times[i].prefix, prefix) == 0)
			break;
	}
	if (i == dt->ro_count) {
		grown = realloc(dt->ro_times,
				(dt->ro_count + 1) * sizeof(*grown));
		if (grown != NULL) {
			dt->ro_times = grown;
			dt->ro_times[dt->ro_count].prefix = strdup(prefix);
			if (dt->ro_times[dt->ro_count].prefix != NULL)
				dt->ro_count++;
		}
	}
	if (i < dt->ro_count)
		dt->ro_times[i].ns = ns;
	pthread_mutex_unlock(&dt->lock);
}

/* ------------------------- the view's own changes of the folder tree */
struct dirtime_own {
	char *name;
	unsigned int what;
	uint64_t token;
	bool done;
	uint64_t done_check;          /* the checks begun when it was done */
};

/* far more than one follower period of changes */
#define OWN_MAX 4096

uint64_t dirtime_own_begin(struct dboxfs *fs, const char *name,
			   unsigned int what)
{
	struct dirtime_state *dt = &fs->dirtime;
	struct dirtime_own *grown;
	char *copy = strdup(name);
	uint64_t token = 0;

	if (copy == NULL)
		return 0;   /* the follower moves the time once more */
	pthread_mutex_lock(&dt->lock);
	grown = dt->own_count < OWN_MAX ?
		realloc(dt->own, (dt->own_count + 1) * sizeof(*grown)) : NULL;
	if (grown != NULL) {
		dt->own = grown;
		token = ++dt->own_next;
		grown[dt->own_count++] = (struct dirtime_own){
			.name = copy, .what = what, .token = token };
		copy = NULL;
	}
	pthread_mutex_unlock(&dt->lock);
	free(copy);
	return token;
}

/* Removes record i (the lock held); returns its name to free. */
static char *own_drop(struct dirtime_state *dt, size_t i)
{
	char *name = dt->own[i].name;

	DBOXFS_ASSERT_LOCKED(&dt->lock);
	dt->own[i] = dt->own[--dt->own_count];
	return name;
}

void dirtime_own_end(struct dboxfs *fs, uint64_t token, bool done)
{
	struct dirtime_state *dt = &fs->dirtime;
	char *gone = NULL;

	pthread_mutex_lock(&dt->lock);
	for (size_t i = 0; token != 0 && i < dt->own_count; i++) {
		if (dt->own[i].token != token)
			continue;
		if (done) {
			dt->own[i].done = true;
			dt->own[i].done_check = dt->checks;
		} else {
			gone = own_drop(dt, i);
		}
		break;
	}
	pthread_mutex_unlock(&dt->lock);
	free(gone);
}

uint64_t dirtime_check_begin(struct dboxfs *fs)
{
	uint64_t check;

	pthread_mutex_lock(&fs->dirtime.lock);
	check = ++fs->dirtime.checks;
	pthread_mutex_unlock(&fs->dirtime.lock);
	return check;
}

void dirtime_check_end(struct dboxfs *fs, uint64_t check)
{
	struct dirtime_state *dt = &fs->dirtime;
	char *gone[64];
	size_t n = 0;

	pthread_mutex_lock(&dt->lock);
	for (size_t i = dt->own_count; i-- > 0 && n < 64;) {
		/* done before this check looked: it saw the change */
		if (dt->own[i].done && dt->own[i].done_check < check)
			gone[n++] = own_drop(dt, i);
	}
	pthread_mutex_unlock(&dt->lock);
	while (n > 0)
		free(gone[--n]);
}

bool dirtime_changed_by_us(struct dboxfs *fs, const char *name,
			   unsigned int what)
{
	bool found = false;

	pthread_mutex_lock(&fs->dirtime.lock);
	for (size_t i = 0; i < fs->dirtime.own_count && !found; i++)
		found = (fs->dirtime.own[i].what & what) != 0 &&
			strcmp(fs->dirtime.own[i].name, name) == 0;
	pthread_mutex_unlock(&fs->dirtime.lock);
	return found;
}

void dirtime_folder_changed(struct dboxfs *fs, const struct view_ino *dir)
{
	node_of(dir)->changed(fs, dir);
}

void dirtime_files_changed(struct dboxfs *fs, const struct view_ino *dir)
{
	int64_t files_box = folders_files_box(fs->layout, fs->inbox_id,
					      dir);

	if (files_box >= 0)
		backing_area_set_times(fs, files_box, AREA_FILES, now2);
}

void dirtime_vdir_changed(struct dboxfs *fs, const struct view_ino *dir)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];

	if (folders_prefix_now(fs, dir, prefix, sizeof(prefix)) >= 0)
		vdirs_set_times(dbox_store_vdirs_dir(fs->store), prefix, now2);
}

void dirtime_changed_by_other(struct dboxfs *fs, const char *prefix)
{
	struct dbox_mailbox b;
	struct timespec ts;
	int64_t box = -1;

	if (fs->readonly) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ro_set(fs, prefix,
		       (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
		return;
	}
	if (prefix[0] == '\0')
		box = fs->layout == VIEW_MAILDIRPP ? fs->inbox_id : 0;
	else if (dbox_mailbox_lookup(fs->store, prefix, &b, NULL) == 0)
		box = b.id;
	if (box >= 0)
		backing_area_set_times(fs, box, AREA_FILES, now2);
	else
		vdirs_set_times(dbox_store_vdirs_dir(fs->store), prefix, now2);
}

int64_t dirtime_dir_ns(struct dboxfs *fs, const struct view_ino *v,
		       const char *prefix,
		       int64_t fallback_ns)
{
	int64_t seen = fs->readonly ? ro_ns(fs, prefix) : 0;
	int64_t t = dirtime_folder_ns(fs, folders_files_box(fs->layout,
							    fs->inbox_id, v),
				      fallback_ns);

	return seen > t ? seen : t;
}

void dirtime_free_all(struct dboxfs *fs)
{
	for (size_t i = 0; i < fs->dirtime.ro_count; i++)
		free(fs->dirtime.ro_times[i].prefix);
	free(fs->dirtime.ro_times);
	fs->dirtime.ro_times = NULL;
	fs->dirtime.ro_count = 0;
	for (size_t i = 0; i < fs->dirtime.own_count; i++)
		free(fs->dirtime.own[i].name);
	free(fs->dirtime.own);
	fs->dirtime.own = NULL;
	fs->dirtime.own_count = 0;
}

void dirtime_folder_made(struct dboxfs *fs, int64_t box)
{
	backing_area_set_times(fs, box, AREA_FILES, now2);
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
static int set_sub_mtime(struct dboxfs *fs, int64_t box, enum view_sub sub,
			 struct timespec mt)
{
	struct timespec tv[2] = { { 0, UTIME_OMIT }, mt };
	int ret;

	if (mt.tv_nsec == UTIME_NOW)
		clock_gettime(CLOCK_REALTIME, &tv[1]);
	/* the index keeps nanoseconds in 64 bits: years 1678 to 2262 */
	if (tv[1].tv_sec > INT64_MAX / 1000000000 - 1 ||
	    tv[1].tv_sec < INT64_MIN / 1000000000 + 1)
		return -EOVERFLOW;
	ret = dbox_mailbox_set_dir_mtime(fs->store, box, sub == SUB_NEW,
					 (int64_t)tv[1].tv_sec * 1000000000 +
					 tv[1].tv_nsec, NULL);
	if (ret == 0 && backing_area_mtime(fs, box,
					   backing_area_of_sub(sub)) != 0)
		ret = backing_area_set_times(fs, box,
					     backing_area_of_sub(sub), tv);
	return ret;
}

/* The times asked for, as utimensat(2) takes them: false if none. */
static bool requested(const struct stat *attr, int to_set,
		      struct timespec tv[2])
{
	dirtime_requested(attr, to_set, tv);
	return tv[0].tv_nsec != UTIME_OMIT || tv[1].tv_nsec != UTIME_OMIT;
}

int dirtime_set_sub(struct dboxfs *fs, const struct view_ino *v,
		    const struct stat *attr, int to_set)
{
	struct timespec tv[2];

	if (!requested(attr, to_set, tv))
		return 0;
	if (v->sub == SUB_TMP)
		return backing_area_set_times(fs, v->box, AREA_TMP, tv);
	return tv[1].tv_nsec == UTIME_OMIT ? 0 :
		set_sub_mtime(fs, v->box, v->sub, tv[1]);
}

int dirtime_set_folder(struct dboxfs *fs, const struct view_ino *v,
		       const struct stat *attr, int to_set)
{
	struct timespec tv[2];
	int64_t files_box;

	if (!requested(attr, to_set, tv))
		return 0;
	files_box = folders_files_box(fs->layout, fs->inbox_id, v);
	return files_box < 0 ? 0 :
		backing_area_set_times(fs, files_box, AREA_FILES, tv);
}

int dirtime_set_vdir(struct dboxfs *fs, const struct view_ino *v,
		     const struct stat *attr, int to_set)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct timespec tv[2];

	if (!requested(attr, to_set, tv))
		return 0;
	if (tv[1].tv_nsec != UTIME_OMIT &&
	    folders_prefix_now(fs, v, prefix, sizeof(prefix)) >= 0)
		vdirs_set_times(dbox_store_vdirs_dir(fs->store), prefix, tv);
	return 0;
}
