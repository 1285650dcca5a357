/* dboxctl.c - administration of dbox stores: command dispatch, the small
 * commands, and helpers shared by import and export. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "dboxctl.h"
#include "pending.h"

struct ctl_opts ctl_opts;

static const char usage_text[] =
"Usage: dboxctl [--fs=CONFIG] [--index=PATH] [--attachment-dir=PATH]\n"
"               COMMAND [ARGS...]\n"
"\n"
"Administer a dbox mail store (Dovecot sdbox/mdbox layout with an SQLite\n"
"index) without a running Dovecot.\n"
"\n"
"Commands:\n"
"  help [COMMAND]        this text, or a command's own\n"
"  init STORE --format sdbox|mdbox [--rotate-size BYTES]\n"
"                        create an empty store with an INBOX\n"
"  import STORE MAILBOX SOURCE...\n"
"                        add messages from maildir folders and mbox files,\n"
"                        all in one transaction\n"
"  export STORE MAILBOX DEST\n"
"                        write a mailbox as a maildir\n"
"  ls STORE [MAILBOX]    list mailboxes, or the messages of one\n"
"  cat STORE MAILBOX UID write one message to standard output\n"
"  reindex STORE         rebuild the index from the dbox files\n"
"  check STORE           verify every message against its file\n"
"  purge STORE           reclaim space of expunged mdbox messages\n"
"  stats STORE           counts and sizes\n"
"\n"
"Global options (before or after the command; \"--\" ends options):\n"
"  --fs=CONFIG           I/O stack, e.g. posix, delay:5ms/posix,\n"
"                        randomfail:eio:1%/posix\n"
"  --index=PATH          index database instead of the default location\n"
"  --takeover            allow writing into a tree that Dovecot made\n"
"  --attachment-dir=PATH Dovecot's mail_attachment_dir, for messages that\n"
"                        keep their attachments there (cat, export and\n"
"                        check fail on them without it)\n"
"  --dovecot-index=PATH  the INDEX= directory of Dovecot's mail_location:\n"
"                        Dovecot's index files are read there (not with\n"
"                        --takeover)\n"
"  --dovecot-separator=C Dovecot's namespace separator (default /) and\n"
"  --dovecot-prefix=STR  prefix (default none) and\n"
"  --dovecot-brokenchar=C  mail_location's BROKENCHAR (default none), with\n"
"                        --takeover: for the mailbox a failed import\n"
"                        removes, in Dovecot's mailbox log\n"
"  -h, --help            this help; COMMAND --help for a command's\n"
"  -V, --version         print the version\n"
"\n"
"Exit status: 0 success, 1 failure, 2 usage error (check: 1 when it found\n"
"problems).\n";

int ctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs("dboxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int ctl_open(const char *root, bool readonly, struct dbox_store **store_r)
{
	struct dbox_open_opts o = {
		.index_path = ctl_opts.index_path,
		.fs_config = ctl_opts.fs_config,
		.attachment_dir = ctl_opts.attachment_dir,
		.dovecot_index_dir = ctl_opts.dovecot_index,
		.dovecot_separator = ctl_opts.dovecot_separator,
		.dovecot_prefix = ctl_opts.dovecot_prefix,
		.dovecot_escape = ctl_opts.dovecot_brokenchar,
		.readonly = readonly,
		.takeover = ctl_opts.takeover,
		.repair_index = ctl_opts.repair_index,
		/* one thread waits for each request: no hand-over */
		.fs_sync_inline = true,
	};
	struct dbox_err err = { "" };
	int ret;

	pending_open_opts(&o);
	ret = dbox_store_open(root, &o, store_r, &err);
	if (ret < 0)
		return ctl_error("%s", err.msg);
	return 0;
}

int ctl_mailbox(struct dbox_store *store, const char *name, bool create,
		struct dbox_mailbox *box_r)
{
	struct dbox_err err = { "" };
	int ret = dbox_mailbox_lookup(store, name, box_r, &err);

