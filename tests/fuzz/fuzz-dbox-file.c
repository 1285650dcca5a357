/* fuzz-dbox-file.c - a whole dbox file (sdbox u.N / mdbox m.N): the file
 * header line, then record after record (message header, body skipped by
 * its size, post magic, metadata) as the store's scanner reads them
 * (libdbox/src/format/dbox-file.c), through an in-memory reader.
 * Invariants: every record lies inside the file and after the previous
 * one; a clean refusal is -EBADMSG with a reason; the header line and
 * the message header format and parse back to the same values. */
#include <errno.h>

#include "dbox/format.h"
#include "fuzz.h"

struct mem {
	const uint8_t *p;
	size_t len;
};

static int mem_pread(void *ctx, void *buf, size_t len, uint64_t off,
		     size_t *n_r)
{
	const struct mem *m = ctx;
	size_t n = off < m->len ? m->len - (size_t)off : 0;

	if (n > len)
		n = len;
	if (n > 0)
		memcpy(buf, m->p + off, n);
	*n_r = n;
	return 0;
}

static void check_msg_hdr(const uint8_t *data, size_t size)
{
	unsigned char out[DBOX_MSG_HEADER_SIZE];
	uint64_t body, body2;
	char err[128];

	if (size < DBOX_MSG_HEADER_SIZE ||
	    dbox_msg_hdr_parse(data, DBOX_MSG_HEADER_SIZE, &body, err,
			       sizeof(err)) < 0)
		return;
	dbox_msg_hdr_format(out, body);
	FUZZ_ASSERT(dbox_msg_hdr_parse(out, sizeof(out), &body2, err,
				       sizeof(err)) == 0 && body2 == body);
}

static void check_hdr(const struct dbox_file_hdr *hdr, size_t size)
{
	struct dbox_file_hdr h2;
	char line[64], err[128];
	size_t n;

	FUZZ_ASSERT(hdr->length >= 2 && hdr->length <= size &&
		    hdr->length <= DBOX_FILE_HEADER_MAX);
	FUZZ_ASSERT(hdr->version >= 1 && hdr->version <= 2 &&
		    hdr->msg_hdr_size >= DBOX_MSG_HEADER_SIZE);
	n = dbox_file_hdr_format(line, sizeof(line), hdr->create_time);
	FUZZ_ASSERT(n < sizeof(line));
	FUZZ_ASSERT(dbox_file_hdr_parse(line, n, &h2, err, sizeof(err)) == 0);
	FUZZ_ASSERT(h2.create_time == hdr->create_time && h2.length == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = { data, size };
	struct dbox_reader rd = { mem_pread, &m };
	struct dbox_file_hdr hdr;
	char err[256] = "";
	uint64_t off;
	int ret;

	check_msg_hdr(data, size);
	ret = dbox_file_hdr_read(&rd, &hdr, err, sizeof(err));
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG);
	if (ret < 0) {
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	check_hdr(&hdr, size);
	for (off = hdr.length; off < size;) {
		struct dbox_record rec;

		err[0] = '\0';
		ret = dbox_record_read(&rd, &hdr, off, size, &rec, err,
				       sizeof(err));
		FUZZ_ASSERT(ret == 0 || ret == -EBADMSG);
		if (ret < 0) {
			FUZZ_ASSERT(err[0] != '\0');
			break;
		}
		FUZZ_ASSERT(rec.offset == off &&
			    rec.body_offset == off + hdr.msg_hdr_size);
		FUZZ_ASSERT(rec.body_offset + rec.body_size +
			    DBOX_MAGIC_POST_LEN < rec.end && rec.end <= size);
		FUZZ_ASSERT(rec.compression <= DBOX_COMP_ZSTD &&
			    dbox_compression_name(rec.compression) != NULL);
		off = rec.end;
		dbox_record_clear(&rec);
	}
	return 0;
}
