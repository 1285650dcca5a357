/* utf8.h - the few UTF-8 helpers the Dovecot index reader needs.
 *
 * Pure functions on caller-owned buffers: thread-safe, no global state.
 * "Well-formed" is Unicode's definition (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
#ifndef DOVI_UTF8_H
#define DOVI_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the sequence at p (n bytes available).  Returns its length (1-4)
 * and stores the code point in *cp_r, or returns 0 if p does not start
 * with a well-formed sequence (or n == 0). */
size_t dovi_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp_r);

/* Writes cp (must be <= 0x10FFFF and not a surrogate) as UTF-8 into out;
 * returns the number of bytes (1-4). */
size_t dovi_utf8_encode(uint32_t cp, char out[4]);

/* Returns a malloc()ed, NUL-terminated copy of p[0..n) in which every
 * ill-formed part is replaced by U+FFFD, one per maximal ill-formed
 * subpart (Unicode 3.9 "best practice", which is also what Python's
 * bytes.decode("utf-8", "replace") does: the reference reader decodes
 * keyword names that way).  The copy stops at the first NUL byte, as
 * Dovecot's own string handling would.  NULL only when out of memory. */
char *dovi_utf8_sanitize(const void *p, size_t n);

#endif