	if (ret == -ENOENT && create)
		ret = dbox_mailbox_create(store, name, box_r, &err);
	if (ret < 0)
		return ctl_error("%s: %s", name, err.msg);
	return 0;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ctl_progress_init(struct ctl_progress *p, const char *what,
		       uint64_t total_msgs, uint64_t total_bytes)
{
	*p = (struct ctl_progress){ .what = what, .total = total_bytes,
				    .total_msgs = total_msgs,
				    .tty = isatty(STDERR_FILENO) != 0,
				    .start_ns = mono_ns() };
}

static void progress_show(struct ctl_progress *p, int64_t now, char end)
{
	double secs = (double)(now - p->start_ns) / 1e9;
	double rate = secs > 0 ? (double)p->msgs / secs : 0;
	double brate = secs > 0 ? (double)p->bytes / secs : 0;
	char eta[32] = "";

	if (end == '\r' && p->total > p->bytes && brate > 0) {
		long left = (long)((double)(p->total - p->bytes) / brate);

		snprintf(eta, sizeof(eta), ", ETA %ld:%02ld", left / 60,
			 left % 60);
	} else if (end == '\r' && p->total_msgs > p->msgs && rate > 0) {
		long left = (long)((double)(p->total_msgs - p->msgs) / rate);

		snprintf(eta, sizeof(eta), ", ETA %ld:%02ld", left / 60,
			 left % 60);
	}
	fprintf(stderr, "%s%s: %" PRIu64 " messages, %.1f MB in %.1f s, "
		"%.0f msg/s%s%s%c", end == '\r' ? "\r" : "dboxctl: ",
		p->what, p->msgs, (double)p->bytes / 1e6, secs, rate, eta,
		end == '\r' ? "\033[K" : "", end);
}

void ctl_progress_step(struct ctl_progress *p, uint64_t msgs, uint64_t bytes)
{
	int64_t now;

	p->msgs += msgs;
	p->bytes += bytes;
	if (!p->tty)
		return;
	/* a clock read per message is cheap next to saving it */
	now = mono_ns();
	if (now - p->last_ns < 200000000)
		return;
	p->last_ns = now;
	progress_show(p, now, '\r');
}

void ctl_progress_end(struct ctl_progress *p)
{
	int64_t now = mono_ns();

	if (p->tty && p->last_ns != 0)
		progress_show(p, now, '\r');
	if (p->tty && p->last_ns != 0)
		fputc('\n', stderr);
	else if (!p->tty && p->msgs > 0)
		progress_show(p, now, '\n');
}

const char *ctl_opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		ctl_error("%s needs a value", name);
		exit(2);
	}
	return argv[++*i];
}

static bool want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

static int cmd_usage(const char *text)
{
	fputs(text, stdout);
	return 0;
}

/* ------------------------------------------------------------------ init */
static const char init_help[] =
"Usage: dboxctl init STORE --format sdbox|mdbox [--rotate-size BYTES]\n"
"\n"
"Create an empty store at STORE (a missing or empty directory) with an\n"
"INBOX.  The layout is Dovecot's (mailboxes/NAME/dbox-Mails, storage/ for\n"
"mdbox), so that Dovecot 2.3 can read it after `doveadm force-resync`.\n"
"--rotate-size is mdbox's mdbox_rotate_size (default 10M; k/M/G suffixes).\n";

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n = strtoull(s, &end, 10);

	switch (*end) {
	case 'k': case 'K': n <<= 10; end++; break;
	case 'm': case 'M': n <<= 20; end++; break;
	case 'g': case 'G': n <<= 30; end++; break;
	default: break;
	}
	if (*end != '\0' || n == 0 || end == s)
		return -1;
	*v = n;
	return 0;
}

