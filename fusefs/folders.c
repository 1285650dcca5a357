/* folders.c - child directories of folders in both layouts. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dboxfs.h"
#include "folders.h"

static int collect(void *ctx, const struct dbox_mailbox *box)
{
	struct folder_list *fl = ctx;
	struct dbox_mailbox *p = realloc(fl->boxes, (fl->count + 1) *
					 sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	fl->boxes = p;
	fl->boxes[fl->count++] = *box;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	const struct dbox_mailbox *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

void folders_free(struct folder_list *fl)
{
	free(fl->boxes);
	fl->boxes = NULL;
	fl->count = 0;
	vdirs_list_free(fl->vdirs, fl->vdir_count);
	fl->vdirs = NULL;
	fl->vdir_count = 0;
	free(fl->by_name);
	fl->by_name = NULL;
	fl->by_name_count = 0;
}

/* Length of the first `depth` components of name, or 0 if it has fewer
 * than depth + 1 components (so it is no descendant). */
static size_t prefix_len(const char *name, unsigned int depth)
{
	const char *p = name;

	for (unsigned int i = 0; i < depth; i++) {
		p = strchr(p, '/');
		if (p == NULL)
			return 0;
		p++;
	}
	return (size_t)(p - name);
}

static const struct dbox_mailbox *find_id(const struct folder_list *fl,
					  int64_t id)
{
	for (size_t i = 0; i < fl->count; i++) {
		if (fl->boxes[i].id == id)
			return &fl->boxes[i];
	}
	return NULL;
}

static const struct dbox_mailbox *find_name(const struct folder_list *fl,
					    const char *name, size_t n)
{
	for (size_t i = 0; i < fl->count; i++) {
		if (strlen(fl->boxes[i].name) == n &&
		    memcmp(fl->boxes[i].name, name, n) == 0)
			return &fl->boxes[i];
	}
	return NULL;
}

bool folders_reserved_part(const char *name, size_t n)
{
	static const char *const subs[] = { "cur", "new", "tmp" };

	for (int i = 0; i < 3; i++) {
		if (n == 3 && memcmp(name, subs[i], 3) == 0)
			return true;
	}
	return false;
}

/* fs layout: a part cur, new or tmp would be its parent's cur/ new/ tmp/
 * (or make the root or a parent that is no mailbox look like a maildir). */
static bool has_reserved_part(const char *name)
{
	const char *p = name, *slash;

	for (;; p = slash + 1) {
		slash = strchr(p, '/');
		if (folders_reserved_part(p, slash != NULL ?
					  (size_t)(slash - p) : strlen(p)))
			return true;
		if (slash == NULL)
			return false;
	}
}

/* --------------------------------------- names, and the stored parents */

static int cmp_by_name(const void *a, const void *b)
{
	return strcmp((*(const struct dbox_mailbox *const *)a)->name,
		      (*(const struct dbox_mailbox *const *)b)->name);
}

int folders_index_names(struct folder_list *fl)
{
	free(fl->by_name);
	fl->by_name_count = 0;
	fl->by_name = malloc((fl->count + 1) * sizeof(*fl->by_name));
	if (fl->by_name == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < fl->count; i++) {
		if (!has_reserved_part(fl->boxes[i].name))
			fl->by_name[fl->by_name_count++] = &fl->boxes[i];
	}
	if (fl->by_name_count > 1)
		qsort(fl->by_name, fl->by_name_count, sizeof(*fl->by_name),
		      cmp_by_name);
	return 0;
}

