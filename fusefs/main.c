/* main.c - dboxfs: command line, mounting, logging, signals. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>

#include "backing.h"
#include "commit.h"
#include "flush.h"
#include "sweep.h"
#include "prepare.h"
#include "follow.h"
#include "loop.h"
#include "dbox/fs.h"
#include "dboxfs.h"

/* The daemon's state: the session's userdata, which every request
 * reaches with fuse_req_userdata(); main() passes it to the set-up. */
static struct dboxfs dboxfs = {
	.log_lock = PTHREAD_MUTEX_INITIALIZER,
	.moved.lock = PTHREAD_MUTEX_INITIALIZER,
	.handles.lock = PTHREAD_MUTEX_INITIALIZER,
	.verified.lock = PTHREAD_MUTEX_INITIALIZER,
	.prepared.lock = PTHREAD_MUTEX_INITIALIZER,
	.commit.lock = PTHREAD_MUTEX_INITIALIZER,
	.commit.cond = PTHREAD_COND_INITIALIZER,
	.commit.attr_lock = PTHREAD_MUTEX_INITIALIZER,
	.commit.tail = &dboxfs.commit.head,
	.backing.lock = PTHREAD_MUTEX_INITIALIZER,
	.backing.files_fd = -1,
	.backing.spool_fd = -1,
	.flush.lock = PTHREAD_MUTEX_INITIALIZER,
	.flush.cond = PTHREAD_COND_INITIALIZER,
	.flush.pending_fd = -1,
	.dirtime.lock = PTHREAD_MUTEX_INITIALIZER,
	.dirmode.lock = PTHREAD_MUTEX_INITIALIZER,
	.kcache.lock = PTHREAD_MUTEX_INITIALIZER,
	.folders.hidden_lock = PTHREAD_MUTEX_INITIALIZER,
	.kwfile_fh = { .type = FH_KWFILE, .fd = -1 },
};

/* kernel cache of names and attributes the follower invalidates */
#define CACHE_TIMEOUT_LONG (6 * 3600.0)

struct options {
	char *store;
	char *layout;
	char *index;
	char *fs;
	char *attachment_dir;
	char *dovecot_index;
	char *dovecot_separator;
	char *dovecot_prefix;
	char *dovecot_brokenchar;
	int takeover;
	unsigned int dovecot_lock_ms;   /* hidden: tests */
	int noxattr;
	int readdirplus_auto;
	int fs_workers;
	double timeout;
	int show_help;
	/* durability (flush.h) */
	double commit;
	int sync;
};

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt option_spec[] = {
	OPT("layout=%s", layout),
	OPT("index=%s", index),
	OPT("fs=%s", fs),
	OPT("attachment_dir=%s", attachment_dir),
	OPT("dovecot_index=%s", dovecot_index),
	OPT("dovecot_separator=%s", dovecot_separator),
	OPT("dovecot_prefix=%s", dovecot_prefix),
	OPT("dovecot_brokenchar=%s", dovecot_brokenchar),
	OPT("takeover", takeover),
	OPT("dovecot_lock_ms=%u", dovecot_lock_ms),
	OPT("noxattr", noxattr),
	OPT("readdirplus_auto", readdirplus_auto),
	OPT("fs_workers=%d", fs_workers),
	OPT("cache_timeout=%lf", timeout),
	/* durability (flush.h) */
	OPT("commit=%lf", commit),
	OPT("sync", sync),
	FUSE_OPT_END
};

