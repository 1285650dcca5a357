/* dbox/extref.h - Dovecot's external attachment references (the 'X'
 * metadata line of a dbox record, written when mail_attachment_dir is set).
 *
 * Such a record holds the message with its large MIME parts cut out; each
 * part lives in a file under the attachment directory and the X value says
 * where it goes back: a list of "<offset> <size> <options> <path>" items,
 * separated by single spaces.  offset is where the part starts in the whole
 * message, size its bytes there; options is "-" (stored as is) or a
 * combination of "B<n>" (stored base64-decoded; re-encode with n chars per
 * line) and "C" (those lines end in CRLF, else LF).  The message is rebuilt
 * as record bytes, part, record bytes, part, ... record bytes.
 *
 * Pure functions, no I/O: the parser takes any bytes (hostile input gives a
 * clean error) so that it can be fuzzed. */
#ifndef DBOX_EXTREF_H
#define DBOX_EXTREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Base64 lines longer than this are not what any mailer writes; the bound
 * keeps the arithmetic far from overflow. */
#define DBOX_EXTREF_LINE_MAX (1u << 20)

struct dbox_extref {
	uint64_t offset;        /* start of the part in the whole message */
	uint64_t size;          /* bytes of the part in the message */
	unsigned int b64_line;  /* base64 chars per line; 0: stored as is */
	bool crlf;              /* base64 lines end in CRLF */
	char *path;             /* relative to the attachment directory */
};

/* Parses an X value of len bytes (no NUL needed).  On success *refs_r is a
 * malloc'ed array of *n_r >= 1 items (free with dbox_extref_free), in
 * message order, not overlapping.  Refuses, with -EBADMSG and a reason:
 * wrong item count, numbers that are not plain decimal or overflow, items
 * out of order, unknown options, size 0, and paths that are empty,
 * absolute, contain a ".." component or a control character (a path must
 * stay inside the attachment directory).  -ENOMEM. */
int dbox_extref_parse(const char *s, size_t len, struct dbox_extref **refs_r,
		      size_t *n_r, char *err, size_t errlen);
void dbox_extref_free(struct dbox_extref *refs, size_t n);

/* The bytes a part takes in the message when its file has file_size
 * bytes: file_size when stored as is; for a base64 part, the length of
 * the encoding (b64_line chars per line, no line end after the last).  A
 * file fits its reference when this equals ref->size (Dovecot refuses any
 * other length).  UINT64_MAX for an implausible file_size (>= 2^60). */
uint64_t dbox_extref_encoded_size(const struct dbox_extref *ref,
				  uint64_t file_size);

/* The content digest Dovecot put in the part's file name
 * (mail_attachment_hash, hex of the stored file's bytes): the last path
 * component up to its first '-'.  Returns its length, 40 (SHA-1, Dovecot's
 * default) or 64 (SHA-256), with the digest in hex (lower case); 0 when it
 * is neither (another hash format: the file cannot be checked). */
size_t dbox_extref_digest(const struct dbox_extref *ref, char hex[65]);

/* For len bytes at off (< ref->size) of a base64 part: the range of the
 * decoded file they come from (*dec_off_r, *dec_len_r, whole 3-byte
 * groups except at the end of the file of file_size bytes). */
void dbox_extref_b64_range(const struct dbox_extref *ref, uint64_t file_size,
			   uint64_t off, size_t len, uint64_t *dec_off_r,
			   size_t *dec_len_r);
/* Writes those len encoded bytes into out from the decoded bytes dec
 * (dec_len bytes of the file starting at dec_off, as given by
 * dbox_extref_b64_range).  Returns 0, or -EINVAL if dec does not cover the
 * range, -ENOMEM. */
int dbox_extref_b64_render(const struct dbox_extref *ref, uint64_t off,
			   size_t len, const unsigned char *dec,
			   size_t dec_len, uint64_t dec_off, char *out);

#ifdef __cplusplus
}
#endif
#endif
