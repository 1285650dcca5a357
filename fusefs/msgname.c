/* msgname.c - messages by the names their files have in the view. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dboxfs.h"
#include "msgname.h"

/* The message `name` in cur/ or new/ of a mailbox, under that exact name. */
int msgname_in_sub(struct dboxfs *fs, int64_t box, enum view_sub sub,
		   const char *name, struct dbox_msg *m)
{
	char cur[DBOX_NAME_MAX + 48];
	int ret = dbox_msg_lookup_name(fs->store, box, sub == SUB_NEW,
				       name, m, NULL);

	if (ret < 0)
		return ret;
	/* the index's name is the view's: checked, as a lookup must never
	 * answer for a name readdir does not show */
	view_msg_name(m, cur, sizeof(cur));
	return strcmp(cur, name) == 0 ? 0 : -ENOENT;
}

/* The message of mailbox box whose file has the name t's would have
 * (t: base, flags, keywords, in_new, new_info). */
int msgname_like(struct dboxfs *fs, int64_t box, const struct dbox_msg *t,
		       struct dbox_msg *m)
{
	char name[DBOX_NAME_MAX + 48];

	view_msg_name(t, name, sizeof(name));
	return msgname_in_sub(fs, box, t->in_new ? SUB_NEW : SUB_CUR, name, m);
}

/* The message that has the name a rename to (base, info) in sub would
 * give its file (info as view_name_split, NULL for none). */
int msgname_at_target(struct dboxfs *fs, int64_t box, enum view_sub sub,
		      const char *base, const char *info, struct dbox_msg *m)
{
	struct dbox_msg t = { .in_new = sub == SUB_NEW };

	snprintf(t.base, sizeof(t.base), "%s", base);
	t.new_info = info != NULL;
	dbox_maildir_info_parse(info, false, &t.flags, &t.keywords);
	return msgname_like(fs, box, &t, m);
}
