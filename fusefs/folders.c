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

int folders_load(struct dboxfs *fs, struct folder_list *fl)
{
	int ret;

	fl->boxes = NULL;
	fl->count = 0;
	fl->state = &fs->folders;
	ret = dbox_mailbox_list(fs->store, collect, fl, NULL);
	if (ret < 0) {
		folders_free(fl);
		return ret;
	}
	if (fl->count > 1)
		qsort(fl->boxes, fl->count, sizeof(*fl->boxes), cmp_id);
	return 0;
}

void folders_free(struct folder_list *fl)
{
	free(fl->boxes);
	fl->boxes = NULL;
	fl->count = 0;
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

int folders_prefix(const struct folder_list *fl, enum view_layout layout,
		   const struct view_ino *v, char *buf, size_t len)
{
	const struct dbox_mailbox *b;
	size_t n;

	if (v->kind == VK_ROOT) {
		buf[0] = '\0';
		return 0;
	}
	b = find_id(fl, v->box);
	if (b == NULL)
		return -ENOENT;
	if (v->kind == VK_FOLDER) {
		snprintf(buf, len, "%s", b->name);
		n = strlen(b->name);
		unsigned int depth = 1;

		for (size_t i = 0; i < n; i++)
			depth += b->name[i] == '/';
		return (int)depth;
	}
	/* vdir: the first `depth` components of its lowest mailbox */
	n = prefix_len(b->name, v->depth);
	if (n == 0 || n - 1 >= len)
		return -ENOENT;
	memcpy(buf, b->name, n - 1);
	buf[n - 1] = '\0';
	return (int)v->depth;
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
		c->box = first->id;
		c->ino = view_ino_vdir(first->id, depth + 1);
	}
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
