/* dovecot-mbox.c - stores and mailboxes on top of the index reader:
 * listing ROOT/mailboxes (dbox-format.md 1.2-1.5) and joining mdbox
 * mailbox records with the map (dovecot-index.md 5.2).  Public API:
 * dbox/dovecot-index.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dbox/dovecot-index.h"
#include "dovecot/mutf7.h"
#include "util/util.h"

#define LIST_MAX_DEPTH 64
#define MAILDIR_NAME "dbox-Mails"
/* where Dovecot moves a mailbox directory while deleting it */
#define DELETE_TRASH_NAME "..DOVECOT-TrasH"

struct dovi_store {
	char *root;
	/* Dovecot's INDEX= directory, or NULL: the index files live in
	 * the tree (mailbox-list-fs.c, MAILBOX_LIST_PATH_TYPE_INDEX) */
	char *index_root;
	enum dovi_format format;
	struct dovi_index *map;     /* mdbox, loaded on first use */
};

struct dovi_mailbox {
	struct dovi_store *store;
	char *name;
	char *dir;
	char *index_dir;            /* where its dovecot.index* are */
	struct dovi_index *idx;
	/* the message list and what it points to, rebuilt by each refresh */
	struct dovi_message *msgs;
	size_t count, hidden;
	char **kw_names;            /* copy of the index's keyword list */
	unsigned kw_count;
	const char **kw_ptrs;       /* per-message keyword arrays */
	uint32_t uid_validity, next_uid;
};

/* A built message list, before it replaces the mailbox's. */
struct msg_list {
	struct dovi_message *msgs;
	size_t count, hidden, missing;
	char **kw_names;
	unsigned kw_count;
	const char **kw_ptrs;
};

/* ---- store ------------------------------------------------------------ */

int dovi_store_open(const char *root, enum dovi_format format,
		    struct dovi_store **store_r, struct dbox_err *err)
{
	struct dovi_store *store;
	struct stat st;

