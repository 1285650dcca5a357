/* export.c - dboxctl export: a mailbox as a maildir. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dboxctl.h"

static const char export_help[] =
"Usage: dboxctl export STORE MAILBOX DEST\n"
"\n"
"Write every message of MAILBOX into the maildir DEST (created with cur/,\n"
"new/ and tmp/ if missing), byte for byte, under its maildir name with\n"
"its flags (cur/BASE:2,FLAGS, or new/BASE), mtime = received time, and a\n"
"dovecot-keywords file for the keyword letters.  Each file is written in\n"
"tmp/, made durable and renamed into place.\n";

/* Files written in tmp/ before one syncfs makes them all durable and they
 * are renamed: one flush per batch instead of one fsync per message. */
#define BATCH 1024

struct export {
	struct dbox_store *store;
	const char *dest;
	int dest_fd;
	char *tmp[BATCH], *final[BATCH];  /* written, not yet renamed */
	unsigned int pending;
	char *buf;
	unsigned long count;
	int ret;
	struct ctl_progress progress;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int copy_msg(struct export *ex, const struct dbox_msg *m, int fd)
{
	struct dbox_err err = { "" };
	uint64_t off = 0;

	if (dbox_msg_verify(ex->store, m, &err) < 0)
		return ctl_error("uid %u: %s", m->uid, err.msg);
	for (;;) {
		ssize_t n = dbox_msg_pread(ex->store, m, ex->buf, 1 << 20, off,
					   &err);
		int ret;

		if (n < 0)
			return ctl_error("uid %u: %s", m->uid, err.msg);
		if (n == 0)
			break;
		ret = write_all(fd, ex->buf, (size_t)n);
		if (ret < 0)
			return ctl_error("write: %s", strerror(-ret));
		off += (uint64_t)n;
	}
	if (off != m->size)
		return ctl_error("uid %u: read %llu bytes, expected %llu",
				 m->uid, (unsigned long long)off,
				 (unsigned long long)m->size);
	return 0;
}

/* The batch durable (syncfs), then renamed into place, then the renames
 * durable (the directories fsynced). */
static int flush_pending(struct export *ex)
{
	static const char *const subs[] = { "cur", "new" };
	char path[4096];
	int ret = 0;

	if (ex->pending > 0 && syncfs(ex->dest_fd) < 0)
		ret = ctl_error("syncfs %s: %s", ex->dest, strerror(errno));
	for (unsigned int i = 0; i < ex->pending; i++) {
		if (ret == 0 && rename(ex->tmp[i], ex->final[i]) < 0)
			ret = ctl_error("rename %s: %s", ex->final[i],
					strerror(errno));
		if (ret != 0)
			unlink(ex->tmp[i]);
		free(ex->tmp[i]);
		free(ex->final[i]);
	}
	for (size_t i = 0; ret == 0 && ex->pending > 0 && i < 2; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", ex->dest, subs[i]);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			ret = ctl_error("fsync %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	ex->pending = 0;
	return ret;
}

static int pending_add(struct export *ex, const char *tmp, const char *final)
{
	char *t = strdup(tmp), *f = strdup(final);

	if (t == NULL || f == NULL) {
		free(t);
		free(f);
		return ctl_error("out of memory");
	}
	ex->tmp[ex->pending] = t;
	ex->final[ex->pending++] = f;
	return ex->pending == BATCH ? flush_pending(ex) : 0;
}

static int export_msg(void *ctx, const struct dbox_msg *m)
{
	struct export *ex = ctx;
	char info[40], tmp[4096], final[4096];
	struct timespec times[2];
	int fd, ret;

	dbox_maildir_info_format(m->flags, m->keywords, info, sizeof(info));
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", ex->dest, m->base);
	if (m->in_new && !m->new_info)
		snprintf(final, sizeof(final), "%s/new/%s", ex->dest, m->base);
	else if (m->in_new)
		snprintf(final, sizeof(final), "%s/new/%s:2,%s", ex->dest,
			 m->base, info);
	else
		snprintf(final, sizeof(final), "%s/cur/%s:2,%s", ex->dest,
			 m->base, info);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ex->ret = ctl_error("%s: %s", tmp, strerror(errno));
		return 1;
	}
	ret = copy_msg(ex, m, fd);
	times[0].tv_sec = times[1].tv_sec = m->received;
	times[0].tv_nsec = times[1].tv_nsec = m->received_ns;
	if (ret == 0 && futimens(fd, times) < 0)
		ret = ctl_error("utimes %s: %s", tmp, strerror(errno));
	close(fd);
	if (ret == 0)
		ret = pending_add(ex, tmp, final);
	if (ret != 0) {
		unlink(tmp);
		ex->ret = ret;
		return 1;
	}
	ex->count++;
	ctl_progress_step(&ex->progress, 1, m->size);
	return 0;
}

static int write_keywords(struct export *ex, int64_t box_id)
{
	char *names[DBOX_MAX_KEYWORDS], buf[DBOX_MAX_KEYWORDS * 256];
	char path[4096];
	struct dbox_err err = { "" };
	int count = dbox_mailbox_keywords(ex->store, box_id, names, buf,
					  sizeof(buf), &err);
	FILE *f;

	if (count < 0)
		return ctl_error("%s", err.msg);
	if (count == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/dovecot-keywords", ex->dest);
	f = fopen(path, "we");
	if (f == NULL)
		return ctl_error("%s: %s", path, strerror(errno));
	for (int i = 0; i < count; i++) {
		if (names[i] != NULL)
			fprintf(f, "%d %s\n", i, names[i]);
	}
	if (fclose(f) != 0)
		return ctl_error("%s: %s", path, strerror(errno));
	return 0;
}

static int make_maildir(const char *dest)
{
	static const char *const subs[] = { "", "/cur", "/new", "/tmp" };
	char path[4096];

	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", dest, subs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return ctl_error("mkdir %s: %s", path, strerror(errno));
	}
	return 0;
}

int cmd_export(int argc, char **argv)
{
	struct export ex = { .ret = 0, .dest_fd = -1 };
	struct dbox_mailbox box;
	struct dbox_err err = { "" };
	uint64_t count = 0;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(export_help, stdout);
			return 0;
		}
	}
	if (argc != 4) {
		fputs(export_help, stderr);
		return 2;
	}
	ex.dest = argv[3];
	ex.buf = malloc(1 << 20);
	if (ex.buf == NULL)
		return ctl_error("out of memory");
	if (ctl_open(argv[1], true, &ex.store) != 0) {
		free(ex.buf);
		return 1;
	}
	ret = ctl_mailbox(ex.store, argv[2], false, &box);
	if (ret == 0)
		ret = make_maildir(ex.dest);
	if (ret == 0)
		ret = write_keywords(&ex, box.id);
	if (ret == 0)
		dbox_msg_count(ex.store, box.id, -1, &count, NULL);
	ctl_progress_init(&ex.progress, "exporting", count, 0);
	if (ret == 0) {
		ex.dest_fd = open(ex.dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ex.dest_fd < 0)
			ret = ctl_error("%s: %s", ex.dest, strerror(errno));
	}
	if (ret == 0 && dbox_msg_list(ex.store, box.id, 0, -1, 0, export_msg,
				      &ex, &err) < 0)
		ret = ctl_error("%s", err.msg);
	if (ret == 0)
		ret = ex.ret;
	if (flush_pending(&ex) != 0 && ret == 0)
		ret = 1;
	if (ex.dest_fd >= 0)
		close(ex.dest_fd);
	ctl_progress_end(&ex.progress);
	if (ret == 0)
		ret = ex.ret;
	if (ret == 0)
		printf("%lu messages exported to %s\n", ex.count, ex.dest);
	dbox_store_close(ex.store);
	free(ex.buf);
	return ret;
}
