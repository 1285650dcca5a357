/* dbox/format.h - the dbox v2 file format (Dovecot sdbox u.N / mdbox m.N).
 *
 * Pure parsing and formatting; no I/O except through a caller-supplied
 * positional reader, so the same code serves tools (plain pread) and the
 * daemon (the async fs layer's blocking wrapper).  See
 * shared/spec/dbox-format.md section 2 for the grammar.
 *
 * Corruption is reported as -EBADMSG with a message naming the offset, in
 * the words Dovecot uses where it has them.  All functions are reentrant.
 */
#ifndef DBOX_FORMAT_H
#define DBOX_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DBOX_VERSION 2
#define DBOX_MSG_HEADER_SIZE 30
#define DBOX_MAGIC_PRE "\001\002"
#define DBOX_MAGIC_POST "\n\001\003\n"
#define DBOX_MAGIC_POST_LEN 4
/* A header line longer than this is garbage, not a header. */
#define DBOX_FILE_HEADER_MAX 1024

enum dbox_meta_key {
	DBOX_META_GUID = 'G',
	DBOX_META_RECEIVED = 'R',
	DBOX_META_VSIZE = 'V',
	DBOX_META_PSIZE = 'Z',
	DBOX_META_ORIG_MAILBOX = 'B',
	DBOX_META_POP3_UIDL = 'P',
	DBOX_META_POP3_ORDER = 'O',
	DBOX_META_EXT_REF = 'X',
	/* dboxfs extension: the maildir base name a message was delivered
	 * under, so that names survive a rebuild of the index.  Dovecot keeps
	 * unknown upper-case keys verbatim (purge copies every line). */
	DBOX_META_MAILDIR_BASE = 'N',
	/* dboxfs extension: a line of '_' that keeps room in a record's
	 * metadata, so that B can be rewritten in place when the message
	 * moves to another mailbox (Dovecot ignores unknown keys). */
	DBOX_META_PAD = '_',
};

/* Bytes of B line plus padding that dboxfs's own records reserve. */
#define DBOX_META_ORIG_ROOM 96

enum dbox_compression {
	DBOX_COMP_NONE = 0,
	DBOX_COMP_GZ,
	DBOX_COMP_BZ2,
	DBOX_COMP_XZ,
	DBOX_COMP_LZ4,
	DBOX_COMP_ZSTD,
};

struct dbox_file_hdr {
	unsigned int version;      /* 1 or 2 */
	unsigned int msg_hdr_size; /* M, >= 30 */
	int64_t create_time;       /* C, 0 when absent */
	unsigned int length;       /* bytes of the header line incl. its LF */
};

/* Parsed metadata block.  Known keys are decoded (first line wins, as in
 * Dovecot); every other line - unknown keys and repeated known keys - is
 * kept verbatim in `extra` ("K...\n" lines) so that it can be written back
 * unchanged.  Strings are NUL-terminated and owned by the struct. */
struct dbox_meta {
	char *guid;
	char *orig_mailbox;
	char *pop3_uidl;
	char *pop3_order;
	char *ext_refs;
	char *maildir_base;
	int64_t received;
	uint64_t vsize, psize;
	bool has_received, has_vsize, has_psize;
	bool bad_number;           /* R, V or Z present but not hex */
	size_t pad;                /* format only: a pad line of this many
				    * bytes (incl. LF) before the end, >= 2 */
	char *extra;
	size_t extra_len;
};

/* One record (message) of a dbox file. */
struct dbox_record {
	uint64_t offset;           /* start of the message header */
	unsigned int hdr_size;
	uint64_t body_offset;
	uint64_t body_size;        /* stored bytes */
	uint64_t end;              /* first byte after the record */
	enum dbox_compression compression;
	struct dbox_meta meta;
};

/* Positional reader: read up to len bytes at off into buf; *n_r < len only
 * at end of file.  Returns 0 or -errno. */
struct dbox_reader {
	int (*pread)(void *ctx, void *buf, size_t len, uint64_t off,
		     size_t *n_r);
	void *ctx;
};

/* A dbox_reader over a plain file descriptor (blocking pread). */
void dbox_reader_init_fd(struct dbox_reader *rd, int fd);

