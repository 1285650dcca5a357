/* sweep-ro.c - the spool as the next sweep leaves it, for a read-only
 * mount (see sweep-ro.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dboxfs.h"
#include "sweep.h"
#include "sweep-ro.h"
#include "totmp.h"

/* A set of names (tsearch tree of strings it owns). */
struct nameset {
	void *root;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool set_has(const struct nameset *s, const char *name)
{
	return tfind(name, &s->root, cmp_name) != NULL;
}

static int set_add(struct nameset *s, const char *name)
{
	char *copy = strdup(name);
	void *slot = copy == NULL ? NULL : tsearch(copy, &s->root, cmp_name);

	if (slot == NULL || *(char **)slot != copy)
		free(copy);
	return slot == NULL ? -ENOMEM : 0;
}

static void set_free(struct nameset *s)
{
	tdestroy(s->root, free);
	s->root = NULL;
}

/* An open directory to list, from an O_PATH descriptor (-1: none). */
static DIR *list_dir(int pathfd)
{
	int fd = pathfd < 0 ? -1 : backing_reopen(pathfd, O_RDONLY |
						  O_DIRECTORY);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (d == NULL && fd >= 0)
		close(fd);
	return d;
}

static bool is_regular(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		S_ISREG(st.st_mode);
}

/* The name backing_move_to_tmp_as gives `as` in a tmp/ holding taken:
 * as, or the first free as.N (false: none, the move fails). */
static bool free_name(const struct nameset *taken, const char *as, char *buf,
		      size_t len)
{
	snprintf(buf, len, "%s", as);
	for (int n = 1; set_has(taken, buf); n++) {
		if (n == 1000 ||
		    snprintf(buf, len, "%s.%d", as, n) >= (int)len)
			return false;
	}
	return true;
}

static int add_entry(struct sweepro_list *l, struct nameset *taken,
		     const char *as, enum sweepro_from from, const char *name)
{
	char shown[NAME_MAX + 1];
	struct sweepro_entry *v;

	if (!free_name(taken, as, shown, sizeof(shown)))
		return 0;
	v = realloc(l->v, (l->count + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	l->v = v;
	v += l->count;
	v->from = from;
	v->shown = strdup(shown);
	v->name = strdup(name);
	if (v->shown == NULL || v->name == NULL) {
		free(v->shown);
		free(v->name);
		return -ENOMEM;
	}
	l->count++;
	return set_add(taken, shown);
}

/* pending/ beside the spool, which only the read-write mount opens */
static int pending_dir(struct dboxfs *fs)
{
	char path[PATH_MAX + 16], *slash;

	snprintf(path, sizeof(path), "%s", fs->backing.spool_root);
	slash = strrchr(path, '/');
	if (slash == NULL)
		return -ENOENT;
	snprintf(slash, sizeof(path) - (size_t)(slash - path), "/pending");
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* Step 1 of the sweep (sweep_pending): pending/ entries of box whose
 * message is not there go back to tmp/, which holds taken. */
static int moved_pending(struct dboxfs *fs, int64_t box, struct nameset *taken,
			 struct sweepro_list *l)
{
	int pfd = pending_dir(fs), ret = 0;
	DIR *d = list_dir(pfd);
	struct dirent *e;

	while (d != NULL && ret == 0 && (e = readdir(d)) != NULL) {
		const char *name;
		int64_t ebox;
		uint32_t uid;

		if (e->d_name[0] == '.' ||
		    !dbox_store_kept_name(e->d_name, &ebox, &uid, &name) ||
		    ebox != box || !is_regular(pfd, e->d_name) ||
		    sweep_pending_done(fs, pfd, e->d_name, box, uid))
			continue;
		ret = add_entry(l, taken, name, SWEEPRO_PENDING, e->d_name);
	}
	if (d != NULL)
		closedir(d);
	if (pfd >= 0)
		close(pfd);
	return ret;
}

/* The names tmp/ shows once the first walk is done with it: the reserved
 * files of messages renamed into tmp/ under their names (or gone), and
 * committed deliveries' leftovers gone. */
static int shown_in_tmp(struct dboxfs *fs, int64_t box, int tmpfd,
			struct nameset *shown)
{
	DIR *d = list_dir(tmpfd);
	struct dirent *e;
	int ret = 0;

	while (d != NULL && ret == 0 && (e = readdir(d)) != NULL) {
		char buf[NAME_MAX + 1];
		const char *name;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		name = totmp_ro_shown(fs, tmpfd, e->d_name, buf, sizeof(buf));
		if (name != NULL && !sweep_ro_leftover(fs, box, tmpfd,
						       e->d_name))
			ret = set_add(shown, name);
	}
	if (d != NULL)
		closedir(d);
	return ret;
}

/* Step 3 (the second walk): files not closed in cur/ or new/. */
static int moved_unclosed(struct dboxfs *fs, int64_t box,
			  enum backing_area area, struct nameset *taken,
			  struct sweepro_list *l)
{
	int afd = -1, ret = 0;
	struct dirent *e;
	DIR *d;

	if (backing_area_dir(fs, box, area, &afd) < 0)
		return 0;
	d = list_dir(afd);
	while (d != NULL && ret == 0 && (e = readdir(d)) != NULL) {
		if (sweep_moves_to_tmp(fs, box, area, afd, e->d_name))
			ret = add_entry(l, taken, e->d_name, area == AREA_CUR ?
					SWEEPRO_CUR : SWEEPRO_NEW, e->d_name);
	}
	if (d != NULL)
		closedir(d);
	close(afd);
	return ret;
}

/* every name in tmp/ as it is (what sweep_pending's moves meet) */
static int names_in(int tmpfd, struct nameset *s)
{
	DIR *d = list_dir(tmpfd);
	struct dirent *e;
	int ret = 0;

	while (d != NULL && ret == 0 && (e = readdir(d)) != NULL)
		ret = set_add(s, e->d_name);
	if (d != NULL)
		closedir(d);
	return ret;
}

/* each move adds its name to the set the next one meets */
static int plan(struct dboxfs *fs, int64_t box, int tmpfd,
		struct sweepro_list *out)
{
	struct nameset taken = { NULL }, shown = { NULL };
	int ret = names_in(tmpfd, &taken);

	if (ret == 0)
		ret = moved_pending(fs, box, &taken, out);
	if (ret == 0)
		ret = shown_in_tmp(fs, box, tmpfd, &shown);
	for (size_t i = 0; ret == 0 && i < out->count; i++)
		ret = set_add(&shown, out->v[i].shown);
	if (ret == 0)
		ret = moved_unclosed(fs, box, AREA_CUR, &shown, out);
	if (ret == 0)
		ret = moved_unclosed(fs, box, AREA_NEW, &shown, out);
	set_free(&taken);
	set_free(&shown);
	return ret;
}

int sweepro_moved(struct dboxfs *fs, int64_t box, int tmpfd,
		  struct sweepro_list *out)
{
	int ret;

	out->v = NULL;
	out->count = 0;
	ret = plan(fs, box, tmpfd, out);
	if (ret < 0)
		sweepro_free(out);
	return ret;
}

void sweepro_free(struct sweepro_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		free(l->v[i].shown);
		free(l->v[i].name);
	}
	free(l->v);
	l->v = NULL;
	l->count = 0;
}

int sweepro_dirfd(struct dboxfs *fs, int64_t box,
		  const struct sweepro_entry *e, int *fd_r)
{
	if (e->from == SWEEPRO_PENDING) {
		*fd_r = pending_dir(fs);
		return *fd_r < 0 ? -errno : 0;
	}
	return backing_area_dir(fs, box, e->from == SWEEPRO_CUR ? AREA_CUR :
				AREA_NEW, fd_r);
}

/* the file the sweep moves to tmp/ as `name` */
static int lookup_moved(struct dboxfs *fs, int64_t box, int tmpfd,
			const char *name, struct stat *st)
{
	struct sweepro_list l;
	struct binode *bi;
	int ret = sweepro_moved(fs, box, tmpfd, &l), fd;

	for (size_t i = 0; ret == 0 && i < l.count; i++) {
		if (strcmp(l.v[i].shown, name) != 0)
			continue;
		ret = sweepro_dirfd(fs, box, &l.v[i], &fd);
		if (ret == 0) {
			ret = backing_lookup(fs, fd, l.v[i].name, box,
					     AREA_TMP, &bi, st);
			close(fd);
		}
		sweepro_free(&l);
		return ret;
	}
	sweepro_free(&l);
	return ret < 0 ? ret : -ENOENT;
}

int sweepro_lookup(struct dboxfs *fs, int64_t box, enum backing_area area,
		   int dirfd, const char *name, struct stat *st)
{
	char buf[NAME_MAX + 1];
	const char *real = dirfd < 0 ? NULL : name;
	struct binode *bi;
	int ret = -ENOENT;

	if (real != NULL && area == AREA_TMP)
		real = totmp_ro_backing(fs, dirfd, name, buf, sizeof(buf));
	/* a committed delivery's leftover goes, a file not closed in cur/
	 * or new/ leaves for tmp/ */
	if (real != NULL && (sweep_ro_leftover(fs, box, dirfd, real) ||
			     sweep_moves_to_tmp(fs, box, area, dirfd, real)))
		real = NULL;
	if (real != NULL)
		ret = backing_lookup(fs, dirfd, real, box, area, &bi, st);
	if (ret == -ENOENT && area == AREA_TMP)
		ret = lookup_moved(fs, box, dirfd, name, st);
	return ret;
}