static void usage(const char *prog)
{
	printf("Usage: %s STORE MOUNTPOINT [options]\n"
	       "\n"
	       "Mount a Dovecot sdbox/mdbox mail store as maildir folders.\n"
	       "\n"
	       "dboxfs options:\n"
	       "    -o layout=maildir++|fs  folder layout (default maildir++:\n"
	       "                           INBOX at the root, .Sub.Folder)\n"
	       "    -o index=PATH          SQLite index (default: STORE/dboxfs/\n"
	       "                           index.sqlite; for a Dovecot tree,\n"
	       "                           ~/.cache/dboxfs/...)\n"
	       "    -o fs=CONFIG           async I/O stack, e.g. posix,\n"
	       "                           delay:5ms/posix\n"
	       "    -o fs_workers=N        most I/O worker threads (default 64)\n"
	       "    -o attachment_dir=PATH Dovecot's mail_attachment_dir: where\n"
	       "                           messages saved with it keep their\n"
	       "                           attachments (without it they read\n"
	       "                           as EIO)\n"
	       "    -o dovecot_index=PATH  the INDEX= directory of Dovecot's\n"
	       "                           mail_location (a read-only mount):\n"
	       "                           Dovecot's index files are read there\n"
	       "    -o cache_timeout=SECS  kernel entry/attribute cache (default:\n"
	       "                           hours, dropped on changes; missing\n"
	       "                           names 1.0)\n"
	       "    -o takeover            write into a tree Dovecot made\n"
	       "    -o dovecot_separator=C Dovecot's namespace separator\n"
	       "                           (default /), and\n"
	       "    -o dovecot_prefix=STR  its prefix (default none), and\n"
	       "    -o dovecot_brokenchar=C  its mail_location's BROKENCHAR\n"
	       "                           (default none): for the folder\n"
	       "                           names a takeover hands back to\n"
	       "                           Dovecot's mailbox log\n"
	       "    -o noxattr             no user.dbox.* attributes: the kernel\n"
	       "                           then stops asking for any (ls -l asks\n"
	       "                           two per file)\n"
	       "    -o readdirplus_auto    names without their attributes after\n"
	       "                           a listing's first buffer (the kernel's\n"
	       "                           default): plain listings of large\n"
	       "                           folders (ls -f, find -type f) faster,\n"
	       "                           find -newer, rsync and cold reads\n"
	       "                           slower (a lookup per name)\n"
	       "    -o ro                  read-only (the default for a tree\n"
	       "                           that Dovecot made)\n"
	       "    -o commit=SECS         renames and unlinks are durable when\n"
	       "                           their directory is fsynced, or\n"
	       "                           within SECS (default 1)\n"
	       "    -o sync                every rename durable when it returns\n"
	       "\n", prog);
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct options *o = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT && o->store == NULL) {
		/* absolute now: fuse_daemonize changes to "/" even in the
		 * foreground */
		o->store = realpath(arg, NULL);
		if (o->store == NULL)
			o->store = strdup(arg);
		return 0;  /* consumed: the rest is libfuse's */
	}
	return 1;
}

static void log_stderr(enum fuse_log_level level, const char *fmt,
		       va_list ap) __attribute__((format(printf, 2, 0)));
static void log_syslog(enum fuse_log_level level, const char *fmt,
		       va_list ap) __attribute__((format(printf, 2, 0)));

static void log_stderr(enum fuse_log_level level, const char *fmt,
		       va_list ap)
{
	(void)level;
	vfprintf(stderr, fmt, ap);
}

/* syslog names the program already (openlog): the "dboxfs: " that every
 * message starts with for stderr would be printed twice. */
static void log_syslog(enum fuse_log_level level, const char *fmt,
		       va_list ap)
{
	static const char prefix[] = "dboxfs: ";
	char line[2048];
	const char *p = line;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (strncmp(p, prefix, sizeof(prefix) - 1) == 0)
		p += sizeof(prefix) - 1;
	syslog((int)level, "%s", p);
}

static void dbox_to_fuse_log(void *ctx, enum dbox_log_level level,
			     const char *msg)
{
	(void)ctx;
	fuse_log((enum fuse_log_level)level, "dboxfs: %s\n", msg);
}

/* True if some -o option is `name` (prefix: starts with it, such as
 * "fsname="). */
