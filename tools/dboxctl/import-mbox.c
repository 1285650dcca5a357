/* import-mbox.c - dboxctl import of an mbox file: its messages saved
 * one by one from a mapping dropped behind the reader. */
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

int import_mbox(struct import *im, const char *path)
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
		if (import_interrupted) {
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