/* The first shown mailbox whose name is >= key (by_name order). */
static size_t lower_bound(const struct folder_list *fl, const char *key)
{
	size_t lo = 0, hi = fl->by_name_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(fl->by_name[mid]->name, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether a shown mailbox is called `name` (below: or is under it). */
static bool mailbox_at(const struct folder_list *fl, const char *name,
		       bool below)
{
	char key[DBOX_NAME_MAX * 4 + 2];
	size_t n = strlen(name), i = lower_bound(fl, name);

	if (i < fl->by_name_count && strcmp(fl->by_name[i]->name, name) == 0)
		return true;
	if (!below || n + 2 > sizeof(key))
		return false;
	memcpy(key, name, n);
	key[n] = '/';
	key[n + 1] = '\0';
	i = lower_bound(fl, key);
	return i < fl->by_name_count &&
		strncmp(fl->by_name[i]->name, key, n + 1) == 0;
}

/* The identity of the parent called name[0..n): its stored entry's, or
 * the hash of its name. */
static uint64_t vdir_id(const struct folder_list *fl, const char *name,
			size_t n)
{
	uint64_t id = vdirs_find(fl->vdirs, fl->vdir_count, name, n);

	return id != 0 ? id : vdirs_hash_id(name, n);
}

/* A parent that is a mailbox now (made by another program): its plain
 * files are the folder's, as in a directory that became a maildir; then
 * its entry goes (it stays while a file could not move). */
static bool drop_vdir(const struct folder_list *fl, const char *dir,
		      const char *name)
{
	for (size_t i = 0; i < fl->count; i++) {
		if (strcmp(fl->boxes[i].name, name) == 0)
			return vdirs_hand_over(dir, name, fl->boxes[i].id) == 0;
	}
	return false;
}

/* Makes the entries of the parents shown without one (the first
 * mailbox below each gives its time, which the parent showed so far)
 * and drops those of parents that are a mailbox now; whether any
 * changed. */
static bool keep_vdirs(const struct folder_list *fl, const char *dir)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	bool changed = false;
	uint64_t id;
	int ret;

	for (size_t i = 0; i < fl->vdir_count; i++) {
		if (mailbox_at(fl, fl->vdirs[i].name, false) &&
		    drop_vdir(fl, dir, fl->vdirs[i].name))
			changed = true;
	}
	for (size_t i = 0; i < fl->count; i++) {
		const struct dbox_mailbox *b = &fl->boxes[i];
		const char *p = b->name;

		if (has_reserved_part(b->name))
			continue;
		while ((p = strchr(p, '/')) != NULL) {
			size_t n = (size_t)(p++ - b->name);

			if (vdirs_find(fl->vdirs, fl->vdir_count, b->name,
				       n) != 0)
				continue;
			snprintf(prefix, sizeof(prefix), "%.*s", (int)n,
				 b->name);
			if (mailbox_at(fl, prefix, false))
				continue;
			ret = vdirs_make(dir, prefix, b->created * 1000000000,
					 &id);
			/* made, or just made by another thread: listed
			 * again, so that its identity is the entry's */
			if (ret == 0 || ret == -EEXIST)
				changed = true;
		}
	}
	return changed;
}

static int load_vdirs(struct dboxfs *fs, struct folder_list *fl)
{
	const char *dir = dbox_store_vdirs_dir(fs->store);
	int ret = folders_index_names(fl);

	if (ret < 0)
		return ret;
	/* unreadable: the parents show as on a read-only mount */
	if (vdirs_list(dir, &fl->vdirs, &fl->vdir_count) < 0 ||
	    fs->readonly || !keep_vdirs(fl, dir))
		return 0;
	vdirs_list_free(fl->vdirs, fl->vdir_count);
	if (vdirs_list(dir, &fl->vdirs, &fl->vdir_count) < 0)
		fl->vdir_count = 0;
	return 0;
}

int folders_load(struct dboxfs *fs, struct folder_list *fl)
{
	int ret;

	memset(fl, 0, sizeof(*fl));
	fl->state = &fs->folders;
	ret = dbox_mailbox_list(fs->store, collect, fl, NULL);
	if (ret == 0 && fl->count > 1)
		qsort(fl->boxes, fl->count, sizeof(*fl->boxes), cmp_id);
	if (ret == 0 && fs->layout == VIEW_FS)
		ret = load_vdirs(fs, fl);
	if (ret < 0)
		folders_free(fl);
	return ret;
}

static unsigned int depth_of(const char *name)
{
	unsigned int depth = 1;

	for (const char *p = name; *p != '\0'; p++)
		depth += *p == '/';
	return depth;
}

/* Whether a proper prefix of `name` (a parent it makes) hashes to id;
 * its length in *n. */
static bool parent_hashes_to(const struct folder_list *fl, const char *name,
			     uint64_t id, size_t *n)
{
	const char *p = name;

	if (has_reserved_part(name))
		return false;
	while ((p = strchr(p, '/')) != NULL) {
		*n = (size_t)(p++ - name);
		if (vdir_id(fl, name, *n) == id)
			return true;
	}
	return false;
}

/* The name of the parent whose identity is id: a stored entry's, or a
 * parent (of a shown mailbox or a stored parent) whose name hashes to
 * it. */
static int vdir_name(const struct folder_list *fl, uint64_t id, char *buf,
		     size_t len)
{
	const char *found = NULL;
	size_t n = 0;

	for (size_t i = 0; found == NULL && i < fl->vdir_count; i++) {
		if (fl->vdirs[i].id == id) {
			found = fl->vdirs[i].name;
			n = strlen(found);
		}
	}
	for (size_t i = 0; found == NULL && (id & VDIRS_HASH_BIT) &&
	     i < fl->count; i++) {
		if (parent_hashes_to(fl, fl->boxes[i].name, id, &n))
			found = fl->boxes[i].name;
	}
	for (size_t i = 0; found == NULL && (id & VDIRS_HASH_BIT) &&
	     i < fl->vdir_count; i++) {
		if (parent_hashes_to(fl, fl->vdirs[i].name, id, &n))
			found = fl->vdirs[i].name;
	}
	if (found == NULL || n >= len)
		return -ENOENT;
	memcpy(buf, found, n);
	buf[n] = '\0';
	/* a stored parent that is a mailbox now is that mailbox's folder */
	return find_name(fl, buf, n) != NULL ? -ENOENT : (int)depth_of(buf);
}

int folders_prefix(const struct folder_list *fl, enum view_layout layout,
		   const struct view_ino *v, char *buf, size_t len)
{
	const struct dbox_mailbox *b;

	(void)layout;
	if (v->kind == VK_ROOT) {
		buf[0] = '\0';
		return 0;
	}
	if (v->kind == VK_VDIR)
		return vdir_name(fl, v->ino & VIEW_VDIR_ID_MASK, buf, len);
	b = find_id(fl, v->box);
	if (b == NULL || v->kind != VK_FOLDER)
		return -ENOENT;
	snprintf(buf, len, "%s", b->name);
	return (int)depth_of(b->name);
}

int folders_prefix_now(struct dboxfs *fs, const struct view_ino *v,
		       char *buf, size_t len)
{
	struct folder_list fl;
	int ret = folders_load(fs, &fl);

	if (ret < 0)
		return ret;
	ret = folders_prefix(&fl, fs->layout, v, buf, len);
	folders_free(&fl);
	return ret;
}

/* Said once per mailbox: every listing passes the mailboxes in id order. */
static void log_hidden(struct folders_state *st, const struct dbox_mailbox *b,
		       const char *why)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->hidden_lock);
	if (b->id > st->hidden_logged) {
		st->hidden_logged = b->id;
		fuse_log(FUSE_LOG_WARNING, "dboxfs: mailbox %s is not shown: "
			 "%s\n", b->name, why);
	}
	pthread_mutex_unlock(&st->hidden_lock);
}