	if (format != DOVI_SDBOX && format != DOVI_MDBOX)
		return dbox_fail(err, -EINVAL, "unknown store format %d",
				 (int)format);
	if (stat(root, &st) < 0)
		return dbox_fail(err, -errno, "stat(%s): %s", root,
				 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return dbox_fail(err, -ENOTDIR, "%s is not a directory", root);
	store = calloc(1, sizeof(*store));
	if (store == NULL || (store->root = strdup(root)) == NULL) {
		free(store);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	store->format = format;
	*store_r = store;
	return 0;
}

void dovi_store_free(struct dovi_store *store)
{
	if (store == NULL)
		return;
	dovi_index_free(store->map);
	free(store->root);
	free(store->index_root);
	free(store);
}

int dovi_store_set_index_root(struct dovi_store *store, const char *dir,
			      struct dbox_err *err)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return dbox_fail(err, -errno, "Dovecot index directory %s: %s",
				 dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return dbox_fail(err, -ENOTDIR, "Dovecot index directory %s: "
				 "not a directory", dir);
	free(store->index_root);
	store->index_root = strdup(dir);
	return store->index_root == NULL ?
		dbox_fail(err, -ENOMEM, "out of memory") : 0;
}

const char *dovi_store_index_root(const struct dovi_store *store)
{
	return store->index_root != NULL ? store->index_root : store->root;
}

const char *dovi_store_root(const struct dovi_store *store)
{
	return store->root;
}

enum dovi_format dovi_store_format(const struct dovi_store *store)
{
	return store->format;
}

/* Loads the map, or brings it up to date. */
static int map_refresh(struct dovi_store *store, struct dbox_err *err)
{
	char prefix[4096];

	if (store->map != NULL)
		return dovi_index_refresh(store->map, NULL, err);
	/* with INDEX= the map's index moves too (mdbox_map_init: the
	 * root of MAILBOX_LIST_PATH_TYPE_INDEX), its m.N files stay */
	if (dbox_path(prefix, sizeof(prefix), "%s/storage/dovecot.map.index",
		      dovi_store_index_root(store)) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "store path too long");
	return dovi_index_open(prefix, &store->map, err);
}

struct dovi_index *dovi_store_map(struct dovi_store *store,
				  struct dbox_err *err)
{
	if (store->format != DOVI_MDBOX) {
		dbox_fail(err, -EINVAL, "an sdbox store has no map");
		return NULL;
	}
	if (store->map == NULL && map_refresh(store, err) < 0)
		return NULL;
	return store->map;
}

/* ---- listing ---------------------------------------------------------- */

struct name_list {
	struct dovi_mailbox_name *v;
	size_t count, cap;
};

static int list_add(struct name_list *l, const char *storage,
		    struct dbox_err *err)
{
	struct dovi_mailbox_name *n;
	int ret;

	if (l->count == l->cap) {
		size_t cap = l->cap == 0 ? 16 : l->cap * 2;

		n = realloc(l->v, cap * sizeof(*n));
		if (n == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		l->v = n;
		l->cap = cap;
	}
	n = &l->v[l->count];
	memset(n, 0, sizeof(*n));
	n->storage_name = strdup(storage);
	if (n->storage_name == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	ret = dovi_mutf7_decode(storage, &n->name);
	n->name_valid = ret == 0;
	if (ret == -EINVAL)
		n->name = strdup(storage);
	if (n->name == NULL) {
		free(n->storage_name);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	l->count++;
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	/* lstat: a symlink is not followed into another tree */
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int list_dir(const char *base, const char *rel, unsigned depth,
		    struct name_list *l, struct dbox_err *err);

/* One directory entry below mailboxes/: a mailbox if it holds
 * dbox-Mails, and a parent of more mailboxes in any case. */
static int list_entry(const char *base, const char *rel, const char *name,
		      unsigned depth, struct name_list *l,
		      struct dbox_err *err)
{
	char sub[4096], path[4096], mails[4200];
	int ret;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strcmp(name, MAILDIR_NAME) == 0 ||
	    strcmp(name, DELETE_TRASH_NAME) == 0)
		return 0;
	if (dbox_path(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
		      name) < 0 ||
	    dbox_path(path, sizeof(path), "%s/%s", base, sub) < 0)
		return 0;   /* deeper than any path can be: not a mailbox */
	if (!is_dir(path))
		return 0;
	if (dbox_path(mails, sizeof(mails), "%s/%s", path, MAILDIR_NAME) == 0 &&
	    is_dir(mails)) {
		ret = list_add(l, sub, err);
		if (ret < 0)
			return ret;
	}
	return list_dir(base, sub, depth + 1, l, err);
}

static int list_dir(const char *base, const char *rel, unsigned depth,
		    struct name_list *l, struct dbox_err *err)
{
	char path[4096];
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if (depth > LIST_MAX_DEPTH)
		return 0;
	if (dbox_path(path, sizeof(path), "%s%s%s", base, rel[0] ? "/" : "",
		      rel) < 0)
		return 0;
	dir = opendir(path);
	if (dir == NULL) {
		/* a mailbox deleted meanwhile is no error */
		if (errno == ENOENT && depth > 0)
			return 0;
		return dbox_fail(err, -errno, "opendir(%s): %s", path,
				 strerror(errno));
	}
	while (ret == 0 && (de = readdir(dir)) != NULL)
		ret = list_entry(base, rel, de->d_name, depth, l, err);
	closedir(dir);
	return ret;
}

static int name_cmp(const void *a, const void *b)
{
	const struct dovi_mailbox_name *x = a, *y = b;

	return strcmp(x->storage_name, y->storage_name);
}

int dovi_store_list(struct dovi_store *store,
		    struct dovi_mailbox_name **list_r, size_t *count_r,
		    struct dbox_err *err)
{
	struct name_list l = { NULL, 0, 0 };
	char base[4096];
	int ret;

	*list_r = NULL;
	*count_r = 0;
	if (dbox_path(base, sizeof(base), "%s/mailboxes", store->root) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "store path too long");
	if (!is_dir(base))
		return 0;   /* a store with no mailbox yet */
	ret = list_dir(base, "", 0, &l, err);
	if (ret < 0) {
		dovi_mailbox_names_free(l.v, l.count);
		return ret;
	}
	if (l.count > 1)
		qsort(l.v, l.count, sizeof(*l.v), name_cmp);
	*list_r = l.v;
	*count_r = l.count;
	return 0;
}

void dovi_mailbox_names_free(struct dovi_mailbox_name *list, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(list[i].name);
		free(list[i].storage_name);
	}
	free(list);
}

/* ---- building the message list ---------------------------------------- */

static void msg_list_free(struct msg_list *ml)
{
	for (unsigned i = 0; i < ml->kw_count; i++)
		free(ml->kw_names[i]);
	free(ml->kw_names);
	free(ml->kw_ptrs);
	free(ml->msgs);
	memset(ml, 0, sizeof(*ml));
}

static int copy_keywords(const struct dovi_index *idx, struct msg_list *ml,
			 struct dbox_err *err)
{
	unsigned n = dovi_index_keyword_count(idx);

	ml->kw_names = calloc(n > 0 ? n : 1, sizeof(char *));
	if (ml->kw_names == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		ml->kw_names[i] = strdup(dovi_index_keyword(idx, i));
		if (ml->kw_names[i] == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		ml->kw_count++;
	}
	return 0;
}

/* Keyword pointers of every message, in one array. */
static int fill_keywords(const struct dovi_index *idx, struct msg_list *ml,
			 const uint32_t *pos, struct dbox_err *err)
{
	size_t total = 0, k = 0;

	for (size_t i = 0; i < ml->count; i++) {
		for (unsigned kw = 0; kw < ml->kw_count; kw++)
			total += dovi_index_has_keyword(idx, pos[i], kw);
	}
	ml->kw_ptrs = calloc(total > 0 ? total : 1, sizeof(char *));
	if (ml->kw_ptrs == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ml->count; i++) {
		ml->msgs[i].keywords = ml->kw_ptrs + k;
		for (unsigned kw = 0; kw < ml->kw_count; kw++) {
			if (dovi_index_has_keyword(idx, pos[i], kw))
				ml->kw_ptrs[k++] = ml->kw_names[kw];
		}
		ml->msgs[i].keyword_count =
			(unsigned)(ml->kw_ptrs + k - ml->msgs[i].keywords);
	}
	return 0;
}

/* mdbox: fills the map fields of m; false if the message must be hidden
 * (no usable map_uid, or the map lacks it: *missing_r). */
static bool join_map(const struct dovi_index *idx, uint32_t pos,
		     const struct dovi_index *map, struct dovi_message *m,
		     bool *missing_r)
{
	uint32_t mpos;
	size_t len;
	const uint8_t *g = dovi_index_ext_record(idx,
						 dovi_index_ext(idx, "guid"),
						 pos, &len);

	*missing_r = false;
	if (g != NULL && len >= 16) {
		memcpy(m->guid, g, 16);
		for (unsigned i = 0; i < 16; i++)
			m->have_guid |= g[i] != 0;
	}
	m->have_map_uid = dovi_index_mdbox_rec(idx, pos, &m->map_uid,
					       &m->save_date);
	/* map_uid 0 means the record is broken (Dovecot: rebuild) */
	if (!m->have_map_uid || m->map_uid == 0)
		return false;
	if (!dovi_index_lookup(map, m->map_uid, &mpos)) {
		*missing_r = true;
		return false;
	}
	m->in_map = dovi_index_map_rec(map, mpos, &m->file_id, &m->offset,
				       &m->size, &m->have_refcount,
				       &m->refcount);
	/* file_id 0 in a map record is corruption: unreadable */
	return m->in_map && m->file_id != 0;
}

static int build_list(const struct dovi_index *idx,
		      const struct dovi_index *map, struct msg_list *ml,
		      struct dbox_err *err)
{
	uint32_t n = dovi_index_count(idx);
	uint32_t *pos = calloc(n > 0 ? n : 1, sizeof(uint32_t));
	int ret;

	memset(ml, 0, sizeof(*ml));
	ml->msgs = calloc(n > 0 ? n : 1, sizeof(*ml->msgs));
	if (pos == NULL || ml->msgs == NULL) {
		free(pos);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		struct dovi_message *m = &ml->msgs[ml->count];
		bool missing;

		m->uid = dovi_index_uid(idx, i);
		m->flags = dovi_index_flags(idx, i);
		if (map != NULL && !join_map(idx, i, map, m, &missing)) {
			ml->missing += missing;
			ml->hidden++;
			memset(m, 0, sizeof(*m));
			continue;
		}
		pos[ml->count++] = i;
	}
	ret = copy_keywords(idx, ml, err);
	if (ret == 0)
		ret = fill_keywords(idx, ml, pos, err);
	free(pos);
	return ret;
}

/* ---- change detection ------------------------------------------------- */

static bool msg_equal(const struct dovi_message *a,
		      const struct dovi_message *b)
{
	if (a->uid != b->uid || a->flags != b->flags ||
	    a->keyword_count != b->keyword_count ||
	    a->have_map_uid != b->have_map_uid || a->map_uid != b->map_uid ||
	    a->save_date != b->save_date || a->in_map != b->in_map ||
	    a->file_id != b->file_id || a->offset != b->offset ||
	    a->size != b->size || a->have_refcount != b->have_refcount ||
	    a->refcount != b->refcount || a->have_guid != b->have_guid ||
	    memcmp(a->guid, b->guid, sizeof(a->guid)) != 0)
		return false;
	for (unsigned k = 0; k < a->keyword_count; k++) {
		if (strcmp(a->keywords[k], b->keywords[k]) != 0)
			return false;
	}
	return true;
}

static bool list_changed(const struct dovi_mailbox *box,
			 const struct msg_list *ml)
{
	if (box->count != ml->count || box->kw_count != ml->kw_count ||
	    box->hidden != ml->hidden)
		return true;
	for (unsigned i = 0; i < ml->kw_count; i++) {
		if (strcmp(box->kw_names[i], ml->kw_names[i]) != 0)
			return true;
	}
	for (size_t i = 0; i < ml->count; i++) {
		if (!msg_equal(&box->msgs[i], &ml->msgs[i]))
			return true;
	}
	return false;
}

/* ---- mailboxes -------------------------------------------------------- */

/* Refuses names that would leave ROOT/mailboxes or that Dovecot refuses
 * (dbox-format.md 1.5). */
static bool storage_name_ok(const char *s)
{
	const char *p = s;

	if (*s == '\0' || *s == '/' || *s == '~')
		return false;
	while (*p != '\0') {
		const char *e = strchr(p, '/');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.') ||
		    (len == strlen(MAILDIR_NAME) &&
		     strncmp(p, MAILDIR_NAME, len) == 0))
			return false;
		p += len + (e != NULL);
		if (e != NULL && *p == '\0')
			return false;   /* trailing '/' */
	}
	return true;
}

static int mailbox_alloc(struct dovi_store *store, const char *name,
			 const char *storage, struct dovi_mailbox **box_r,
			 struct dbox_err *err)
{
	struct dovi_mailbox *box;
	char dir[4096], index_dir[4096];
	struct stat st;

	if (!storage_name_ok(storage))
		return dbox_fail(err, -EINVAL, "invalid mailbox name: %s",
				 name);
	if (dbox_path(dir, sizeof(dir), "%s/mailboxes/%s/" MAILDIR_NAME,
		      store->root, storage) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "mailbox path too long");
	/* INDEX=: Dovecot's index of a mailbox is INDEX/mailboxes/NAME,
	 * without the dbox-Mails level (mailbox_list_get_path) */
	if (store->index_root == NULL)
		strcpy(index_dir, dir);
	else if (dbox_path(index_dir, sizeof(index_dir), "%s/mailboxes/%s",
			   store->index_root, storage) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "mailbox path too long");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return dbox_fail(err, -ENOENT, "no mailbox %s (%s)", name, dir);
	box = calloc(1, sizeof(*box));
	if (box == NULL || (box->name = strdup(name)) == NULL ||
	    (box->dir = strdup(dir)) == NULL ||
	    (box->index_dir = strdup(index_dir)) == NULL) {
		if (box != NULL) {
			free(box->name);
			free(box->dir);
		}
		free(box);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	box->store = store;
	*box_r = box;
	return 0;
}

static int mailbox_open_storage(struct dovi_store *store, const char *name,
				const char *storage,
				struct dovi_mailbox **box_r,
				struct dbox_err *err)
{
	struct dovi_mailbox *box;
	int ret = mailbox_alloc(store, name, storage, &box, err);

	if (ret < 0)
		return ret;
	ret = dovi_mailbox_refresh(box, NULL, err);
	if (ret < 0) {
		dovi_mailbox_free(box);
		return ret;
	}
	*box_r = box;
	return 0;
}

int dovi_mailbox_open(struct dovi_store *store, const char *name,
		      struct dovi_mailbox **box_r, struct dbox_err *err)
{
	char *storage;
	int ret = dovi_mutf7_encode(name, &storage);

	if (ret < 0)
		return dbox_fail(err, ret, "mailbox name is not UTF-8: %s",
				 name);
	ret = mailbox_open_storage(store, name, storage, box_r, err);
	free(storage);
	return ret;
}

int dovi_mailbox_open_storage_name(struct dovi_store *store,
				   const char *storage_name,
				   struct dovi_mailbox **box_r,
				   struct dbox_err *err)
{
	char *name = NULL;
	int ret = dovi_mutf7_decode(storage_name, &name);

	if (ret == -ENOMEM)
		return dbox_fail(err, ret, "out of memory");
	/* a name that isn't valid mUTF-7 is shown as it is on disk */
	ret = mailbox_open_storage(store, name != NULL ? name : storage_name,
				   storage_name, box_r, err);
	free(name);
	return ret;
}

void dovi_mailbox_free(struct dovi_mailbox *box)
{
	struct msg_list ml;

	if (box == NULL)
		return;
	ml.msgs = box->msgs;
	ml.kw_names = box->kw_names;
	ml.kw_count = box->kw_count;
	ml.kw_ptrs = box->kw_ptrs;
	msg_list_free(&ml);
	dovi_index_free(box->idx);
	free(box->name);
	free(box->dir);
	free(box->index_dir);
	free(box);
}

/* Returns 1 with box->idx up to date, 0 if the mailbox has no index
 * files yet, or -errno. */
static int index_refresh(struct dovi_mailbox *box, struct dbox_err *err)
{
	char prefix[4200];
	int ret;

	if (box->idx != NULL) {
		ret = dovi_index_refresh(box->idx, NULL, err);
		return ret < 0 ? ret : 1;
	}
	if (dbox_path(prefix, sizeof(prefix), "%s/dovecot.index",
		      box->index_dir) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "mailbox path too long");
	ret = dovi_index_open(prefix, &box->idx, err);
	/* Dovecot shows a mailbox without index files as empty (it would
	 * create a fresh index; dbox-format.md 4.5) */
	if (ret == -ENOENT)
		return 0;
	return ret < 0 ? ret : 1;
}

/* The mailbox's mdbox-hdr must name the map's uid_validity (5.2). */
static bool map_matches(const struct dovi_index *idx,
			const struct dovi_index *map)
{
	uint8_t b[4];
	struct dovi_header mh;
	int ext = dovi_index_ext(idx, "mdbox-hdr");
	uint32_t muv;

	if (ext < 0 || dovi_index_ext_header(idx, ext, 0, b, 4) < 4)
		return true;
	muv = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
		(uint32_t)b[3] << 24;
	dovi_index_header(map, &mh);
	/* 0: not written yet */
	return muv == 0 || muv == mh.uid_validity;
}

/* mdbox: map read after the mailbox; re-read once when it looks older
 * than the mailbox (a map_uid missing, another uid_validity). */
/* No map files yet (a store where nothing was ever saved): every message
 * a mailbox lists is missing from the map. */
static int build_without_map(struct dovi_mailbox *box, struct msg_list *ml,
			     struct dbox_err *err)
{
	memset(ml, 0, sizeof(*ml));
	ml->hidden = dovi_index_count(box->idx);
	ml->missing = ml->hidden;
	ml->msgs = calloc(1, sizeof(*ml->msgs));
	if (ml->msgs == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	return copy_keywords(box->idx, ml, err);
}

static int build_mdbox(struct dovi_mailbox *box, struct msg_list *ml,
		       struct dbox_err *err)
{
	struct dovi_store *store = box->store;
	int ret = map_refresh(store, err);

	if (ret == -ENOENT && store->map == NULL)
		return build_without_map(box, ml, err);
	for (unsigned attempt = 0; ret == 0; attempt++) {
		bool match = map_matches(box->idx, store->map);

		ret = match ? build_list(box->idx, store->map, ml, err) : 0;
		if (ret < 0 || (match && ml->missing == 0) || attempt == 1)
			break;
		msg_list_free(ml);
		ret = map_refresh(store, err);
	}
	if (ret == 0 && !map_matches(box->idx, store->map))
		ret = dbox_fail(err, -ESTALE, "%s: map_uid_validity differs "
				"from the map's uid_validity", box->name);
	return ret;
}

static void take_list(struct dovi_mailbox *box, struct msg_list *ml)
{
	struct msg_list old;

	old.msgs = box->msgs;
	old.kw_names = box->kw_names;
	old.kw_count = box->kw_count;
	old.kw_ptrs = box->kw_ptrs;
	msg_list_free(&old);
	box->msgs = ml->msgs;
	box->count = ml->count;
	box->hidden = ml->hidden;
	box->kw_names = ml->kw_names;
	box->kw_count = ml->kw_count;
	box->kw_ptrs = ml->kw_ptrs;
}

int dovi_mailbox_refresh(struct dovi_mailbox *box, bool *changed_r,
			 struct dbox_err *err)
{
	struct msg_list ml;
	struct dovi_header hdr;
	bool changed;
	int ret = index_refresh(box, err);

	memset(&ml, 0, sizeof(ml));
	memset(&hdr, 0, sizeof(hdr));
	if (ret > 0)
		ret = box->store->format == DOVI_MDBOX ?
			build_mdbox(box, &ml, err) :
			build_list(box->idx, NULL, &ml, err);
	if (ret < 0) {
		msg_list_free(&ml);
		return ret;
	}
	if (box->idx != NULL)
		dovi_index_header(box->idx, &hdr);
	changed = list_changed(box, &ml) ||
		hdr.uid_validity != box->uid_validity ||
		hdr.next_uid != box->next_uid;
	take_list(box, &ml);
	box->uid_validity = hdr.uid_validity;
	box->next_uid = hdr.next_uid;
	if (changed_r != NULL)
		*changed_r = changed;
	return 0;
}

const char *dovi_mailbox_name(const struct dovi_mailbox *box)
{
	return box->name;
}

const char *dovi_mailbox_dir(const struct dovi_mailbox *box)
{
	return box->dir;
}

const char *dovi_mailbox_index_dir(const struct dovi_mailbox *box)
{
	return box->index_dir;
}

const struct dovi_index *dovi_mailbox_index(const struct dovi_mailbox *box)
{
	return box->idx;
}

uint32_t dovi_mailbox_uid_validity(const struct dovi_mailbox *box)
{
	return box->uid_validity;
}

uint32_t dovi_mailbox_next_uid(const struct dovi_mailbox *box)
{
	return box->next_uid;
}

bool dovi_mailbox_guid(const struct dovi_mailbox *box, uint8_t guid_r[16])
{
	bool any = false;
	int ext;

	if (box->idx == NULL)
		return false;
	ext = dovi_index_ext(box->idx, box->store->format == DOVI_MDBOX ?
			     "mdbox-hdr" : "dbox-hdr");
	if (ext < 0 || dovi_index_ext_header(box->idx, ext, 4, guid_r, 16) < 16)
		return false;
	for (unsigned i = 0; i < 16; i++)
		any |= guid_r[i] != 0;
	return any;
}

unsigned dovi_mailbox_keyword_count(const struct dovi_mailbox *box)
{
	return box->kw_count;
}

const char *dovi_mailbox_keyword(const struct dovi_mailbox *box, unsigned i)
{
	return i < box->kw_count ? box->kw_names[i] : NULL;
}

size_t dovi_mailbox_count(const struct dovi_mailbox *box)
{
	return box->count;
}

const struct dovi_message *
dovi_mailbox_messages(const struct dovi_mailbox *box)
{
	return box->msgs;
}

size_t dovi_mailbox_hidden(const struct dovi_mailbox *box)
{
	return box->hidden;
}

int dovi_mailbox_sdbox_path(const struct dovi_mailbox *box, uint32_t uid,
			    char *buf, size_t len)
{
	return dbox_path(buf, len, "%s/u.%u", box->dir, uid);
}
