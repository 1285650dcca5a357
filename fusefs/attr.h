/* attr.h - attributes of the nodes of the view. */
#ifndef DBOXFS_ATTR_H
#define DBOXFS_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "view.h"

/* The text of a mailbox's dovecot-keywords file; its length or -errno. */
int attr_kwfile_text(int64_t box, char *buf, size_t len);
bool attr_has_keywords(int64_t box);
/* Bits (1 << enum view_sub) of the subdirectories a mailbox shows. */
unsigned int attr_subdirs_of(int64_t box);
/* Attributes of cur/, new/ or tmp/ of a mailbox. */
int attr_sub(const struct view_ino *v, uint64_t ino, struct stat *st);

#endif