static bool find_opt(struct fuse_args *args, const char *name, bool prefix)
{
	size_t n = strlen(name);

	for (int i = 0; i < args->argc; i++) {
		const char *a = args->argv[i];

		if (strcmp(a, "-o") == 0 && i + 1 < args->argc)
			a = args->argv[++i];
		else if (strncmp(a, "-o", 2) == 0)
			a += 2;
		else
			continue;
		for (const char *p = a; p != NULL; p = strchr(p, ',')) {
			if (*p == ',')
				p++;
			if (strncmp(p, name, n) == 0 &&
			    (prefix || p[n] == '\0' || p[n] == ','))
				return true;
		}
	}
	return false;
}

static bool has_opt(struct fuse_args *args, const char *name)
{
	return find_opt(args, name, false);
}

/* Adds -o NAME=VALUE with libfuse's escaping of ',' and '\'. */
static int add_opt_escaped(struct fuse_args *args, const char *name,
			   const char *value)
{
	char *opts = NULL;
	int ret;

	if (fuse_opt_add_opt_escaped(&opts, value) != 0)
		return -1;
	{
		char *arg = NULL;

		ret = asprintf(&arg, "-o%s=%s", name, opts) < 0 ? -1 :
			fuse_opt_add_arg(args, arg);
		free(arg);
	}
	free(opts);
	return ret;
}

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo */
static void mountinfo_unescape(char *s)
{
	char *d = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* True if a dboxfs is mounted at path already (fstab + mount -a, or a
 * second dboxfs by hand, would stack a second mount on it). */
static bool dboxfs_mounted_at(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char mnt[4096], type[256];
		const char *sep = strstr(line, " - ");

		if (sep == NULL ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%255s", type) != 1)
			continue;
		mountinfo_unescape(mnt);
		found = strcmp(mnt, path) == 0 &&
			strcmp(type, "fuse.dboxfs") == 0;
	}
	fclose(f);
	return found;
}

/* A mount point must be a directory (the kernel would mount over a
 * regular file, and then every access gives EIO) not already holding a
 * dboxfs. */
static int check_mountpoint(const char *mountpoint)
{
	char *abs = realpath(mountpoint, NULL);
	struct stat st;
	int ret = 0;

	if (abs == NULL || stat(abs, &st) < 0) {
		fprintf(stderr, "dboxfs: mount point %s: %s\n", mountpoint,
			strerror(errno));
		ret = -1;
	} else if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "dboxfs: mount point %s: not a directory\n",
			mountpoint);
		ret = -1;
	} else if (dboxfs_mounted_at(abs)) {
		fprintf(stderr, "dboxfs: %s: a dboxfs is mounted there "
			"already (unmount it first: fusermount3 -u %s)\n",
			mountpoint, mountpoint);
		ret = -1;
	}
	free(abs);
	return ret;
}

/* The fuse module's allow_sys_admin_access: when set, any process with
 * CAP_SYS_ADMIN passes the kernel's fuse_allow_current_process whatever
 * its uids, so a root mount has other users then too (read at the
 * mount; an admin who sets it later should remount). */
static bool fuse_lets_sys_admin_in(void)
{
	FILE *f = fopen("/sys/module/fuse/parameters/allow_sys_admin_access",
			"r");
	int c = EOF;

	if (f != NULL) {
		c = fgetc(f);
		fclose(f);
	}
	return c == 'Y' || c == '1';
}

/* Whether the kernel checks owner and mode (default_permissions): with
 * allow_other (allow_root gives it too) other users get only what the
 * modes give them, and a mount made by a user is that user's.  A mount
 * made by root without them is used only by processes whose uids and
 * gids are all the daemon's (the kernel's fuse_allow_current_process),
 * root, who passes the mode checks anyway: there the checks would only
 * cost round trips (a GETATTR of the directory after each rename or
 * create into it, to refresh the mode the change invalidated).  The
 * mount's owner is the real uid (libfuse's user_id=), hence getuid(). */
