/* msgname.h - messages by the names their files have in the view. */
#ifndef DBOXFS_MSGNAME_H
#define DBOXFS_MSGNAME_H

#include "dbox/store.h"
#include "view.h"

struct dboxfs;

/* The message `name` in cur/ or new/ of a mailbox, under that exact
 * name (the index's name checked against the view's). */
int msgname_in_sub(struct dboxfs *fs, int64_t box, enum view_sub sub,
		   const char *name, struct dbox_msg *m);
/* The message of mailbox box whose file has the name t's would have
 * (t: base, flags, keywords, in_new, new_info). */
int msgname_like(struct dboxfs *fs, int64_t box, const struct dbox_msg *t,
		 struct dbox_msg *m);
/* The message that has the name a rename to (base, info) in sub would
 * give its file (info as view_name_split, NULL for none). */
int msgname_at_target(struct dboxfs *fs, int64_t box, enum view_sub sub,
		      const char *base, const char *info, struct dbox_msg *m);

#endif