static int cmd_init(int argc, char **argv)
{
	struct dbox_create_opts o = { 0 };
	struct dbox_err err = { "" };
	const char *store = NULL;

	if (want_help(argc, argv))
		return cmd_usage(init_help);
	for (int i = 1; i < argc; i++) {
		const char *v;

		if ((v = ctl_opt_value(argc, argv, &i, "--format")) != NULL) {
			if (strcmp(v, "sdbox") == 0)
				o.format = DBOX_FORMAT_SDBOX;
			else if (strcmp(v, "mdbox") == 0)
				o.format = DBOX_FORMAT_MDBOX;
			else
				return ctl_error("init: --format: sdbox or "
						 "mdbox, not %s", v) + 1;
		} else if ((v = ctl_opt_value(argc, argv, &i,
					      "--rotate-size")) != NULL) {
			if (parse_size(v, &o.rotate_size) < 0)
				return ctl_error("init: --rotate-size: bad "
						 "size %s", v) + 1;
		} else if (argv[i][0] == '-') {
			return ctl_error("init: unknown option %s (see "
					 "dboxctl help init)", argv[i]) + 1;
		} else if (store == NULL) {
			store = argv[i];
		} else {
			return ctl_error("init: one STORE only, not also %s",
					 argv[i]) + 1;
		}
	}
	if (store == NULL)
		return ctl_error("init: no STORE given (see dboxctl help "
				 "init)") + 1;
	if (o.format == 0)
		return ctl_error("init: --format sdbox or --format mdbox is "
				 "needed") + 1;
	if (dbox_store_create(store, &o, &err) < 0)
		return ctl_error("%s", err.msg);
	return 0;
}

/* ------------------------------------------------------------------ ls */
static const char ls_help[] =
"Usage: dboxctl ls STORE [MAILBOX]\n"
"\n"
"Without MAILBOX: one line per mailbox: name, messages, uidvalidity,\n"
"next uid, GUID (tab-separated).  With MAILBOX: one line per message:\n"
"uid, maildir flags, size, received time, GUID, maildir name.\n";

static int ls_box(void *ctx, const struct dbox_mailbox *box)
{
	uint64_t count = 0;

	dbox_msg_count(ctx, box->id, -1, &count, NULL);
	printf("%s\t%" PRIu64 "\t%u\t%u\t%s\n", box->name, count,
	       box->uidvalidity, box->next_uid, box->guid);
	return 0;
}

static int ls_msg(void *ctx, const struct dbox_msg *m)
{
	char info[40];

	(void)ctx;
	dbox_maildir_info_format(m->flags, m->keywords, info, sizeof(info));
	printf("%u\t%s%s\t%" PRIu64 "\t%lld\t%s\t%s\n", m->uid,
	       m->in_new ? "new:" : "", info, m->size,
	       (long long)m->received, m->guid, m->base);
	return 0;
}

static int cmd_ls(int argc, char **argv)
{
	struct dbox_store *store;
	struct dbox_mailbox box;
	struct dbox_err err = { "" };
	int ret = 0;

	if (want_help(argc, argv))
		return cmd_usage(ls_help);
	if (argc < 2 || argc > 3) {
		fputs(ls_help, stderr);
		return 2;
	}
	if (ctl_open(argv[1], true, &store) != 0)
		return 1;
	if (argc == 2) {
		if (dbox_mailbox_list(store, ls_box, store, &err) < 0)
			ret = ctl_error("%s", err.msg);
	} else if (ctl_mailbox(store, argv[2], false, &box) != 0) {
		ret = 1;
	} else if (dbox_msg_list(store, box.id, 0, -1, 0, ls_msg, NULL,
				 &err) < 0) {
		ret = ctl_error("%s", err.msg);
	}
	dbox_store_close(store);
	return ret;
}

/* ------------------------------------------------------------------ cat */
static const char cat_help[] =
"Usage: dboxctl cat STORE MAILBOX UID\n"
"\n"
"Write the message's bytes exactly as stored (decompressed if the store\n"
"compresses) to standard output.\n";

