/* view.c - inode numbers and names of the maildir view. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "view.h"

bool view_ino_decode(uint64_t ino, struct view_ino *v)
{
	memset(v, 0, sizeof(*v));
	v->ino = ino;
	if (ino == VIEW_ROOT_INO) {
		v->kind = VK_ROOT;
		return true;
	}
	v->kind = (enum view_kind)(ino >> 60);
	switch (v->kind) {
	case VK_FOLDER:
	case VK_KWFILE:
		v->box = (int64_t)(ino & VIEW_MAILBOX_MAX);
		return v->box > 0 && (ino & (0xfull << 56)) == 0;
	case VK_VDIR:
		return (ino & VIEW_VDIR_ID_MASK) != 0;
	case VK_SUB:
		v->sub = (enum view_sub)((ino >> 56) & 3);
		v->box = (int64_t)(ino & VIEW_MAILBOX_MAX);
		return v->box > 0 && v->sub <= SUB_TMP;
	case VK_MSG:
		v->box = (int64_t)((ino >> 32) & VIEW_MAILBOX_MAX);
		v->uid = (uint32_t)ino;
		return v->box > 0 && v->uid > 0;
	case VK_PLAIN:
		return true;
	default:
		return false;
	}
}

const char *const view_sub_names[3] = { "cur", "new", "tmp" };

bool view_sub_of_name(const char *name, enum view_sub *sub_r)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(name, view_sub_names[i]) == 0) {
			*sub_r = (enum view_sub)i;
			return true;
		}
	}
	return false;
}

bool view_final_name(const char *name, char *base, size_t blen,
		     const char **info_r)
{
	view_name_split(name, base, blen, info_r);
	return base[0] != '\0' && base[0] != '.' &&
		strlen(base) <= DBOX_NAME_MAX;
}

void view_name_split(const char *name, char *base, size_t blen,
		     const char **info_r)
{
	const char *sep = strstr(name, ":2,");
	size_t n = sep != NULL ? (size_t)(sep - name) : strlen(name);

	if (n >= blen)
		n = blen - 1;
	memcpy(base, name, n);
	base[n] = '\0';
	*info_r = sep != NULL ? sep + 3 : NULL;
}

void view_msg_name(const struct dbox_msg *m, char *buf, size_t len)
{
	char info[40];

	if (m->in_new && !m->new_info) {
		snprintf(buf, len, "%s", m->base);
		return;
	}
	dbox_maildir_info_format(m->flags, m->keywords, info, sizeof(info));
	snprintf(buf, len, "%s:2,%s", m->base, info);
}

int view_pp_to_mailbox(const char *dirname, char *buf, size_t len)
{
	const char *p = dirname;
	size_t o = 0;

	if (strlen(dirname) > VIEW_NAME_MAX)
		return -ENAMETOOLONG;
	if (p[0] != '.' || p[1] == '\0')
		return -EINVAL;
	p++;
	/* "..NAME": a mailbox whose name starts with '.' (no maildir++
	 * mailbox name has an empty first part); Dovecot's maildir driver
	 * deletes a folder by renaming it to ..DOVECOT-TRASHED first */
	if (*p == '.') {
		if (p[1] == '\0' || p[1] == '.' || len < 2)
			return -EINVAL;
		buf[o++] = *p++;
	}
	for (; *p != '\0'; p++) {
		char c = *p;

		if (c == '.') {
			c = '/';
		} else if (c == '/') {
			/* no directory entry has one; taken as is it would be
			 * a second spelling of the mailbox ".a.b" names */
			return -EINVAL;
		} else if (c == '%') {
			/* only the spelling readdir shows: %2e would name a
			 * folder that no lookup finds */
			if (strncmp(p, "%2E", 3) == 0 && o > 0)
				c = '.';   /* a leading '.' is only "..NAME" */
			else if (strncmp(p, "%25", 3) == 0)
				c = '%';
			else
				return -EINVAL;
			p += 2;
		}
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		buf[o++] = c;
	}
	buf[o] = '\0';
	return dbox_mailbox_name_valid(buf) ? 0 : -EINVAL;
}

int view_mailbox_to_pp(const char *mailbox, char *buf, size_t len)
{
	size_t o = 0;

	if (len < 2)
		return -ENAMETOOLONG;
	buf[o++] = '.';
	for (const char *p = mailbox; *p != '\0'; p++) {
		bool escape = (*p == '.' && p != mailbox) || *p == '%';
		size_t n = escape ? 3 : 1;

		if (o + n > VIEW_NAME_MAX || o + n >= len)
			return -ENAMETOOLONG;
		if (*p == '/')
			buf[o] = '.';
		else if (escape)
			snprintf(buf + o, len - o, "%%%02X", (unsigned char)*p);
		else
			buf[o] = *p;
		o += n;
	}
	buf[o] = '\0';
	return 0;
}
