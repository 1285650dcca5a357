/* import-tree.c - dboxctl import --recursive: a tree of maildir++ or
 * nested maildir folders and mbox files becomes mailboxes, each in its own
 * transaction (or, with --atomic, all in one). */
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
		    strcmp(name, "..") != 0 &&
		    import_is_subdir(dir, name, "cur")) {
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
	if (import_is_subdir(path, "cur", "") ||
	    import_is_subdir(path, "new", ""))
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
	return import_collect(im, &j->path, 1, &mbox_bytes);
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
		total += import_source_bytes(&js->v[i].path, 1);
	ctl_progress_init(&im->progress, "importing", 0, total);
	if (import_opt_atomic)
		ret = txn_begin(im);
	for (i = 0; ret == 0 && i < js->n; i++) {
		if (!import_opt_atomic) {
			first = i;
			ret = txn_begin(im);
		}
		if (ret == 0)
			ret = import_job(im, &js->v[i]);
		if (!import_opt_atomic && im->txn != NULL)
			ret = txn_end(im, ret);
	}
	/* on failure i is one past the failed job: its mailbox goes too */
	ctl_progress_end(&im->progress);
	if (import_opt_atomic && im->txn != NULL)
		ret = txn_end(im, ret);
	if (ret != 0) {
		undo_mailboxes(im, js, first, i);
		if (!import_opt_atomic)
			report_done(js, first);
	}
	return ret;
}

int cmd_import_recursive(int argc, char **argv)
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
		import_catch_signals();
		ret = ctl_open(argv[1], false, &im.store);
	}
	if (ret == 0)
		ret = recursive_run(&im, &js);
	if (import_interrupted && ret != 0) {
		ctl_error("interrupted: %s",
			  import_opt_atomic ? "nothing imported" :
			  "the mailbox being imported was rolled back");
		ret = 128 + import_interrupted;
	} else if (ret == 0)
		printf("%lu messages imported into %zu mailboxes\n",
		       im.imported, js.n);
	import_free(&im);
	jobs_free(&js);
	if (im.store != NULL)
		dbox_store_close(im.store);
	return ret;
}

