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
#include "import.h"
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

volatile sig_atomic_t import_interrupted;
bool import_opt_atomic;
static bool opt_recursive;

/* ------------------------------------------------------------------ main */

bool import_is_subdir(const char *dir, const char *name, const char *sub)
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

	if (!import_is_subdir(dir, "cur", "") &&
	    !import_is_subdir(dir, "new", ""))
		return ctl_error("%s: not a maildir (no cur/ or new/) and not "
				 "an mbox file", dir);
	d = opendir(dir);
	if (d == NULL)
		return ctl_error("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 ||
		    !import_is_subdir(dir, e->d_name, "cur"))
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
int import_collect(struct import *im, char **sources, int n,
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
		ret = import_load_keywords(im, sources[i], i);
		if (ret == 0)
			ret = import_scan_maildir_sub(im, sources[i], "cur", i);
		if (ret == 0)
			ret = import_scan_maildir_sub(im, sources[i], "new", i);
		if (ret < 0)
			return ctl_error("%s: %s", sources[i], strerror(-ret));
		if (ret > 0)
			return ret;
	}
	return import_flush_batch(im);
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

void import_free(struct import *im)
{
	import_items_free(im);
	free(im->items);
	dbox_nameset_close(im->bases);
	free(im->kwmap);
}

static void on_signal(int sig)
{
	import_interrupted = sig;
}

/* SIGINT and SIGTERM end the import at the next message, rolled back */
void import_catch_signals(void)
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
	return 128 + import_interrupted;
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
uint64_t import_source_bytes(char **sources, int n)
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
			  import_source_bytes(argv + 3, im->sources));
	if (ret == 0)
		ret = import_collect(im, argv + 3, im->sources, &mbox_bytes);
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
			import_opt_atomic = true;
		else
			argv[out++] = argv[i];
	}
	for (; i < *argc; i++)
		argv[out++] = argv[i];
	argv[out] = NULL;
	*argc = out;
	if (import_opt_atomic && !opt_recursive)
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
	import_catch_signals();
	if (ctl_open(argv[1], false, &im.store) != 0)
		return 1;
	ret = import_run(&im, argv, argc, &made);
	if (ret != 0 && made && im.store != NULL) {
		struct dbox_err err = { "" };

		/* a failed import leaves no trace, not even its mailbox */
		dbox_mailbox_delete(im.store, argv[2], &err);
	}
	if (import_interrupted && ret != 0)
		ret = report_interrupt();
	else if (ret == 0)
		printf("%lu messages imported into %s\n", im.imported, argv[2]);
	import_free(&im);
	dbox_store_close(im.store);
	return ret;
}
