/* dindex-stamp.c - remembers that an index file passed its check
 * (dindex-stamp.h says why and what it gives up). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/dindex-stamp.h"

#define STAMP_SUFFIX "-checked"
#define STAMP_LEN 160

static bool side_path(const char *path, const char *suffix, char *buf,
		      size_t len)
{
	int n = snprintf(buf, len, "%s%s", path, suffix);

	return n > 0 && (size_t)n < len;
}

/* The line a stamp holds for st; "" if it cannot be made. */
static void stamp_line(const struct stat *st, char *buf, size_t len)
{
	snprintf(buf, len, "dboxfs-index-checked 1 %" PRIu64 " %" PRIu64
		 " %" PRId64 " %" PRId64 ".%09ld %" PRId64 ".%09ld\n",
		 (uint64_t)st->st_dev, (uint64_t)st->st_ino,
		 (int64_t)st->st_size, (int64_t)st->st_mtim.tv_sec,
		 st->st_mtim.tv_nsec, (int64_t)st->st_ctim.tv_sec,
		 st->st_ctim.tv_nsec);
}

static bool wal_exists(const char *path)
{
	char wal[4096];
	struct stat st;

	/* an empty one holds no pages (a refused open leaves one); unknown
	 * counts as present: the check then runs */
	if (!side_path(path, "-wal", wal, sizeof(wal)))
		return true;
	if (stat(wal, &st) == 0)
		return st.st_size > 0;
	return errno != ENOENT;
}

bool dindex_stamp_valid(const char *path)
{
	char sp[4096], want[STAMP_LEN], have[STAMP_LEN + 1];
	struct stat st;
	FILE *f;
	size_t n;

	if (!side_path(path, STAMP_SUFFIX, sp, sizeof(sp)) ||
	    stat(path, &st) < 0 || !S_ISREG(st.st_mode) || wal_exists(path))
		return false;
	f = fopen(sp, "re");
	if (f == NULL)
		return false;
	n = fread(have, 1, sizeof(have) - 1, f);
	fclose(f);
	have[n] = '\0';
	stamp_line(&st, want, sizeof(want));
	return strcmp(have, want) == 0;
}

void dindex_stamp_write(const char *path)
{
	char sp[4096], tmp[4096], line[STAMP_LEN];
	struct stat st;
	FILE *f;
	bool ok;

	if (!side_path(path, STAMP_SUFFIX, sp, sizeof(sp)) ||
	    !side_path(path, STAMP_SUFFIX ".tmp", tmp, sizeof(tmp)) ||
	    wal_exists(path) || stat(path, &st) < 0)
		return;
	stamp_line(&st, line, sizeof(line));
	f = fopen(tmp, "we");
	if (f == NULL)
		return;
	ok = fputs(line, f) >= 0;
	ok = fclose(f) == 0 && ok;
	/* rename: a torn stamp would only fail to match, but a reader
	 * should never see half of one */
	if (!ok || rename(tmp, sp) < 0)
		unlink(tmp);
}