static int cat_msg(struct dbox_store *store, const struct dbox_msg *m)
{
	char buf[65536];
	struct dbox_err err = { "" };
	uint64_t off = 0;

	/* a damaged record must not be passed off as a message */
	if (dbox_msg_verify(store, m, &err) < 0)
		return ctl_error("%s", err.msg);
	for (;;) {
		ssize_t n = dbox_msg_pread(store, m, buf, sizeof(buf), off,
					   &err);
		if (n < 0)
			return ctl_error("%s", err.msg);
		if (n == 0)
			return 0;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return ctl_error("write: %s", strerror(errno));
		off += (uint64_t)n;
	}
}

static int cmd_cat(int argc, char **argv)
{
	struct dbox_store *store;
	struct dbox_mailbox box;
	struct dbox_msg m;
	struct dbox_err err = { "" };
	char *end;
	unsigned long uid;
	int ret;

	if (want_help(argc, argv))
		return cmd_usage(cat_help);
	if (argc != 4) {
		fputs(cat_help, stderr);
		return 2;
	}
	uid = strtoul(argv[3], &end, 10);
	if (*end != '\0' || uid == 0 || uid > UINT32_MAX)
		return ctl_error("bad uid %s", argv[3]) + 1;
	if (ctl_open(argv[1], true, &store) != 0)
		return 1;
	ret = ctl_mailbox(store, argv[2], false, &box);
	if (ret == 0 && dbox_msg_get(store, box.id, (uint32_t)uid, &m,
				     &err) < 0)
		ret = ctl_error("%s uid %lu: %s", argv[2], uid, err.msg);
	if (ret == 0)
		ret = cat_msg(store, &m);
	if (fflush(stdout) != 0 && ret == 0)
		ret = ctl_error("write: %s", strerror(errno));
	dbox_store_close(store);
	return ret;
}

/* ------------------------------------------------------- reindex, purge */
static const char reindex_help[] =
"Usage: dboxctl reindex STORE\n"
"\n"
"Rebuild the index from the dbox files alone, as `doveadm force-resync`\n"
"does.  Flags, keywords, uids and maildir names are kept for messages\n"
"found where the old index had them; others get new uids and no flags.\n"
"A damaged index is moved aside (INDEX.damaged-TIME) and what can still\n"
"be read of it is kept.\n";

static int cmd_reindex(int argc, char **argv)
{
	struct dbox_store *store;
	struct dbox_err err = { "" };
	int ret;

	if (want_help(argc, argv))
		return cmd_usage(reindex_help);
	if (argc != 2) {
		fputs(reindex_help, stderr);
		return 2;
	}
	ctl_opts.repair_index = true;
	if (ctl_open(argv[1], false, &store) != 0)
		return 1;
	ret = dbox_store_reindex(store, &err);
	if (ret < 0)
		ret = ctl_error("%s", err.msg);
	else {
		printf("%d messages indexed\n", ret);
		ret = 0;
	}
	dbox_store_close(store);
	return ret;
}

static const char purge_help[] =
"Usage: dboxctl purge STORE\n"
"\n"
"Rewrite mdbox files that hold expunged messages, keeping the others.\n"
"Safe while the store is mounted or used by another dboxctl.\n";

static int cmd_purge(int argc, char **argv)
{
	struct dbox_store *store;
	struct dbox_err err = { "" };
	int64_t ret;

	if (want_help(argc, argv))
		return cmd_usage(purge_help);
	if (argc != 2) {
		fputs(purge_help, stderr);
		return 2;
	}
	if (ctl_open(argv[1], false, &store) != 0)
		return 1;
	ret = dbox_store_purge(store, &err);
	if (ret < 0)
		ctl_error("%s", err.msg);
	else
		printf("%lld bytes reclaimed\n", (long long)ret);
	dbox_store_close(store);
	return ret < 0;
}

