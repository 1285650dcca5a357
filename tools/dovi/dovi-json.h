/* dovi-json.h - the little JSON output the dboxfs-dovecot-index tool needs.
 *
 * Strings are written as UTF-8 with the escapes JSON requires (quote,
 * backslash, control characters); the reader's strings are valid UTF-8
 * already.  Stateless, so thread-safe per FILE. */
#ifndef DOVI_JSON_H
#define DOVI_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A JSON string literal. */
void dovi_json_str(FILE *f, const char *s);
/* "key": (with the leading comma unless first) */
void dovi_json_key(FILE *f, const char *key, int first);
/* Lower-case hex of bytes as a JSON string. */
void dovi_json_hex(FILE *f, const uint8_t *p, size_t n);

#endif
