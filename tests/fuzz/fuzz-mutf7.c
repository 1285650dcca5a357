/* fuzz-mutf7.c - modified UTF-7 <-> UTF-8 (libdbox/src/dovecot/mutf7.c).
 * Invariants: what the decoder accepts encodes back to the same bytes
 * (one spelling per name); what the encoder accepts decodes back. */
#include <errno.h>

#include "fuzz.h"
#include "dovecot/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_cstr(data, size), *a = NULL, *b = NULL;
	int ret = dovi_mutf7_decode(in, &a);

	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		FUZZ_ASSERT(dovi_mutf7_encode(a, &b) == 0);
		FUZZ_ASSERT(strcmp(b, in) == 0);
		free(a);
		free(b);
		a = b = NULL;
	}
	ret = dovi_mutf7_encode(in, &a);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		FUZZ_ASSERT(dovi_mutf7_decode(a, &b) == 0);
		FUZZ_ASSERT(strcmp(b, in) == 0);
	}
	free(a);
	free(b);
	free(in);
	return 0;
}