/* Whether a mailbox has a directory in the layout; in maildir++ its
 * directory name is put in pp (VIEW_NAME_MAX + 1 bytes). */
static bool shown(const struct folder_list *fl, const struct dbox_mailbox *b,
		  enum view_layout layout, char *pp)
{
	if (layout == VIEW_FS) {
		if (!has_reserved_part(b->name))
			return true;
		log_hidden(fl->state, b, "a part named cur, new or tmp would shadow a "
			   "folder's own in the fs layout (layout=maildir++ "
			   "shows it)");
		return false;
	}
	if (view_mailbox_to_pp(b->name, pp, VIEW_NAME_MAX + 1) == 0)
		return true;
	log_hidden(fl->state, b, "its maildir++ name would be longer than 255 bytes "
		   "(layout=fs shows it)");
	return false;
}

static bool under(const char *name, const char *prefix, unsigned int depth)
{
	size_t n = strlen(prefix);

	if (depth == 0)
		return true;
	return strncmp(name, prefix, n) == 0 && name[n] == '/';
}

/* Child component of `name` below prefix (depth components). */
static void child_component(const char *name, unsigned int depth,
			    char *buf, size_t len)
{
	const char *start = name + prefix_len(name, depth);
	const char *slash = strchr(start, '/');
	size_t n = slash != NULL ? (size_t)(slash - start) : strlen(start);

	if (n >= len)
		n = len - 1;
	memcpy(buf, start, n);
	buf[n] = '\0';
}

