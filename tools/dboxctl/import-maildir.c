/* import-maildir.c - dboxctl import of maildir folders: files taken in
 * batches, sorted by received time and saved; keywords mapped by name;
 * maildir names kept unless already used. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dbox/nameset.h"
#include "dboxctl.h"
#include "dovecot/mutf7.h"
#include "import.h"
#include "mbox.h"

/* Maildir files taken, sorted and saved at once: the uid order follows
 * the received time within a batch, and directory order between them. */
#define BATCH 16384

static int item_add(struct import *im, const char *path, const char *name,
		    bool in_new, const struct stat *st, int source)
{
	struct item *it;
	const char *colon = strchr(name, ':');

	if (im->count == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 256;
		struct item *p = realloc(im->items, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		im->items = p;
		im->cap = cap;
	}
	it = &im->items[im->count];
	memset(it, 0, sizeof(*it));
	it->path = strdup(path);
	it->base = colon ? strndup(name, (size_t)(colon - name)) : strdup(name);
	if (it->path == NULL || it->base == NULL)
		return -ENOMEM;
	if (colon != NULL && strncmp(colon, ":2,", 3) == 0)
		dbox_maildir_info_parse(colon + 3, false, &it->flags,
					&it->kw_letters);
	it->in_new = in_new;
	it->new_info = in_new && colon != NULL &&
		strncmp(colon, ":2,", 3) == 0;
	it->mtime = st->st_mtim;
	it->size = (uint64_t)st->st_size;
	it->source = source;
	im->count++;
	return 0;
}
int import_scan_maildir_sub(struct import *im, const char *dir,
			    const char *sub, int source)
{
	char path[4096];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, e->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		ret = item_add(im, path, e->d_name, strcmp(sub, "new") == 0,
			       &st, source);
		if (ret == 0 && im->count == BATCH)
			ret = import_flush_batch(im);
	}
	closedir(d);
	return ret;
}

/* dovecot-keywords: "<index> <name>" per line; index = letter - 'a' */
int import_load_keywords(struct import *im, const char *dir, int source)
{
	char path[4096], line[512];
	struct dbox_err err = { "" };
	FILE *f;

	for (int i = 0; i < DBOX_MAX_KEYWORDS; i++)
		im->kwmap[source][i] = -1;
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *name, *nl = strchr(line, '\n');
		long idx = strtol(line, &name, 10);
		int ours;

		if (nl != NULL)
			*nl = '\0';
		if (name == line || *name != ' ' || idx < 0 ||
		    idx >= DBOX_MAX_KEYWORDS || name[1] == '\0')
			continue;
		ours = dbox_mailbox_keyword_index(im->store, im->box.id,
						  name + 1, &err);
		if (ours < 0) {
			fclose(f);
			return ctl_error("keyword %s: %s", name + 1, err.msg);
		}
		im->kwmap[source][idx] = ours;
	}
	fclose(f);
	return 0;
}

static uint32_t map_keywords(const struct import *im, const struct item *it)
{
	uint32_t kw = 0;

	for (int i = 0; i < DBOX_MAX_KEYWORDS; i++) {
		int ours = im->kwmap[it->source][i];

		if ((it->kw_letters & (1u << i)) && ours >= 0)
			kw |= 1u << ours;
	}
	return kw;
}

/* A maildir name is kept unless it is already used in the mailbox or in
 * this import; then the message gets a name derived from its data
 * (*base_r = NULL).  1: the name set failed (said so), the import stops. */
static int usable_base(struct import *im, const char *base,
		       const char **base_r)
{
	struct dbox_err err = { "" };
	int ret = 0;

	*base_r = NULL;
	if (base == NULL || strlen(base) > DBOX_NAME_MAX ||
	    strchr(base, '\n') != NULL)
		return 0;
	if (dbox_msg_lookup_base(im->store, im->box.id, base, NULL, NULL) !=
	    -ENOENT)
		return 0;
	if (im->bases == NULL)
		ret = dbox_nameset_open(&im->bases, &err);
	if (ret == 0)
		ret = dbox_nameset_add(im->bases, base, &err);
	if (ret < 0) {
		ctl_error("%s", err.msg);
		return 1;
	}
	if (ret == 1)
		*base_r = base;
	return 0;
}

static int import_item(struct import *im, const struct item *it)
{
	struct dbox_save_opts o = {
		.mailbox_id = im->box.id,
		.received = it->mtime.tv_sec,
		.received_ns = it->mtime.tv_nsec,
		.flags = it->flags,
		.keywords = map_keywords(im, it),
		.in_new = it->in_new,
		.new_info = it->new_info,
		.size_hint = it->size,
	};
	struct dbox_err err = { "" };
	int fd, ret;

	if (import_interrupted)
		return 1;
	if (usable_base(im, it->base, &o.base) != 0)
		return 1;
	fd = open(it->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ctl_error("%s: %s", it->path, strerror(errno));
	ret = dbox_save_add_fd(im->txn, fd, &o, &err);
	close(fd);
	if (ret < 0)
		return ctl_error("%s: %s", it->path, err.msg);
	im->imported++;
	ctl_progress_step(&im->progress, 1, o.size_hint);
	return 0;
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return strcmp(x->base, y->base);
}

void import_items_free(struct import *im)
{
	for (size_t i = 0; i < im->count; i++) {
		free(im->items[i].path);
		free(im->items[i].base);
	}
	im->count = 0;
}

/* Saves the files gathered so far, in received order, and forgets them. */
int import_flush_batch(struct import *im)
{
	int ret = 0;

	if (im->count > 0)
		qsort(im->items, im->count, sizeof(*im->items), cmp_item);
	for (size_t i = 0; ret == 0 && i < im->count; i++)
		ret = import_item(im, &im->items[i]);
	import_items_free(im);
	return ret;
}

/* ------------------------------------------------------------------ mbox */
