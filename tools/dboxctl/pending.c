/* pending.c - a mount's pending/ files as kept copies (see pending.h). */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "pending.h"

/* where the mount keeps them, in the store's control directory */
#define PENDING_DIR "pending"

struct kept_row {
	int64_t box;
	uint32_t uid;
};

static struct {
	struct kept_row *v;
	size_t n, cap;
} listed;

static void listed_free(void)
{
	free(listed.v);
	listed.v = NULL;
	listed.n = listed.cap = 0;
}

/* "BOX.UID.NAME", as the mount names them (flush_spool_done) */
static bool parse(const char *s, struct kept_row *k)
{
	const char *name;
	int64_t box;
	uint32_t uid;

	if (!dbox_store_kept_name(s, &box, &uid, &name))
		return false;
	*k = (struct kept_row){ box, uid };
	return true;
}

static int cmp(const void *a, const void *b)
{
	const struct kept_row *x = a, *y = b;

	if (x->box != y->box)
		return x->box < y->box ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static bool add(const struct kept_row *k)
{
	if (listed.n == listed.cap) {
		size_t cap = listed.cap ? listed.cap * 2 : 64;
		struct kept_row *v = realloc(listed.v, cap * sizeof(*v));

		if (v == NULL)
			return false;
		listed.v = v;
		listed.cap = cap;
	}
	listed.v[listed.n++] = *k;
	return true;
}

static void pending_open(void *ctx, const char *ctl_dir)
{
	static bool registered;
	char path[PATH_MAX];
	struct dirent *e;
	struct kept_row k;
	DIR *d;

	(void)ctx;
	if (!registered)
		registered = atexit(listed_free) == 0;
	listed_free();
	if (snprintf(path, sizeof(path), "%s/" PENDING_DIR, ctl_dir) >=
	    (int)sizeof(path) || (d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (parse(e->d_name, &k) && !add(&k))
			break;
	}
	closedir(d);
	if (listed.n > 1)
		qsort(listed.v, listed.n, sizeof(*listed.v), cmp);
}

static bool pending_kept(void *ctx, int64_t box, uint32_t uid)
{
	struct kept_row k = { box, uid };

	(void)ctx;
	return listed.n > 0 && bsearch(&k, listed.v, listed.n,
				       sizeof(k), cmp) != NULL;
}

void pending_open_opts(struct dbox_open_opts *o)
{
	o->kept = pending_kept;
	o->kept_open = pending_open;
	o->kept_ctx = NULL;
}
