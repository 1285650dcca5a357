/* fuzz.h - shared bits of the libFuzzer targets: an invariant check that
 * aborts (libFuzzer then saves the input as a crash) and a NUL-terminated
 * copy of the input for parsers that take C strings. */
#ifndef DBOXFS_FUZZ_H
#define DBOXFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
			__LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* The input up to its first NUL, as a malloc'ed C string. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *s = malloc(n + 1);

	FUZZ_ASSERT(s != NULL);
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

#endif
