/* kwimport.c - a file given a folder's dovecot-keywords name: its names
 * go into the index (see kwimport.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "backing.h"
#include "folders.h"
#include "kwimport.h"
#include "node.h"

/* the names the index's keyword table and attr_kwfile_text hold */
#define KWIMPORT_NAME_MAX 255

int64_t kwimport_target(struct dboxfs *fs, const struct view_ino *dir,
			const char *newname)
{
	if (strcmp(newname, KWFILE_NAME) != 0)
		return 0;
	return folders_dir_mailbox(fs->layout, fs->inbox_id, dir);
}

/* Dovecot's str_to_uint: digits only, no sign or space */
static bool parse_idx(const char *s, unsigned int *idx_r)
{
	unsigned long v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > 1000)
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	*idx_r = (unsigned int)v;
	return true;
}

struct kw_parse {
	char *names[DBOX_MAX_KEYWORDS];
	/* every name a line gave, also one a later line's index replaced:
	 * Dovecot skips such a name again (maildir_keywords_sync) */
	char *seen[DBOX_MAX_KEYWORDS * 4];
	size_t nseen;
};

static bool seen_name(const struct kw_parse *p, const char *name)
{
	for (size_t i = 0; i < p->nseen; i++) {
		if (strcmp(p->seen[i], name) == 0)
			return true;
	}
	return false;
}

/* One line, as maildir_keywords_sync reads it; what it would skip, and a
 * name that cannot be a keyword here (or is longer than the index keeps),
 * is skipped. */
static int parse_line(struct kw_parse *p, char *line)
{
	char *name = strchr(line, ' ');
	unsigned int idx;
	char *copy;

	if (name == NULL)
		return 0;
	*name++ = '\0';
	if (!parse_idx(line, &idx) || idx >= DBOX_MAX_KEYWORDS ||
	    !dbox_keyword_name_valid(name) ||
	    strlen(name) > KWIMPORT_NAME_MAX || seen_name(p, name) ||
	    p->nseen == sizeof(p->seen) / sizeof(p->seen[0]))
		return 0;
	copy = strdup(name);
	if (copy == NULL)
		return -ENOMEM;
	p->seen[p->nseen++] = copy;
	p->names[idx] = copy;
	return 0;
}

static int parse_file(struct kw_parse *p, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;

	while (ret == 0 && (n = getline(&line, &cap, f)) >= 0) {
		/* i_stream_read_next_line: a line without "\n" or "\r\n";
		 * an unterminated last one is none */
		if (line[n - 1] != '\n')
			break;
		line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		ret = parse_line(p, line);
	}
	if (ret == 0 && ferror(f))
		ret = -EIO;
	free(line);
	return ret;
}

int kwimport_fd(struct dboxfs *fs, int64_t box, int fd)
{
	struct kw_parse p = { .nseen = 0 };
	struct dbox_err err = { "" };
	struct stat st;
	FILE *f;
	int ret;

	ret = fstat(fd, &st) < 0 ? -errno : 0;
	if (ret == 0 && !S_ISREG(st.st_mode))
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	if (ret < 0) {
		close(fd);
		return ret;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = parse_file(&p, f);
	fclose(f);
	if (ret == 0)
		ret = dbox_mailbox_keywords_set(fs->store, box,
			(const char *const *)p.names, &err);
	if (ret < 0)
		fuse_log(FUSE_LOG_WARNING, "dboxfs: dovecot-keywords of "
			 "mailbox #%lld: %s\n", (long long)box,
			 err.msg[0] != '\0' ? err.msg : strerror(-ret));
	for (size_t i = 0; i < p.nseen; i++)
		free(p.seen[i]);
	return ret;
}

int kwimport_rename(struct dboxfs *fs, int64_t box, int dirfd,
		    const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
			O_NONBLOCK);
	int ret;

	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	ret = kwimport_fd(fs, box, fd);
	if (ret == 0 && unlinkat(dirfd, name, 0) < 0)
		ret = -errno;
	return ret;
}

int kwimport_shadow(struct dboxfs *fs, const struct view_ino *dir)
{
	enum backing_area area;
	struct stat st;
	int64_t box = kwimport_target(fs, dir, KWFILE_NAME), abox;
	int dirfd, ret;

	/* a folder with no plain-file area yet has none made for this */
	if (box == 0 || fs->readonly ||
	    backing_area_mtime(fs, box, AREA_FILES) == 0)
		return 0;
	ret = node_of(dir)->area(fs, dir, &dirfd, &area, &abox);
	if (ret < 0)
		return ret == -ENOENT ? 0 : ret;
	ret = 0;
	if (fstatat(dirfd, KWFILE_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		fuse_log(FUSE_LOG_INFO, "dboxfs: a plain dovecot-keywords of "
			 "mailbox #%lld taken as its keyword names\n",
			 (long long)box);
		ret = kwimport_rename(fs, box, dirfd, KWFILE_NAME);
	}
	close(dirfd);
	return ret;
}