static bool wants_default_permissions(struct fuse_args *args)
{
	return getuid() != 0 || geteuid() != 0 ||
		has_opt(args, "allow_other") || has_opt(args, "allow_root") ||
		fuse_lets_sys_admin_in();
}

/* Options every dboxfs mount gets: default_permissions when it has
 * other users, and the store's path as the source df, findmnt and
 * mount -a see. */
static int add_mount_opts(struct fuse_args *args, const char *store)
{
	if (wants_default_permissions(args) &&
	    fuse_opt_add_arg(args, "-odefault_permissions") != 0)
		return -1;
	if (!find_opt(args, "fsname=", true) &&
	    add_opt_escaped(args, "fsname", store) != 0)
		return -1;
	if (!find_opt(args, "subtype=", true))
		return fuse_opt_add_arg(args, "-osubtype=dboxfs");
	return 0;
}

struct count {
	struct dboxfs *fs;
	uint64_t n;
};

static int count_cb(void *ctx, const struct dbox_mailbox *box)
{
	struct count *c = ctx;
	uint64_t n = 0;

	if (dbox_msg_count(c->fs->store, box->id, -1, &n, NULL) == 0)
		c->n += n;
	return 0;
}

static void log_mount(struct dboxfs *fs, const char *what, const char *store,
		      const char *mountpoint)
{
	struct count c = { fs, 0 };

	if (fs->store != NULL)
		dbox_mailbox_list(fs->store, count_cb, &c, NULL);
	fuse_log(FUSE_LOG_NOTICE, "dboxfs: %s %s on %s (%s, %s layout, "
		 "%llu messages)\n", what, store, mountpoint,
		 fs->readonly ? "read-only" : "read-write",
		 fs->layout == VIEW_FS ? "fs" : "maildir++",
		 (unsigned long long)c.n);
}

/* The mount's log line counts the messages: O(messages), 2 s for a
 * million from a cold cache, so it is written beside the request loop
 * instead of holding up the mount's first answer. */
struct mount_log {
	struct dboxfs *fs;
	pthread_t thread;
	bool started;
	const char *store, *mountpoint;
};

static void *mount_log_main(void *arg)
{
	struct mount_log *ml = arg;

	log_mount(ml->fs, "mounted", ml->store, ml->mountpoint);
	return NULL;
}

static void mount_log_start(struct mount_log *ml)
{
	ml->started = pthread_create(&ml->thread, NULL, mount_log_main,
				     ml) == 0;
	if (!ml->started)
		mount_log_main(ml);
}

static void mount_log_join(struct mount_log *ml)
{
	if (ml->started)
		pthread_join(ml->thread, NULL);
	ml->started = false;
}

static void ctl_dir(struct dboxfs *fs, char *ctl, size_t len)
{
	char *slash;

	snprintf(ctl, len, "%s", dbox_store_files_dir(fs->store));
	slash = strrchr(ctl, '/');
	if (slash != NULL)
		*slash = '\0';
}

/* A read-only mount shows the real files beside the store as they are
 * (a store without them, such as a Dovecot tree, has none to show; a
 * tree taken over, those of the takeover mount's folders in it). */
static void start_reader(struct dboxfs *fs)
{
	const char *tree = dbox_store_vdirs_dir(fs->store);
	char ctl[4096];

	ctl_dir(fs, ctl, sizeof(ctl));
	backing_init_readonly(fs, ctl);
	if (strcmp(tree, dbox_store_files_dir(fs->store)) != 0)
		backing_use_tree_files(fs, tree);
}

/* The write side: real files beside the store and the committer. */
static int start_writer(struct dboxfs *fs)
{
	char ctl[4096];
	int ret;

	ctl_dir(fs, ctl, sizeof(ctl));
	ret = backing_init(fs, ctl);
	if (ret == 0)
		ret = flush_init(fs, ctl);
	if (ret == 0) {
		sweep_pending(fs, flush_pending_dirfd(fs));
		sweep_spool(fs);
		ret = commit_start(fs);
	}
	if (ret == 0)
		ret = flush_start(fs);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: %s: %s\n", ctl, strerror(-ret));
	return ret;
}

