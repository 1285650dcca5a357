/* import.c - dboxctl import: maildir folders and mbox files, one
 * transaction for the whole invocation. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dboxctl.h"
#include "mbox.h"

static const char import_help[] =
"Usage: dboxctl import STORE MAILBOX SOURCE...\n"
"\n"
"Add every message of each SOURCE to MAILBOX (created if missing), all in\n"
"one transaction: when the command fails or is killed, none of them is in\n"
"the store.  A SOURCE is a maildir folder (its cur/ and new/; flags and\n"
"keywords from the file names and its dovecot-keywords file, received\n"
"time from the file's mtime, the maildir base name kept) or an mbox file\n"
"(mboxrd \">From \" unescaping; received time from the From_ line; flags\n"
"from Status:/X-Status:).  Messages are stored byte for byte.\n";

struct item {
	char *path;
	char *base;
	uint32_t flags, kw_letters;
	bool in_new;
	bool new_info;        /* named BASE:2,FLAGS in new/ */
	struct timespec mtime;
	int source;           /* index into the sources' keyword maps */
};

struct import {
	struct dbox_store *store;
	struct dbox_mailbox box;
	struct dbox_save_txn *txn;
	struct item *items;
	size_t count, cap;
	/* per source: maildir keyword letter -> our keyword index (-1) */
	int (*kwmap)[DBOX_MAX_KEYWORDS];
	int sources;
	void *bases;          /* tsearch tree of base names in this import */
	struct ctl_progress progress;
	unsigned long imported;
};

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
	it->source = source;
	im->count++;
	return 0;
}

static int scan_maildir_sub(struct import *im, const char *dir,
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
	}
	closedir(d);
	return ret;
}

/* dovecot-keywords: "<index> <name>" per line; index = letter - 'a' */
static int load_keywords(struct import *im, const char *dir, int source)
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* A maildir name is kept unless it is already used in the mailbox or in
 * this import; then the message gets a name derived from its data. */
static const char *usable_base(struct import *im, const char *base)
{
	if (base == NULL || strlen(base) > DBOX_NAME_MAX ||
	    strchr(base, '\n') != NULL)
		return NULL;
	if (tfind(base, &im->bases, cmp_str) != NULL)
		return NULL;
	if (dbox_msg_lookup_base(im->store, im->box.id, base, NULL, NULL) !=
	    -ENOENT)
		return NULL;
	tsearch(base, &im->bases, cmp_str);
	return base;
}

static int import_item(struct import *im, const struct item *it)
{
	struct dbox_save_opts o = {
		.mailbox_id = im->box.id,
		.received = it->mtime.tv_sec,
		.received_ns = it->mtime.tv_nsec,
		.base = usable_base(im, it->base),
		.flags = it->flags,
		.keywords = map_keywords(im, it),
		.in_new = it->in_new,
		.new_info = it->new_info,
	};
	struct dbox_err err = { "" };
	int fd = open(it->path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return ctl_error("%s: %s", it->path, strerror(errno));
	ret = dbox_save_add_fd(im->txn, fd, &o, &err);
	close(fd);
	if (ret < 0)
		return ctl_error("%s: %s", it->path, err.msg);
	im->imported++;
	ctl_progress_step(&im->progress, 1);
	return 0;
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return strcmp(x->base, y->base);
}

/* ------------------------------------------------------------------ mbox */

/* Writes a piece of the body; an error is printed and stops the import. */
static int mbox_save_write(void *ctx, const char *p, size_t n)
{
	struct import *im = ctx;
	struct dbox_err err = { "" };

	if (dbox_save_write(im->txn, p, n, &err) < 0)
		return -ctl_error("%s", err.msg);
	return 0;
}

/* Writes the body with one '>' removed from every ">...>From " line. */
static int mbox_write_body(struct import *im, const struct mbox_msg *m)
{
	return mbox_unescape(m, mbox_save_write, im) < 0 ? 1 : 0;
}

static int import_mbox(struct import *im, const char *path)
{
	struct dbox_err err = { "" };
	struct mbox_msg m;
	struct stat st;
	size_t pos = 0;
	char *data;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return ctl_error("%s: %s", path, strerror(errno));
	if (st.st_size == 0) {
		close(fd);
		return 0;
	}
	data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (data == MAP_FAILED)
		return ctl_error("%s: %s", path, strerror(errno));
	if ((size_t)st.st_size < 5 || memcmp(data, "From ", 5) != 0)
		ret = ctl_error("%s: not an mbox file (no From_ line at its "
				"start)", path);
	while (ret == 0 && mbox_next(data, (size_t)st.st_size, &pos, &m)) {
		struct dbox_save_opts o = {
			.mailbox_id = im->box.id,
			.received = mbox_date(&m, st.st_mtime),
			.flags = mbox_flags(&m),
		};

		ret = dbox_save_msg_begin(im->txn, &o, &err) < 0 ?
			ctl_error("%s: %s", path, err.msg) : 0;
		if (ret == 0)
			ret = mbox_write_body(im, &m);
		if (ret == 0 && dbox_save_msg_finish(im->txn, &err) < 0)
			ret = ctl_error("%s: %s", path, err.msg);
		if (ret == 0) {
			im->imported++;
			ctl_progress_step(&im->progress, m.len);
		}
	}
	munmap(data, (size_t)st.st_size);
	return ret;
}

/* ------------------------------------------------------------------ main */

static bool is_subdir(const char *dir, const char *name, const char *sub)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s%s%s", dir, name,
		 sub[0] != '\0' ? "/" : "", sub);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A directory is a maildir if it has cur/ or new/ (a directory such as
 * /etc is refused, not imported as "0 messages").  Maildir++ subfolders
 * (.Name with cur/) are other mailboxes: they are not imported with this
 * one, and the user is told which were left out. */
