/* import.c - dboxctl import: maildir folders and mbox files, one
 * transaction for the whole invocation.
 *
 * Memory does not grow with the number of messages (the transaction
 * spools, see dbox/save.h): maildir files are taken in batches sorted
 * among themselves, the mbox mapping is dropped behind the reader, and
 * the maildir names used are kept on disk (dbox/nameset.h). */
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
#include "mbox.h"

static const char import_help[] =
"Usage: dboxctl import [--recursive [--atomic]] STORE MAILBOX SOURCE...\n"
"\n"
"Add every message of each SOURCE to MAILBOX (created if missing), all in\n"
"one transaction: when the command fails or is killed, none of them is in\n"
"the store.  A SOURCE is a maildir folder (its cur/ and new/; flags and\n"
"keywords from the file names and its dovecot-keywords file, received\n"
"time from the file's mtime, the maildir base name kept) or an mbox file\n"
"(mboxrd \">From \" unescaping; received time from the From_ line; flags\n"
"from Status:/X-Status:).  Messages are stored byte for byte.\n"
"\n"
"With --recursive a SOURCE may be a tree: a Maildir++ root goes into\n"
"MAILBOX and each subfolder .A.B into MAILBOX/A/B (names decoded from\n"
"modified UTF-7); a directory of mbox files puts each file NAME into\n"
"MAILBOX/NAME and each subdirectory into a level below.  Into INBOX,\n"
"the subfolders become top-level mailboxes.  Each mailbox is then its\n"
"own transaction (a failure names the mailboxes already imported), or\n"
"with --atomic the whole tree is one.\n"
"\n"
"Any number of messages fits in bounded memory.  SIGINT or SIGTERM stops\n"
"the import and leaves the store as it was.\n";

/* Maildir files taken, sorted and saved at once: the uid order follows
 * the received time within a batch, and directory order between them. */
#define BATCH 16384

static volatile sig_atomic_t interrupted;
static bool opt_recursive, opt_atomic;

struct item {
	char *path;
	char *base;
	uint32_t flags, kw_letters;
	bool in_new;
	bool new_info;        /* named BASE:2,FLAGS in new/ */
	struct timespec mtime;
	uint64_t size;
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
	/* the maildir base names used by this import (opened at the first
	 * one): a name seen before gets a derived one */
	struct dbox_nameset *bases;
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
	it->size = (uint64_t)st->st_size;
	it->source = source;
	im->count++;
	return 0;
}

static int flush_batch(struct import *im);

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
		if (ret == 0 && im->count == BATCH)
			ret = flush_batch(im);
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

	if (interrupted)
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

static void items_free(struct import *im)
{
	for (size_t i = 0; i < im->count; i++) {
		free(im->items[i].path);
		free(im->items[i].base);
	}
	im->count = 0;
}