/* setup() opened the store once before mounting, which checked its index;
 * the open for good right after need not read the whole file again */
static bool index_checked;

static int open_store(struct dboxfs *fs, struct options *o, bool ro)
{
	struct dbox_open_opts oo = {
		.index_path = o->index,
		.fs_config = o->fs,
		.attachment_dir = o->attachment_dir,
		.dovecot_index_dir = o->dovecot_index,
		.dovecot_separator = o->dovecot_separator,
		.dovecot_prefix = o->dovecot_prefix,
		.dovecot_escape = o->dovecot_brokenchar,
		.readonly = ro,
		.takeover = o->takeover != 0,
		.dovecot_lock_ms = o->dovecot_lock_ms,
		.fs_max_workers = o->fs_workers > 0 ?
			(unsigned int)o->fs_workers : 0,
		.deferred_sync = !fs->sync,
		.index_checked = index_checked,
		/* a connection per worker thread: 2 MiB each by default,
		 * while the OS caches the file anyway */
		.index_cache_kib = 256,
		/* kcache drops exactly the name a removed message had */
		.track_removed = true,
		/* a request thread waits for each file operation it makes
		 * anyway: when the file has nothing else in flight, the
		 * operation runs on that thread, not on a worker that wakes
		 * and wakes it again (two context switches per call, several
		 * calls per delivery: bench/RESULTS.md) */
		.fs_sync_inline = true,
	};
	struct dbox_err err = { "" };
	struct dbox_mailbox inbox;
	struct stat st;
	int ret;

	if (!ro)
		sweep_open_opts(fs, &oo);
	ret = dbox_store_open(o->store, &oo, &fs->store, &err);
	flush_pending_clear(fs);
	if (ret < 0) {
		fuse_log(FUSE_LOG_ERR, "dboxfs: %s\n", err.msg);
		return -1;
	}
	fs->readonly = ro || dbox_store_is_readonly(fs->store);
	if (dbox_mailbox_lookup(fs->store, "INBOX", &inbox, NULL) == 0)
		fs->inbox_id = inbox.id;
	if (stat(dbox_store_root(fs->store), &st) == 0) {
		fs->uid = st.st_uid;
		fs->gid = st.st_gid;
		fs->dir_mode = st.st_mode & 0777;
		fs->file_mode = st.st_mode & 0666;
	}
	return 0;
}

static int setup(struct dboxfs *fs, struct options *o,
		 struct fuse_args *args)
{
	bool ro = has_opt(args, "ro");

	if (o->layout == NULL || strcmp(o->layout, "maildir++") == 0) {
		fs->layout = VIEW_MAILDIRPP;
	} else if (strcmp(o->layout, "fs") == 0) {
		fs->layout = VIEW_FS;
	} else {
		fuse_log(FUSE_LOG_ERR, "dboxfs: layout=%s: use maildir++ or "
			 "fs\n", o->layout);
		return -1;
	}
	if (o->fs != NULL) {
		char err[256];

		if (dfs_config_check(o->fs, err, sizeof(err)) < 0) {
			fuse_log(FUSE_LOG_ERR, "dboxfs: fs=%s: %s\n", o->fs,
				 err);
			return -1;
		}
	}
	fs->entry_timeout = fs->attr_timeout = fs->neg_timeout =
		o->timeout > 0 ? o->timeout : 1.0;
	/* durability (flush.h) */
	if (o->commit < 0 || o->commit > 86400) {
		fuse_log(FUSE_LOG_ERR, "dboxfs: commit=%g: use 0 < SECS <= "
			 "86400 (seconds)\n", o->commit);
		return -1;
	}
	fs->commit_interval = o->commit > 0 ? o->commit : 1.0;
	fs->sync = o->sync != 0;
	fs->readdirplus_auto = o->readdirplus_auto != 0;
	/* a wait that long holds every change behind Dovecot's lock */
	if (o->dovecot_lock_ms > 600000) {
		fuse_log(FUSE_LOG_ERR, "dboxfs: dovecot_lock_ms=%u: use at "
			 "most 600000 (ms)\n", o->dovecot_lock_ms);
		return -1;
	}
	if (open_store(fs, o, ro) < 0)
		return -1;
	/* only a check (and the first indexing) before mounting: the store
	 * has I/O threads, and fuse_daemonize's fork keeps none of them */
	dbox_store_close(fs->store);
	fs->store = NULL;
	index_checked = true;
	/* a tree that only Dovecot writes is mounted read-only, so the
	 * kernel refuses writes before they reach us */
	if (fs->readonly && !ro)
		fuse_opt_add_arg(args, "-oro");
	return 0;
}