static bool seen_before(const struct folder_list *fl, size_t upto,
			const char *prefix, unsigned int depth,
			const char *comp)
{
	char other[DBOX_NAME_MAX * 4 + 1];

	for (size_t j = 0; j < upto; j++) {
		if (!under(fl->boxes[j].name, prefix, depth) ||
		    (depth > 0 && strlen(fl->boxes[j].name) == strlen(prefix)) ||
		    has_reserved_part(fl->boxes[j].name))
			continue;
		child_component(fl->boxes[j].name, depth, other, sizeof(other));
		if (strcmp(other, comp) == 0)
			return true;
	}
	return false;
}

static void fs_child(const struct folder_list *fl, const char *prefix,
		     unsigned int depth, const struct dbox_mailbox *first,
		     const char *comp, struct folder_child *c)
{
	char full[DBOX_NAME_MAX * 8 + 2];
	const struct dbox_mailbox *exact;

	snprintf(c->name, sizeof(c->name), "%s", comp);
	snprintf(full, sizeof(full), "%s%s%s", prefix, depth ? "/" : "", comp);
	exact = find_name(fl, full, strlen(full));
	c->cookie = FOLDER_COOKIE_BASE + (uint64_t)first->id;
	if (exact != NULL) {
		c->box = exact->id;
		c->ino = view_ino_folder(exact->id);
	} else {
		c->box = 0;
		c->ino = view_ino_vdir(vdir_id(fl, full, strlen(full)));
	}
}

/* fs layout: the children that are stored parents holding no mailbox
 * (an empty A kept after rmdir A/B), after the folders, in the order of
 * their identity. */
struct kept {
	uint64_t cookie, id;
	size_t entry;
};

static int cmp_kept(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;

	return x->cookie < y->cookie ? -1 : x->cookie > y->cookie;
}

static size_t kept_collect(const struct folder_list *fl, const char *prefix,
			   unsigned int depth, uint64_t after,
			   struct kept *k)
{
	char comp[DBOX_NAME_MAX * 4 + 1], full[DBOX_NAME_MAX * 8 + 2];
	size_t n = 0;

	for (size_t i = 0; i < fl->vdir_count; i++) {
		const char *name = fl->vdirs[i].name;
		uint64_t id, cookie;

		if (!under(name, prefix, depth) ||
		    (depth > 0 && strlen(name) == strlen(prefix)) ||
		    has_reserved_part(name))
			continue;
		child_component(name, depth, comp, sizeof(comp));
		snprintf(full, sizeof(full), "%s%s%s", prefix,
			 depth ? "/" : "", comp);
		if (mailbox_at(fl, full, true))
			continue;   /* listed with the folders */
		id = vdir_id(fl, full, strlen(full));
		cookie = FOLDER_KEPT_COOKIE_BASE +
			(id & (FOLDER_KEPT_COOKIE_BASE - 1));
		if (cookie > after)
			k[n++] = (struct kept){ cookie, id, i };
	}
	if (n > 1)
		qsort(k, n, sizeof(*k), cmp_kept);
	return n;
}

static void kept_children(const struct folder_list *fl, const char *prefix,
			  unsigned int depth, uint64_t after,
			  int (*cb)(void *ctx, const struct folder_child *c),
			  void *ctx)
{
	struct kept *k = fl->vdir_count == 0 ? NULL :
		malloc(fl->vdir_count * sizeof(*k));
	struct folder_child c;
	size_t n = k == NULL ? 0 : kept_collect(fl, prefix, depth, after, k);

	for (size_t j = 0; j < n; j++) {
		/* A/K and A/K/L both stand for K in A */
		if (j > 0 && k[j].id == k[j - 1].id)
			continue;
		child_component(fl->vdirs[k[j].entry].name, depth, c.name,
				sizeof(c.name));
		c.box = 0;
		c.ino = view_ino_vdir(k[j].id);
		c.cookie = k[j].cookie;
		if (cb(ctx, &c) != 0)
			break;
	}
	free(k);
}

