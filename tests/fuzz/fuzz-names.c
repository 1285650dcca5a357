/* fuzz-names.c - the maildir++ folder name codec of the daemon
 * (fusefs/view.c view_pp_to_mailbox / view_mailbox_to_pp; view.c needs
 * no FUSE and is compiled into this target).  Invariants: a folder name
 * that decodes encodes back to itself (one spelling per mailbox); a valid
 * mailbox name that encodes decodes back to itself; neither ever writes a
 * name longer than VIEW_NAME_MAX.  Small buffers too: -ENAMETOOLONG,
 * never a name cut short. */
#include <errno.h>

#include "fuzz.h"
#include "view.h"

static void check_pp(const char *in, size_t len)
{
	char box[VIEW_NAME_MAX + 2], pp[VIEW_NAME_MAX + 2];
	int ret = view_pp_to_mailbox(in, box, len);

	FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -ENAMETOOLONG);
	if (ret != 0)
		return;
	FUZZ_ASSERT(strlen(box) < len && dbox_mailbox_name_valid(box));
	FUZZ_ASSERT(view_mailbox_to_pp(box, pp, sizeof(pp)) == 0);
	FUZZ_ASSERT(strcmp(pp, in) == 0);
}

static void check_box(const char *in, size_t len)
{
	char box[VIEW_NAME_MAX + 2], pp[VIEW_NAME_MAX + 2];
	int ret = view_mailbox_to_pp(in, pp, len);

	FUZZ_ASSERT(ret == 0 || ret == -ENAMETOOLONG);
	if (ret != 0 || !dbox_mailbox_name_valid(in))
		return;
	FUZZ_ASSERT(strlen(pp) < len && strlen(pp) <= VIEW_NAME_MAX);
	FUZZ_ASSERT(view_pp_to_mailbox(pp, box, sizeof(box)) == 0);
	FUZZ_ASSERT(strcmp(box, in) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_cstr(data, size);
	/* the first byte also picks a buffer size, to hit the bounds */
	size_t small = size > 0 ? 1 + data[0] % 64 : 1;

	check_pp(in, VIEW_NAME_MAX + 2);
	check_pp(in, small);
	check_box(in, VIEW_NAME_MAX + 2);
	check_box(in, small);
	free(in);
	return 0;
}
