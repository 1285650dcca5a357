/* fuzz-info.c - the maildir info letters after ":2,"
 * (dbox_maildir_info_parse/_format).  Invariants: parse -> format ->
 * strict parse gives the same flags and keywords; a strictly accepted
 * string is exactly what format writes. */
#include <stdbool.h>

#include "dbox/store.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_cstr(data, size), out[64];
	uint32_t flags, kw, flags2, kw2;

	for (int strict = 0; strict <= 1; strict++) {
		if (!dbox_maildir_info_parse(in, strict, &flags, &kw))
			continue;
		dbox_maildir_info_format(flags, kw, out, sizeof(out));
		FUZZ_ASSERT(dbox_maildir_info_parse(out, true, &flags2, &kw2));
		FUZZ_ASSERT(flags2 == flags && kw2 == kw);
		if (strict)
			FUZZ_ASSERT(strcmp(out, in) == 0);
	}
	free(in);
	return 0;
}