void folders_children(const struct folder_list *fl, enum view_layout layout,
		      const char *prefix, unsigned int depth, int64_t inbox,
		      uint64_t after,
		      int (*cb)(void *ctx, const struct folder_child *c),
		      void *ctx)
{
	struct folder_child c;
	char comp[DBOX_NAME_MAX * 4 + 1], pp[VIEW_NAME_MAX + 1];

	for (size_t i = 0; i < fl->count; i++) {
		const struct dbox_mailbox *b = &fl->boxes[i];

		if (!shown(fl, b, layout, pp) ||
		    FOLDER_COOKIE_BASE + (uint64_t)b->id <= after)
			continue;
		if (layout == VIEW_MAILDIRPP) {
			if (b->id == inbox)
				continue;
			snprintf(c.name, sizeof(c.name), "%s", pp);
			c.box = b->id;
			c.ino = view_ino_folder(b->id);
			c.cookie = FOLDER_COOKIE_BASE + (uint64_t)b->id;
			if (cb(ctx, &c) != 0)
				return;
			continue;
		}
		if (!under(b->name, prefix, depth) ||
		    (depth > 0 && strlen(b->name) == strlen(prefix)))
			continue;
		child_component(b->name, depth, comp, sizeof(comp));
		if (seen_before(fl, i, prefix, depth, comp))
			continue;
		fs_child(fl, prefix, depth, b, comp, &c);
		if (cb(ctx, &c) != 0)
			return;
	}
	if (layout == VIEW_FS)
		kept_children(fl, prefix, depth, after, cb, ctx);
}

struct find_ctx {
	const char *name;
	struct folder_child *out;
	bool found;
};

static int find_cb(void *ctx, const struct folder_child *c)
{
	struct find_ctx *f = ctx;

	if (strcmp(c->name, f->name) != 0)
		return 0;
	*f->out = *c;
	f->found = true;
	return 1;
}

int folders_lookup(const struct folder_list *fl, enum view_layout layout,
		   const char *prefix, unsigned int depth, int64_t inbox,
		   const char *name, struct folder_child *c)
{
	struct find_ctx f = { name, c, false };

	folders_children(fl, layout, prefix, depth, inbox, 0, find_cb, &f);
	return f.found ? 0 : -ENOENT;
}

static int count_cb(void *ctx, const struct folder_child *c)
{
	(void)c;
	(*(size_t *)ctx)++;
	return 0;
}

size_t folders_count_children(const struct folder_list *fl,
			      enum view_layout layout, const char *prefix,
			      unsigned int depth, int64_t inbox)
{
	size_t n = 0;

	folders_children(fl, layout, prefix, depth, inbox, 0, count_cb, &n);
	return n;
}

uint64_t folders_dir_ino(const struct folder_list *fl, const char *prefix)
{
	const struct dbox_mailbox *b;
	size_t n = strlen(prefix);

	if (n == 0)
		return VIEW_ROOT_INO;
	b = find_name(fl, prefix, n);
	if (b != NULL)
		return view_ino_folder(b->id);
	if (mailbox_at(fl, prefix, true))
		return view_ino_vdir(vdir_id(fl, prefix, n));
	for (size_t i = 0; i < fl->vdir_count; i++) {
		const char *name = fl->vdirs[i].name;

		if (strncmp(name, prefix, n) == 0 &&
		    (name[n] == '\0' || name[n] == '/'))
			return view_ino_vdir(vdir_id(fl, prefix, n));
	}
	return 0;
}

int64_t folders_first_created(const struct folder_list *fl,
			      const char *prefix)
{
	size_t n = strlen(prefix);

	for (size_t i = 0; i < fl->count; i++) {
		if (strncmp(fl->boxes[i].name, prefix, n) == 0 &&
		    fl->boxes[i].name[n] == '/')
			return fl->boxes[i].created;
	}
	return 0;
}

int64_t folders_dir_mailbox(enum view_layout layout, int64_t inbox,
			    const struct view_ino *v)
{
	if (v->kind == VK_ROOT)
		return layout == VIEW_MAILDIRPP ? inbox : 0;
	return v->kind == VK_FOLDER ? v->box : 0;
}

int64_t folders_files_box(enum view_layout layout, int64_t inbox,
			  const struct view_ino *v)
{
	if (v->kind == VK_ROOT)
		return layout == VIEW_MAILDIRPP ? inbox : 0;
	return v->kind == VK_FOLDER ? v->box : -1;
}