/* File header line.  Returns 0, -EAGAIN when buf holds no complete line
 * (and is shorter than DBOX_FILE_HEADER_MAX), or -EBADMSG. */
int dbox_file_hdr_parse(const char *buf, size_t len, struct dbox_file_hdr *hdr,
			char *err, size_t errlen);
/* Writes "2 M1e C<hex>\n"; returns its length (< 40). */
size_t dbox_file_hdr_format(char *buf, size_t size, int64_t create_time);
int dbox_file_hdr_read(const struct dbox_reader *rd, struct dbox_file_hdr *hdr,
		       char *err, size_t errlen);

/* Message header: checks what Dovecot checks (pre magic, final LF) and,
 * unlike Dovecot which silently reads a bad size as 0, refuses a size
 * field that is not 16 hex digits. */
int dbox_msg_hdr_parse(const unsigned char *buf, unsigned int hdr_size,
		       uint64_t *body_size_r, char *err, size_t errlen);
void dbox_msg_hdr_format(unsigned char out[DBOX_MSG_HEADER_SIZE],
			 uint64_t body_size);

/* Metadata lines (after the post magic).  Returns 0 with *consumed_r =
 * bytes up to and including the closing empty line, -EAGAIN if buf ends
 * before it, -ENOMEM. */
int dbox_meta_parse(const char *buf, size_t len, struct dbox_meta *meta,
		    size_t *consumed_r);
void dbox_meta_clear(struct dbox_meta *meta);
int dbox_meta_copy(struct dbox_meta *dst, const struct dbox_meta *src);
/* Formats post magic + lines in Dovecot's order (Z R V P O G B X), then N
 * and the verbatim extra lines, then the empty line.  Returns a malloc'ed
 * buffer and its length in *len_r, or NULL on ENOMEM. */
char *dbox_meta_format(const struct dbox_meta *meta, size_t *len_r);
/* The metadata lines `lines` (len bytes, from after the post magic up to
 * and including the closing empty line) with B set to orig_mailbox, into
 * out (len bytes): the first B line is replaced where it stands (added
 * last if there is none), pad lines give or take the difference, every
 * other line stays.  -ENOSPC if the result cannot be exactly len bytes,
 * -EINVAL if the lines do not end where len says. */
int dbox_meta_set_orig_mailbox(const char *lines, size_t len,
			       const char *orig_mailbox, char *out);
/* Value strings must not contain LF (metadata is line based). */
bool dbox_meta_value_valid(const char *value);

/* Read the record at `offset` of a file whose header is `hdr` and whose size
 * is file_size: message header, post magic, metadata.  Never scans for
 * magic bytes: the body is skipped by its size.  On success fills *rec
 * (free with dbox_record_clear).  -EBADMSG with "offset=N: reason".
 * rec->compression is set only for a record with a Z key (Dovecot's zlib
 * plugin writes one with every body it compresses). */
int dbox_record_read(const struct dbox_reader *rd,
		     const struct dbox_file_hdr *hdr, uint64_t offset,
		     uint64_t file_size, struct dbox_record *rec,
		     char *err, size_t errlen);
void dbox_record_clear(struct dbox_record *rec);

/* Compression detection by leading bytes of a body (Dovecot's zlib
 * plugin sniffs the same magics). */
enum dbox_compression dbox_compression_detect(const unsigned char *buf,
					      size_t len);
const char *dbox_compression_name(enum dbox_compression c);

/* Virtual size (LF counted as CRLF) computed incrementally over chunks. */
struct dbox_vsize {
	uint64_t size, vsize;
	bool last_cr;
};
void dbox_vsize_update(struct dbox_vsize *v, const void *buf, size_t len);

/* Hex helpers used by the format: lower-case output, case-insensitive
 * input.  dbox_hex_parse returns false for an empty or non-hex string or
 * overflow. */
bool dbox_hex_parse(const char *s, size_t len, uint64_t *value_r);

/* A new message or mailbox GUID: 32 lower-case hex digits + NUL. */
void dbox_guid_generate(char out[33]);

#ifdef __cplusplus
}
#endif
#endif