/* ------------------------------------------------------------------ check */
static const char check_help[] =
"Usage: dboxctl check STORE\n"
"\n"
"Read every indexed message's framing (header, size, metadata) where the\n"
"index says it is and compare it with the index (GUID, sizes, the virtual\n"
"size recomputed from the message); look for files and bytes\n"
"the index does not account for (in a tree taken over, nor Dovecot's map:\n"
"Dovecot appends to our files too).  Prints one line per problem,\n"
"FILE:OFFSET: WHAT, and exits with status 1 if there was any.\n";

static void check_cb(void *ctx, const struct dbox_check_problem *p)
{
	(void)ctx;
	printf("%s:%llu: %s\n", p->path, (unsigned long long)p->offset,
	       p->what);
}

static int cmd_check(int argc, char **argv)
{
	struct dbox_store *store;
	struct dbox_err err = { "" };
	int ret;

	if (want_help(argc, argv))
		return cmd_usage(check_help);
	if (argc != 2) {
		fputs(check_help, stderr);
		return 2;
	}
	/* read-write: opening runs the crash recovery every writer runs,
	 * so what is reported is what the next user would really find */
	if (ctl_open(argv[1], false, &store) != 0)
		return 1;
	ret = dbox_store_check(store, check_cb, NULL, &err);
	dbox_store_close(store);
	if (ret < 0)
		return ctl_error("%s", err.msg);
	if (ret > 0)
		fprintf(stderr, "dboxctl: %d problem(s) found\n", ret);
	return ret > 0;
}

/* ------------------------------------------------------------------ stats */
static const char stats_help[] =
"Usage: dboxctl stats STORE\n"
"\n"
"Print the store's format, index path, the number of mailboxes,\n"
"messages and message bytes, and the count of index transactions so far.\n";

struct stats {
	struct dbox_store *store;
	uint64_t boxes, msgs, bytes;
};

static int stats_msg(void *ctx, const struct dbox_msg *m)
{
	struct stats *s = ctx;

	s->msgs++;
	s->bytes += m->size;
	return 0;
}

static int stats_box(void *ctx, const struct dbox_mailbox *box)
{
	struct stats *s = ctx;

	s->boxes++;
	dbox_msg_list(s->store, box->id, 0, -1, 0, stats_msg, s, NULL);
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	struct stats s = { 0 };
	struct dbox_err err = { "" };

	if (want_help(argc, argv))
		return cmd_usage(stats_help);
	if (argc != 2) {
		fputs(stats_help, stderr);
		return 2;
	}
	if (ctl_open(argv[1], true, &s.store) != 0)
		return 1;
	if (dbox_mailbox_list(s.store, stats_box, &s, &err) < 0) {
		dbox_store_close(s.store);
		return ctl_error("%s", err.msg);
	}
	printf("format\t%s\norigin\t%s\nindex\t%s\nmailboxes\t%" PRIu64
	       "\nmessages\t%" PRIu64 "\nbytes\t%" PRIu64 "\nchanges\t%"
	       PRIu64 "\n",
	       dbox_store_get_format(s.store) == DBOX_FORMAT_MDBOX ? "mdbox" :
	       "sdbox", dbox_store_get_origin(s.store) == DBOX_ORIGIN_DOVECOT ?
	       "dovecot" : "dboxfs", dbox_store_index_path(s.store), s.boxes,
	       s.msgs, s.bytes, dbox_store_change_counter(s.store));
	dbox_store_close(s.store);
	return 0;
}

/* ------------------------------------------------------------------ main */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "init", cmd_init }, { "import", cmd_import },
	{ "export", cmd_export }, { "ls", cmd_ls }, { "cat", cmd_cat },
	{ "reindex", cmd_reindex }, { "check", cmd_check },
	{ "purge", cmd_purge }, { "stats", cmd_stats },
};

/* Global options after the command name are the same as before it (an
 * option is never taken for a name); they are removed from argv.  "--"
 * ends options: what follows is positional even if it starts with '-'.
 * Returns the new argc. */
