/* mutf7.h - IMAP modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8.
 *
 * Dovecot's LAYOUT=fs stores each mailbox name in modified UTF-7 on disk
 * (dbox-format.md 1.5): "Entwürfe" is the directory "Entw&APw-rfe", "a&b"
 * is "a&-b".  The hierarchy separator '/' is printable ASCII and passes
 * through unchanged, so whole names are converted in one call.
 *
 * Acceptance follows Dovecot 2.3's decoder: printable ASCII (0x20-0x7e)
 * stands for itself, "&-" is '&', "&<modified base64>-" holds UTF-16BE.
 * Refused: raw bytes outside 0x20-0x7e, an unterminated or empty-but-not
 * "&-" shift, base64 that encodes NUL, printable ASCII or an odd number of
 * bytes, unpaired surrogates, and two shift sequences back to back
 * ("&AOQ-&APY-" must be written "&AOQA9g-").
 *
 * Functions are pure (thread-safe); results are malloc()ed and owned by
 * the caller. */
#ifndef DOVI_MUTF7_H
#define DOVI_MUTF7_H

/* UTF-8 -> modified UTF-7.  Returns 0 and *out_r, -EINVAL if utf8 is not
 * well-formed UTF-8, -ENOMEM. */
int dovi_mutf7_encode(const char *utf8, char **out_r);

/* Modified UTF-7 -> UTF-8.  Returns 0 and *out_r, -EINVAL if mutf7 is not
 * valid modified UTF-7 (see above), -ENOMEM. */
int dovi_mutf7_decode(const char *mutf7, char **out_r);

#endif