static int check_maildir(const char *dir)
{
	struct dirent *e;
	unsigned int skipped = 0;
	DIR *d;

	if (!is_subdir(dir, "cur", "") && !is_subdir(dir, "new", ""))
		return ctl_error("%s: not a maildir (no cur/ or new/) and not "
				 "an mbox file", dir);
	d = opendir(dir);
	if (d == NULL)
		return ctl_error("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 ||
		    !is_subdir(dir, e->d_name, "cur"))
			continue;
		if (skipped++ < 5)
			fprintf(stderr, "dboxctl: %s/%s: a Maildir++ subfolder,"
				" not imported into this mailbox (import it "
				"into its own)\n", dir, e->d_name);
	}
	closedir(d);
	if (skipped > 5)
		fprintf(stderr, "dboxctl: %s: %u Maildir++ subfolders not "
			"imported in all\n", dir, skipped);
	return 0;
}

static int collect(struct import *im, char **sources, int n,
		   uint64_t *mbox_bytes)
{
	for (int i = 0; i < n; i++) {
		struct stat st;
		int ret;

		if (stat(sources[i], &st) < 0)
			return ctl_error("%s: %s", sources[i], strerror(errno));
		if (S_ISREG(st.st_mode)) {
			*mbox_bytes += (uint64_t)st.st_size;
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			return ctl_error("%s: neither a maildir nor an mbox "
					 "file", sources[i]);
		ret = load_keywords(im, sources[i], i);
		if (ret == 0)
			ret = scan_maildir_sub(im, sources[i], "cur", i);
		if (ret == 0)
			ret = scan_maildir_sub(im, sources[i], "new", i);
		if (ret < 0)
			return ctl_error("%s: %s", sources[i], strerror(-ret));
		if (ret > 0)
			return ret;
	}
	return 0;
}

static bool starts_with_from(const char *path)
{
	char head[5];
	FILE *f = fopen(path, "re");
	bool ok = f != NULL && fread(head, 1, 5, f) == 5 &&
		memcmp(head, "From ", 5) == 0;

	if (f != NULL)
		fclose(f);
	return ok;
}

/* Every source is checked before the store is touched, so that bad
 * input leaves no trace (not even the new mailbox). */
static int check_sources(char **sources, int n)
{
	for (int i = 0; i < n; i++) {
		struct stat st;
		int ret = 0;

		if (stat(sources[i], &st) < 0)
			return ctl_error("%s: %s", sources[i], strerror(errno));
		if (S_ISDIR(st.st_mode))
			ret = check_maildir(sources[i]);
		else if (!S_ISREG(st.st_mode))
			ret = ctl_error("%s: neither a maildir nor an mbox "
					"file", sources[i]);
		else if (st.st_size > 0 && !starts_with_from(sources[i]))
			ret = ctl_error("%s: not an mbox file (no From_ line "
					"at its start) and not a maildir",
					sources[i]);
		if (ret != 0)
			return ret;
	}
	return 0;
}

static void free_nothing(void *p)
{
	(void)p;  /* the tree's keys are the items' own base strings */
}

static void import_free(struct import *im)
{
	tdestroy(im->bases, free_nothing);
	for (size_t i = 0; i < im->count; i++) {
		free(im->items[i].path);
		free(im->items[i].base);
	}
	free(im->items);
	free(im->kwmap);
}

int cmd_import(int argc, char **argv)
{
	struct import im = { 0 };
	struct dbox_err err = { "" };
	uint64_t mbox_bytes = 0;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(import_help, stdout);
			return 0;
		}
	}
	if (argc < 4) {
		fputs(import_help, stderr);
		return 2;
	}
	if (!dbox_mailbox_name_valid(argv[2]))
		return ctl_error("%s: invalid mailbox name", argv[2]);
	if (check_sources(argv + 3, argc - 3) != 0)
		return 1;
	if (ctl_open(argv[1], false, &im.store) != 0)
		return 1;
	im.sources = argc - 3;
	im.kwmap = calloc((size_t)im.sources, sizeof(*im.kwmap));
	ret = im.kwmap == NULL ? ctl_error("out of memory") :
		ctl_mailbox(im.store, argv[2], true, &im.box);
	if (ret == 0)
		ret = collect(&im, argv + 3, im.sources, &mbox_bytes);
	if (ret == 0 && im.count > 0)
		qsort(im.items, im.count, sizeof(*im.items), cmp_item);
	if (ret == 0 && dbox_save_begin(im.store, &im.txn, &err) < 0)
		ret = ctl_error("%s", err.msg);
	ctl_progress_init(&im.progress, "importing", im.count + mbox_bytes);
	for (size_t i = 0; ret == 0 && i < im.count; i++)
		ret = import_item(&im, &im.items[i]);
	for (int i = 0; ret == 0 && i < im.sources; i++) {
		struct stat st;

		if (stat(argv[3 + i], &st) == 0 && S_ISREG(st.st_mode))
			ret = import_mbox(&im, argv[3 + i]);
	}
	ctl_progress_end(&im.progress);
	if (ret == 0 && dbox_save_commit(im.txn, NULL, &err) < 0)
		ret = ctl_error("commit: %s", err.msg);
	else if (ret != 0 && im.txn != NULL)
		dbox_save_rollback(im.txn);
	if (ret == 0)
		printf("%lu messages imported into %s\n", im.imported, argv[2]);
	import_free(&im);
	dbox_store_close(im.store);
	return ret;
}
