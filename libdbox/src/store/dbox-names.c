/* dbox-names.c - mailbox names on disk: Dovecot's LAYOUT=fs keeps each
 * name in modified UTF-7 with '/' between the hierarchy parts
 * (dbox-format.md 1.5).  The codec is the Dovecot index reader's; these
 * wrappers give the store's callers fixed buffers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot/mutf7.h"
#include "store/store-private.h"

static int copy_out(int ret, char *s, char *buf, size_t len)
{
	size_t n;

	if (ret < 0)
		return ret;
	n = strlen(s);
	if (n >= len) {
		free(s);
		return -ENAMETOOLONG;
	}
	memcpy(buf, s, n + 1);
	free(s);
	return 0;
}

int dbox_name_to_storage(const char *name, char *buf, size_t len)
{
	char *s = NULL;
	int ret = dovi_mutf7_encode(name, &s);

	return copy_out(ret, s, buf, len);
}

int dbox_storage_to_name(const char *storage, char *buf, size_t len)
{
	char *s = NULL;
	int ret = dovi_mutf7_decode(storage, &s);

	return copy_out(ret, s, buf, len);
}