static int take_global_opts(int argc, char **argv)
{
	int out = 1, i;

	for (i = 1; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--") == 0) {
			argv[out++] = argv[i];
			break;
		}
		if ((v = ctl_opt_value(argc, argv, &i, "--fs")) != NULL)
			ctl_opts.fs_config = v;
		else if ((v = ctl_opt_value(argc, argv, &i, "--index")) != NULL)
			ctl_opts.index_path = v;
		else if ((v = ctl_opt_value(argc, argv, &i,
					    "--attachment-dir")) != NULL)
			ctl_opts.attachment_dir = v;
		else if ((v = ctl_opt_value(argc, argv, &i,
					    "--dovecot-index")) != NULL)
			ctl_opts.dovecot_index = v;
		else if ((v = ctl_opt_value(argc, argv, &i,
					    "--dovecot-separator")) != NULL)
			ctl_opts.dovecot_separator = v;
		else if ((v = ctl_opt_value(argc, argv, &i,
					    "--dovecot-prefix")) != NULL)
			ctl_opts.dovecot_prefix = v;
		else if ((v = ctl_opt_value(argc, argv, &i,
					    "--dovecot-brokenchar")) != NULL)
			ctl_opts.dovecot_brokenchar = v;
		else if (strcmp(argv[i], "--takeover") == 0)
			ctl_opts.takeover = true;
		else
			argv[out++] = argv[i];
	}
	for (i++; i < argc; i++)
		argv[out++] = argv[i];
	argv[out] = NULL;
	return out;
}

/* The commands other than init take no options of their own: anything
 * left that looks like one is a mistake, not a mailbox or path.  A "--"
 * is dropped and ends the check. */
static int refuse_options(int *argc, char **argv)
{
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			memmove(&argv[i], &argv[i + 1],
				(size_t)(*argc - i) * sizeof(*argv));
			--*argc;
			return 0;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			ctl_error("%s: unknown option %s (see dboxctl help "
				  "%s; put -- before a name that starts "
				  "with -)", argv[0], argv[i], argv[0]);
			return 2;
		}
	}
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	char *args[] = { NULL, "--help", NULL };

	if (argc < 2) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0)
		return cmd_usage(usage_text);
	args[0] = argv[1];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(2, args);
	}
	ctl_error("help: unknown command %s", argv[1]);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fs", required_argument, NULL, 'f' },
		{ "index", required_argument, NULL, 'i' },
		{ "takeover", no_argument, NULL, 't' },
		{ "attachment-dir", required_argument, NULL, 'a' },
		{ "dovecot-index", required_argument, NULL, 'x' },
		{ "dovecot-separator", required_argument, NULL, 's' },
		{ "dovecot-prefix", required_argument, NULL, 'p' },
		{ "dovecot-brokenchar", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct rlimit rl;
	int c, ret;

	/* an import holds a few files per mailbox and m.N it fills */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* stop at the command name: its options are its own */
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': ctl_opts.fs_config = optarg; break;
		case 'i': ctl_opts.index_path = optarg; break;
		case 't': ctl_opts.takeover = true; break;
		case 'a': ctl_opts.attachment_dir = optarg; break;
		case 'x': ctl_opts.dovecot_index = optarg; break;
		case 's': ctl_opts.dovecot_separator = optarg; break;
		case 'p': ctl_opts.dovecot_prefix = optarg; break;
		case 'b': ctl_opts.dovecot_brokenchar = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("dboxctl %s\n", DBOXFS_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	argc = take_global_opts(argc - optind, argv + optind);
	argv += optind;
	if (strcmp(argv[0], "help") == 0)
		return cmd_help(argc, argv);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		if (strcmp(argv[0], "import") == 0 &&
		    (ret = import_take_options(&argc, argv)) != 0)
			return ret;
		if (!want_help(argc, argv) && strcmp(argv[0], "init") != 0 &&
		    refuse_options(&argc, argv) != 0)
			return 2;
		return commands[i].fn(argc, argv);
	}
	ctl_error("unknown command %s (see dboxctl help)", argv[0]);
	return 2;
}
