/* dovecot-log.h - Dovecot's transaction log files (dovecot-index.md 3).
 *
 * A struct dovi_log is one opened log file (.log or .log.2): its parsed
 * header and the bytes read so far.  Offsets are always file offsets; the
 * buffer may start later than 0 (base) when only new bytes were read.
 * Record framing, the size encoding, the "how far is it complete" scan and
 * the per-record validation live here; what records do is in
 * dovecot-replay.c.  Not thread-safe: owned by one reader. */
#ifndef DOVI_LOG_H
#define DOVI_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dbox/store.h"

#define DOVI_LOG_HDR_MIN 24
#define DOVI_LOG_HDR_FULL 40

/* record types (3.3) */
enum dovi_log_type {
	DOVI_T_EXPUNGE = 0x00000001,
	DOVI_T_APPEND = 0x00000002,
	DOVI_T_FLAG_UPDATE = 0x00000004,
	DOVI_T_HEADER_UPDATE = 0x00000020,
	DOVI_T_EXT_INTRO = 0x00000040,
	DOVI_T_EXT_RESET = 0x00000080,
	DOVI_T_EXT_HDR_UPDATE = 0x00000100,
	DOVI_T_EXT_REC_UPDATE = 0x00000200,
	DOVI_T_KEYWORD_UPDATE = 0x00000400,
	DOVI_T_KEYWORD_RESET = 0x00000800,
	DOVI_T_EXT_ATOMIC_INC = 0x00001000,
	DOVI_T_EXPUNGE_GUID = 0x00002000,
	DOVI_T_MODSEQ_UPDATE = 0x00008000,
	DOVI_T_EXT_HDR_UPDATE32 = 0x00010000,
	DOVI_T_INDEX_DELETED = 0x00020000,
	DOVI_T_INDEX_UNDELETED = 0x00040000,
	DOVI_T_BOUNDARY = 0x00080000,
	DOVI_T_ATTRIBUTE_UPDATE = 0x00100000,
	DOVI_T_TYPE_MASK = 0x0fffffff,
	DOVI_T_EXPUNGE_PROT = 0x0000cd90,
	DOVI_T_EXTERNAL = 0x10000000,
	DOVI_T_SYNC = 0x20000000,
};
#define DOVI_T_INVALID 0xffffffffu  /* expunge without protection bits */

struct dovi_log {
	char *path;
	int fd;                     /* kept open by the head log, else -1 */
	dev_t dev;
	ino_t ino;

	uint8_t major, minor, compat_flags;
	uint16_t hdr_size;
	uint32_t indexid, file_seq, prev_file_seq, prev_file_offset;
	uint32_t create_stamp;
	uint64_t initial_modseq;

	uint8_t *data;              /* file bytes [base, base + len) */
	uint64_t base;
	size_t len;
	/* End of the complete records.  Can exceed the file size when
	 * hdr_size does (a hostile header): then there are no records. */
	uint64_t sync_offset;
};

struct dovi_log_rec {
	uint64_t offset;
	uint32_t type;              /* as stored, with flag bits */
	const uint8_t *payload;
	size_t size;                /* payload bytes (record size - 8) */
};

/* Opens and reads path completely, parses its header and finds its
 * sync_offset.  keep_fd: keep the descriptor for later refreshes.
 * Returns 0, -ENOENT (missing), -EBADMSG (unusable; err says why) or
 * another -errno. */
int dovi_log_open(const char *path, bool keep_fd, struct dovi_log **log_r,
		  struct dbox_err *err);
void dovi_log_free(struct dovi_log *log);

/* Parses a log header (3.1) from d[0..len) into log. */
int dovi_log_parse_header(struct dovi_log *log, const uint8_t *d, size_t len,
			  struct dbox_err *err);

/* Replaces the buffer with the file's bytes from off to its end (read
 * through the kept fd) and scans them: sync_offset moves to the end of
 * the complete records after off.  off must be a record boundary. */
int dovi_log_read_from(struct dovi_log *log, uint64_t off,
		       struct dbox_err *err);

/* Decodes the size word of a record header (3.2); 0 if not valid. */
uint32_t dovi_log_decode_size(const uint8_t *p);
/* The size word for a size (for tests that build logs). */
void dovi_log_encode_size(uint32_t size, uint8_t out[4]);

/* Next record at *pos if *pos < end, as the reference reader frames them:
 * the payload is cut at the end of the data read.  Returns 1 and *rec_r,
 * 0 at end, -EBADMSG when no record header fits. */
int dovi_log_next(const struct dovi_log *log, uint64_t *pos, uint64_t end,
		  struct dovi_log_rec *rec_r, struct dbox_err *err);

/* The record type without flag bits and expunge protection, or
 * DOVI_T_INVALID for an expunge that lacks its protection bits.  Other
 * values (0, several bits) are returned as they are: they are valid
 * records of an unknown type, which replay skips. */
uint32_t dovi_log_real_type(uint32_t type);

/* The syntax checks Dovecot's log view applies to every record (3.3);
 * false means the log is corrupted from here on. */
bool dovi_log_record_valid(uint32_t real_type, const uint8_t *p, size_t n);

#endif