static void close_store(struct dboxfs *fs)
{
	commit_stop(fs);
	flush_stop(fs);
	sweep_keep_linked(fs);
	prepare_clear(fs);
	backing_shutdown(fs);
	dbox_store_close(fs->store);
	fs->store = NULL;
}

/* Paths given relative to where dboxfs was started (a daemon changes to
 * "/" before it opens the store). */
static void make_absolute(char **path)
{
	char cwd[4096], *abs = NULL;

	if (*path == NULL || (*path)[0] == '/')
		return;
	if (getcwd(cwd, sizeof(cwd)) != NULL &&
	    asprintf(&abs, "%s/%s", cwd, *path) > 0) {
		free(*path);
		*path = abs;
	}
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *loop;
	struct options o = { 0 };
	struct dboxfs *fs = &dboxfs;
	struct mount_log ml = { 0 };
	bool ro;
	int ret = -1;

	struct rlimit rl;

	/* every backing inode the kernel knows holds a descriptor: the soft
	 * limit up to the hard one, as servers do */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Large blocks (read-ahead windows, libfuse's buffers) mapped on
	 * their own and returned at free: glibc's threshold otherwise rises
	 * to the size of the first large block freed, and the later ones
	 * stayed in the worker threads' arenas (a read of a whole folder
	 * left ~10 MiB there at 100,000 messages). */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	clock_gettime(CLOCK_REALTIME, &fs->started);
	if (fuse_opt_parse(&args, &o, option_spec, opt_proc) < 0)
		return 1;
	make_absolute(&o.index);
	make_absolute(&o.attachment_dir);
	make_absolute(&o.dovecot_index);
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 1;
	if (opts.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (opts.show_version) {
		printf("dboxfs %s\n", DBOXFS_VERSION);
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (o.store == NULL || opts.mountpoint == NULL) {
		fprintf(stderr, "usage: %s STORE MOUNTPOINT [options]\n"
			"       %s --help\n", argv[0], argv[0]);
		ret = -2;
		goto out;
	}
	fuse_set_log_func(log_stderr);
	dbox_set_log_handler(dbox_to_fuse_log, NULL);
	/* before fuse_session_new, which takes "ro" out of args */
	ro = has_opt(&args, "ro");
	if (check_mountpoint(opts.mountpoint) < 0 ||
	    add_mount_opts(&args, o.store) < 0 || setup(fs, &o, &args) < 0)
		goto out;
	{
		/* without the xattr handlers libfuse answers ENOSYS, and the
		 * kernel stops sending xattr requests altogether */
		static struct fuse_lowlevel_ops ops;

		ops = dboxfs_ops;
		if (o.noxattr) {
			ops.getxattr = NULL;
			ops.listxattr = NULL;
			ops.setxattr = NULL;
			ops.removexattr = NULL;
		}
		fs->se = fuse_session_new(&args, &ops, sizeof(ops),
					     fs);
	}
	if (fs->se == NULL)
		goto out_store;
	if (fuse_set_signal_handlers(fs->se) != 0)
		goto out_session;
	if (fuse_session_mount(fs->se, opts.mountpoint) != 0)
		goto out_signals;
	if (!opts.foreground) {
		openlog("dboxfs", LOG_PID, LOG_DAEMON);
		fuse_set_log_func(log_syslog);
	}
	fuse_daemonize(opts.foreground);
	/* the store for good, now that no fork follows */
	if (open_store(fs, &o, ro) < 0 ||
	    (!fs->readonly && start_writer(fs) < 0)) {
		fuse_session_unmount(fs->se);
		goto out_signals;
	}
	if (fs->readonly)
		start_reader(fs);
	ml.fs = fs;
	ml.store = o.store;
	ml.mountpoint = opts.mountpoint;
	mount_log_start(&ml);
	/* names and attributes for hours: the follower drops what changes
	 * (kcache.h); without it, or with cache_timeout= given, the short
	 * timeout for everything */
	fs->cache_timeout = o.timeout > 0 ? o.timeout : CACHE_TIMEOUT_LONG;
	if (follow_start(fs) < 0) {
		fs->cache_timeout = fs->entry_timeout;
		fuse_log(FUSE_LOG_ERR, "dboxfs: changes by other programs will "
			 "show only after the cache timeout\n");
	}
	if (opts.singlethread) {
		ret = fuse_session_loop(fs->se);
	} else if (!opts.clone_fd) {
		/* libfuse's default of 10 threads; "unset" idle: no limit */
		ret = loop_run(fs->se, opts.max_threads > 0 &&
			       opts.max_threads <= 100000 ? opts.max_threads : 10,
			       opts.max_idle_threads <= 100000 ?
			       (int)opts.max_idle_threads : -1,
			       dboxfs_quick, fs);
	} else {
		/* a reply goes back by the device descriptor of its request:
		 * clone_fd needs libfuse's internal channels */
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, opts.clone_fd);
		if (opts.max_threads > 0 && opts.max_threads <= 100000)
			fuse_loop_cfg_set_max_threads(loop, opts.max_threads);
		/* libfuse 3.14 warns about its own "unset" (UINT_MAX) here */
		if (opts.max_idle_threads <= 100000)
			fuse_loop_cfg_set_idle_threads(loop,
						       opts.max_idle_threads);
		ret = fuse_session_loop_mt(fs->se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	/* The kernel's read of the device gives ECONNABORTED when it took a
	 * request off the queue as the connection was being shut down
	 * (fs/fuse/dev.c fuse_dev_do_read, !fpq->connected): the RELEASE of
	 * the last close after a lazy unmount, racing the superblock's end.
	 * Its other cause, an abort through fusectl, needs FUSE_ABORT_ERROR,
	 * which libfuse never asks for.  So it is an unmount, as ENODEV is,
	 * which libfuse's loops treat as one and this errno not. */
	if (ret == -ECONNABORTED)
		ret = 0;
	follow_stop(fs);
	mount_log_join(&ml);
	log_mount(fs, "unmounting", o.store, opts.mountpoint);
	fuse_session_unmount(fs->se);
out_signals:
	/* Before the session goes: deliveries still queued get their replies,
	 * and the store's I/O workers, which splice replies and so own
	 * libfuse's per-thread pipes, exit while libfuse can still free
	 * those. */
	close_store(fs);
	fuse_remove_signal_handlers(fs->se);
out_session:
	fuse_session_destroy(fs->se);
out_store:
	close_store(fs);
out:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	free(o.store);
	free(o.layout);
	free(o.index);
	free(o.fs);
	free(o.attachment_dir);
	free(o.dovecot_index);
	free(o.dovecot_separator);
	free(o.dovecot_prefix);
	free(o.dovecot_brokenchar);
	/* > 0: the signal that ended the loop, a clean unmount */
	return ret == -2 ? 2 : ret < 0 ? 1 : 0;
}