/* Saves the files gathered so far, in received order, and forgets them. */
static int flush_batch(struct import *im)
{
	int ret = 0;

	if (im->count > 0)
		qsort(im->items, im->count, sizeof(*im->items), cmp_item);
	for (size_t i = 0; ret == 0 && i < im->count; i++)
		ret = import_item(im, &im->items[i]);
	items_free(im);
	return ret;
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

/* Pages of the mapping already read count in the RSS until unmapped:
 * they are given back every few MiB (the file stays in the page cache). */
static void drop_behind(char *data, size_t pos, size_t *dropped)
{
	const size_t step = 8u << 20;
	size_t upto = pos & ~(step - 1);

	if (upto > *dropped) {
		madvise(data + *dropped, upto - *dropped, MADV_DONTNEED);
		*dropped = upto;
	}
}

static int import_mbox(struct import *im, const char *path)
{
	struct dbox_err err = { "" };
	struct mbox_msg m;
	struct stat st;
	size_t pos = 0, dropped = 0;
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
	madvise(data, (size_t)st.st_size, MADV_SEQUENTIAL);
	if ((size_t)st.st_size < 5 || memcmp(data, "From ", 5) != 0)
		ret = ctl_error("%s: not an mbox file (no From_ line at its "
				"start)", path);
	while (ret == 0 && mbox_next(data, (size_t)st.st_size, &pos, &m)) {
		if (interrupted) {
			ret = 1;
			break;
		}
		struct dbox_save_opts o = {
			.mailbox_id = im->box.id,
			.received = mbox_date(&m, st.st_mtime),
			.flags = mbox_flags(&m),
			/* at most: unescaping only shortens it; a small
			 * message is then written with one write */
			.size_hint = m.len,
		};

		ret = dbox_save_msg_begin(im->txn, &o, &err) < 0 ?
			ctl_error("%s: %s", path, err.msg) : 0;
		if (ret == 0)
			ret = mbox_write_body(im, &m);
		if (ret == 0 && dbox_save_msg_finish(im->txn, &err) < 0)
			ret = ctl_error("%s: %s", path, err.msg);
		if (ret == 0) {
			im->imported++;
			ctl_progress_step(&im->progress, 1, m.len);
			drop_behind(data, pos, &dropped);
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

/* Saves the maildir sources (the mbox files come after them). */
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
	return flush_batch(im);
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

static void import_free(struct import *im)
{
	items_free(im);
	free(im->items);
	dbox_nameset_close(im->bases);
	free(im->kwmap);
}

static void on_signal(int sig)
{
	interrupted = sig;
}

/* SIGINT and SIGTERM end the import at the next message, rolled back */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal,
				.sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int report_interrupt(void)
{
	ctl_error("interrupted: nothing imported");
	return 128 + interrupted;
}

static uint64_t dir_bytes(const char *dir, const char *sub)
{
	char path[4096];
	struct dirent *e;
	struct stat st;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' &&
		    fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

/* The bytes to import, for the progress display's ETA */
static uint64_t source_bytes(char **sources, int n)
{
	uint64_t sum = 0;

	for (int i = 0; i < n; i++) {
		struct stat st;

		if (stat(sources[i], &st) < 0)
			continue;
		if (S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
		else
			sum += dir_bytes(sources[i], "cur") +
				dir_bytes(sources[i], "new");
	}
	return sum;
}

static int import_run(struct import *im, char **argv, int argc, bool *made)
{
	struct dbox_err err = { "" };
	uint64_t mbox_bytes = 0;
	int ret;

	im->sources = argc - 3;
	im->kwmap = calloc((size_t)im->sources, sizeof(*im->kwmap));
	if (im->kwmap == NULL)
		return ctl_error("out of memory");
	*made = dbox_mailbox_lookup(im->store, argv[2], &im->box, &err) ==
		-ENOENT;
	ret = ctl_mailbox(im->store, argv[2], true, &im->box);
	if (ret == 0 && dbox_save_begin(im->store, &im->txn, &err) < 0)
		ret = ctl_error("%s", err.msg);
	ctl_progress_init(&im->progress, "importing", 0,
			  source_bytes(argv + 3, im->sources));
	if (ret == 0)
		ret = collect(im, argv + 3, im->sources, &mbox_bytes);
	for (int i = 0; ret == 0 && i < im->sources; i++) {
		struct stat st;

		if (stat(argv[3 + i], &st) == 0 && S_ISREG(st.st_mode))
			ret = import_mbox(im, argv[3 + i]);
	}
	ctl_progress_end(&im->progress);
	if (ret == 0 && dbox_save_commit(im->txn, NULL, &err) < 0)
		ret = ctl_error("commit: %s", err.msg);
	else if (ret != 0 && im->txn != NULL)
		dbox_save_rollback(im->txn);
	return ret;
}

/* ------------------------------------------------------------- recursive */

/* One mailbox of a --recursive import and the folder or file it gets */
struct job {
	char *mailbox;
	char *path;
	bool mbox;
	bool made;            /* created by this import */
};

struct jobs {
	struct job *v;
	size_t n, cap;
};

static int jobs_add(struct jobs *js, const char *mailbox, const char *path,
		    bool mbox)
{
	struct job *j;

	if (!dbox_mailbox_name_valid(mailbox))
		return ctl_error("%s: invalid mailbox name (for %s)", mailbox,
				 path);
	if (js->n == js->cap) {
		size_t cap = js->cap ? js->cap * 2 : 16;
		struct job *p = realloc(js->v, cap * sizeof(*p));

		if (p == NULL)
			return ctl_error("out of memory");
		js->v = p;
		js->cap = cap;
	}
	j = &js->v[js->n];
	*j = (struct job){ .mailbox = strdup(mailbox), .path = strdup(path),
			   .mbox = mbox };
	js->n++;
	if (j->mailbox == NULL || j->path == NULL)
		return ctl_error("out of memory");
	return 0;
}

static void jobs_free(struct jobs *js)
{
	for (size_t i = 0; i < js->n; i++) {
		free(js->v[i].mailbox);
		free(js->v[i].path);
	}
	free(js->v);
}

/* parent/sub; below INBOX at the top level, as Dovecot's Maildir++
 * layout has it (INBOX's subfolders are the other mailboxes) */
static void child_name(const char *parent, const char *sub, char *out,
		       size_t size)
{
	if (strcmp(parent, "INBOX") == 0)
		snprintf(out, size, "%s", sub);
	else
		snprintf(out, size, "%s/%s", parent, sub);
}

/* Maildir++ ".A.B" (without the dot) -> "A/B" in UTF-8; a name that is
 * not valid modified UTF-7 is kept as it is */
static char *maildirpp_name(const char *name)
{
	char *raw = strdup(name), *utf8 = NULL;

	if (raw == NULL)
		return NULL;
	for (char *p = raw; *p != '\0'; p++) {
		if (*p == '.')
			*p = '/';
	}
	if (dovi_mutf7_decode(raw, &utf8) < 0)
		return raw;
	free(raw);
	return utf8;
}

static int tree_source(struct jobs *js, const char *mailbox,
		       const char *path, int depth);

static int tree_maildir(struct jobs *js, const char *mailbox,
			const char *dir)
{
	char child[sizeof(((struct dbox_mailbox *)0)->name) + 64];
	char path[4096];
	struct dirent **e;
	int n, ret = jobs_add(js, mailbox, dir, false);

	n = ret == 0 ? scandir(dir, &e, NULL, alphasort) : 0;
	if (n < 0)
		return ctl_error("%s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *name = e[i]->d_name;
		char *dec;

		if (ret == 0 && name[0] == '.' && name[1] != '\0' &&
		    strcmp(name, "..") != 0 && is_subdir(dir, name, "cur")) {
			dec = maildirpp_name(name + 1);
			if (dec == NULL)
				ret = ctl_error("out of memory");
			else {
				child_name(mailbox, dec, child, sizeof(child));
				snprintf(path, sizeof(path), "%s/%s", dir,
					 name);
				ret = jobs_add(js, child, path, false);
			}
			free(dec);
		}
		free(e[i]);
	}
	free(e);
	return ret;
}

static int tree_mboxdir(struct jobs *js, const char *mailbox,
			const char *dir, int depth)
{
	char child[sizeof(((struct dbox_mailbox *)0)->name) + 64];
	char path[4096];
	struct dirent **e;
	int n = scandir(dir, &e, NULL, alphasort), ret = 0;

	if (n < 0)
		return ctl_error("%s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		if (ret == 0 && e[i]->d_name[0] != '.') {
			child_name(mailbox, e[i]->d_name, child,
				   sizeof(child));
			snprintf(path, sizeof(path), "%s/%s", dir,
				 e[i]->d_name);
			ret = tree_source(js, child, path, depth + 1);
		}
		free(e[i]);
	}
	free(e);
	return ret;
}

/* depth: a symlink to a directory above would otherwise recurse
 * without end */
static int tree_source(struct jobs *js, const char *mailbox,
		       const char *path, int depth)
{
	struct stat st;

	if (depth > 32)
		return ctl_error("%s: nested too deep (a symlink loop?)", path);

	if (stat(path, &st) < 0)
		return ctl_error("%s: %s", path, strerror(errno));
	if (S_ISREG(st.st_mode))
		return jobs_add(js, mailbox, path, true);
	if (!S_ISDIR(st.st_mode))
		return ctl_error("%s: neither a directory nor an mbox file",
				 path);
	if (is_subdir(path, "cur", "") || is_subdir(path, "new", ""))
		return tree_maildir(js, mailbox, path);
	return tree_mboxdir(js, mailbox, path, depth);
}

/* Imports one job into the transaction im->txn. */
static int import_job(struct import *im, struct job *j)
{
	struct dbox_err err = { "" };
	uint64_t mbox_bytes = 0;
	int ret;

	j->made = dbox_mailbox_lookup(im->store, j->mailbox, &im->box,
				      &err) == -ENOENT;
	ret = ctl_mailbox(im->store, j->mailbox, true, &im->box);
	if (ret != 0)
		return ret;
	/* maildir names need only be unique within their mailbox */
	dbox_nameset_close(im->bases);
	im->bases = NULL;
	if (j->mbox)
		return import_mbox(im, j->path);
	return collect(im, &j->path, 1, &mbox_bytes);
}

static int txn_begin(struct import *im)
{
	struct dbox_err err = { "" };

	if (dbox_save_begin(im->store, &im->txn, &err) < 0)
		return ctl_error("%s", err.msg);
	return 0;
}

static int txn_end(struct import *im, int ret)
{
	struct dbox_err err = { "" };

	if (ret == 0 && dbox_save_commit(im->txn, NULL, &err) < 0)
		ret = ctl_error("commit: %s", err.msg);
	else if (ret != 0)
		dbox_save_rollback(im->txn);
	im->txn = NULL;
	return ret;
}

/* A failed transaction leaves no trace, not even the mailboxes it made
 * (children first) */
static void undo_mailboxes(struct import *im, struct jobs *js, size_t from,
			   size_t to)
{
	for (size_t i = to; i-- > from;) {
		struct dbox_err err = { "" };

		if (js->v[i].made)
			dbox_mailbox_delete(im->store, js->v[i].mailbox, &err);
	}
}

static void report_done(const struct jobs *js, size_t done)
{
	fprintf(stderr, "dboxctl: %zu of %zu mailboxes imported before the "
		"failure%s", done, js->n, done > 0 ? ":" : "\n");
	for (size_t i = 0; i < done; i++)
		fprintf(stderr, " %s%s", js->v[i].mailbox,
			i + 1 < done ? "," : "\n");
}

static int recursive_run(struct import *im, struct jobs *js)
{
	uint64_t total = 0;
	size_t i, first = 0;
	int ret = 0;

	for (i = 0; i < js->n; i++)
		total += source_bytes(&js->v[i].path, 1);
	ctl_progress_init(&im->progress, "importing", 0, total);
	if (opt_atomic)
		ret = txn_begin(im);
	for (i = 0; ret == 0 && i < js->n; i++) {
		if (!opt_atomic) {
			first = i;
			ret = txn_begin(im);
		}
		if (ret == 0)
			ret = import_job(im, &js->v[i]);
		if (!opt_atomic && im->txn != NULL)
			ret = txn_end(im, ret);
	}
	/* on failure i is one past the failed job: its mailbox goes too */
	ctl_progress_end(&im->progress);
	if (opt_atomic && im->txn != NULL)
		ret = txn_end(im, ret);
	if (ret != 0) {
		undo_mailboxes(im, js, first, i);
		if (!opt_atomic)
			report_done(js, first);
	}
	return ret;
}

static int cmd_import_recursive(int argc, char **argv)
{
	struct import im = { 0 };
	struct jobs js = { 0 };
	int ret = 0;

	for (int i = 3; ret == 0 && i < argc; i++)
		ret = tree_source(&js, argv[2], argv[i], 0);
	im.sources = 1;
	im.kwmap = calloc(1, sizeof(*im.kwmap));
	if (ret == 0 && im.kwmap == NULL)
		ret = ctl_error("out of memory");
	if (ret == 0) {
		catch_signals();
		ret = ctl_open(argv[1], false, &im.store);
	}
	if (ret == 0)
		ret = recursive_run(&im, &js);
	if (interrupted && ret != 0) {
		ctl_error("interrupted: %s", opt_atomic ? "nothing imported" :
			  "the mailbox being imported was rolled back");
		ret = 128 + interrupted;
	} else if (ret == 0)
		printf("%lu messages imported into %zu mailboxes\n",
		       im.imported, js.n);
	import_free(&im);
	jobs_free(&js);
	if (im.store != NULL)
		dbox_store_close(im.store);
	return ret;
}

/* --recursive and --atomic are removed from argv (before "--"); the
 * other commands take no options of their own. */
int import_take_options(int *argc, char **argv)
{
	int out = 1, i;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--recursive") == 0)
			opt_recursive = true;
		else if (strcmp(argv[i], "--atomic") == 0)
			opt_atomic = true;
		else
			argv[out++] = argv[i];
	}
	for (; i < *argc; i++)
		argv[out++] = argv[i];
	argv[out] = NULL;
	*argc = out;
	if (opt_atomic && !opt_recursive)
		return ctl_error("import: --atomic needs --recursive (an "
				 "import is otherwise one transaction)") + 1;
	return 0;
}

int cmd_import(int argc, char **argv)
{
	struct import im = { 0 };
	bool made = false;
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
	if (opt_recursive)
		return cmd_import_recursive(argc, argv);
	if (check_sources(argv + 3, argc - 3) != 0)
		return 1;
	catch_signals();
	if (ctl_open(argv[1], false, &im.store) != 0)
		return 1;
	ret = import_run(&im, argv, argc, &made);
	if (ret != 0 && made && im.store != NULL) {
		struct dbox_err err = { "" };

		/* a failed import leaves no trace, not even its mailbox */
		dbox_mailbox_delete(im.store, argv[2], &err);
	}
	if (interrupted && ret != 0)
		ret = report_interrupt();
	else if (ret == 0)
		printf("%lu messages imported into %s\n", im.imported, argv[2]);
	import_free(&im);
	dbox_store_close(im.store);
	return ret;
}
