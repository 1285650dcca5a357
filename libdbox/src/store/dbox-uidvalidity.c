/* dbox-uidvalidity.c - UIDVALIDITY allocation compatible with Dovecot.
 *
 * Dovecot keeps the last value in ROOT/dovecot-uidvalidity (8 hex digits)
 * and an empty marker file dovecot-uidvalidity.<value>; renaming the
 * marker to the next value is the only synchronisation between processes
 * (dbox-format.md 1.7).  Following the same protocol keeps our values and
 * Dovecot's apart when both create mailboxes in one tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store-private.h"

static uint32_t read_current(const char *dir)
{
	char path[PATH_MAX], buf[16] = "";
	uint64_t v;
	ssize_t n;
	int fd;

	if (dbox_path(path, sizeof(path), "%s/dovecot-uidvalidity", dir) < 0)
		return 0;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, 8);
	close(fd);
	if (n != 8 || !dbox_hex_parse(buf, 8, &v))
		return 0;
	return (uint32_t)v;
}

static void write_current(const char *dir, uint32_t value)
{
	char path[PATH_MAX], tmp[PATH_MAX], buf[16];
	int fd;

	if (dbox_path(path, sizeof(path), "%s/dovecot-uidvalidity", dir) < 0 ||
	    dbox_path(tmp, sizeof(tmp), "%s/dovecot-uidvalidity.tmp%ld", dir,
		      (long)getpid()) < 0)
		return;
	snprintf(buf, sizeof(buf), "%08x", value);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return;
	if (write(fd, buf, 8) != 8 || rename(tmp, path) < 0)
		unlink(tmp);
	close(fd);
}

static bool marker_rename(const char *dir, uint32_t from, uint32_t to)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (dbox_path(a, sizeof(a), "%s/dovecot-uidvalidity.%08x", dir,
		      from) < 0 ||
	    dbox_path(b, sizeof(b), "%s/dovecot-uidvalidity.%08x", dir,
		      to) < 0)
		return false;
	return rename(a, b) == 0;
}

static bool marker_create(const char *dir, uint32_t value)
{
	char path[PATH_MAX];
	int fd;

	if (dbox_path(path, sizeof(path), "%s/dovecot-uidvalidity.%08x", dir,
		      value) < 0)
		return false;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0444);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

uint32_t dbox_uidvalidity_next(const char *dir)
{
	uint32_t cur = read_current(dir), next;

	for (int i = 0; cur != 0 && i < 10; i++) {
		next = cur + 1 == 0 ? 1 : cur + 1;
		if (marker_rename(dir, cur, next)) {
			write_current(dir, next);
			return next;
		}
		cur = read_current(dir) == cur ? next : read_current(dir);
	}
	/* no usable state: start from the clock, as Dovecot does */
	next = (uint32_t)time(NULL);
	if (cur >= next)
		next = cur + 1;
	if (!marker_create(dir, next)) {
		/* someone else created it at the same moment; any unused
		 * value will do as long as it increases */
		next++;
		marker_create(dir, next);
	}
	write_current(dir, next);
	return next;
}
