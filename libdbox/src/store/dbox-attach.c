/* dbox-attach.c - messages whose large MIME parts Dovecot keeps outside
 * the record: put back together from mail_attachment_dir as Dovecot's
 * attachment connector does (dbox-format.md section 7; Dovecot's
 * index-attachment.c, istream-attachment-connector.c).
 *
 * A part's file is ATTACHMENT_DIR/<path from X><suffix>, the suffix being
 * "-<mailbox GUID>-<uid>" for sdbox (Dovecot links each message's
 * attachments under its own name) and empty for mdbox.  Everything is
 * checked before a byte is served, so a reader gets the whole message or
 * an error, never fewer or other bytes. */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbox/extref.h"
#include "store/dbox-attach.h"
#include "store/dbox-decompress.h"
#include "store/store-private.h"

struct layout {
	struct dbox_extref *refs;
	size_t n;
	uint64_t *file_size;
	uint64_t body_len;      /* what the record holds, uncompressed */
	char suffix[64];
	char rec_path[PATH_MAX];
};

static void layout_clear(struct layout *lay)
{
	dbox_extref_free(lay->refs, lay->n);
	free(lay->file_size);
}

static int corrupted(struct dbox_err *err, const char *path,
		     const struct dbox_msg *msg, const char *what)
{
	return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around "
			 "offset=%llu): %s", path,
			 (unsigned long long)dbox_msg_where(msg)->offset, what);
}

/* The record's metadata, where the X line is. */
static int read_record(const char *path, const struct dbox_msg *msg,
		       struct dbox_record *rec, struct dbox_err *err)
{
	char reason[256];
	struct dbox_file_hdr hdr;
	struct dbox_reader rd;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = dbox_fail(err, -errno, "open %s: %m", path);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	dbox_reader_init_fd(&rd, fd);
	if (dbox_file_hdr_read(&rd, &hdr, reason, sizeof(reason)) < 0 ||
	    dbox_record_read(&rd, &hdr, dbox_msg_where(msg)->offset,
			     (uint64_t)st.st_size, rec,
			     reason, sizeof(reason)) < 0)
		ret = corrupted(err, path, msg, reason);
	close(fd);
	return ret;
}

/* The parts must lie inside the message and the record hold the rest,
 * exactly (Dovecot reads the record's pieces with sized streams); for a
 * compressed record, the decompression checks that (copy_body). */
static int check_totals(struct layout *lay, const struct dbox_msg *msg,
			struct dbox_err *err)
{
	uint64_t parts = 0;
	char what[160];

	for (size_t i = 0; i < lay->n; i++) {
		if (lay->refs[i].offset + lay->refs[i].size > msg->size) {
			snprintf(what, sizeof(what), "external attachment at "
				 "%llu+%llu lies outside the message of %llu "
				 "bytes", (unsigned long long)lay->refs[i].offset,
				 (unsigned long long)lay->refs[i].size,
				 (unsigned long long)msg->size);
			return corrupted(err, lay->rec_path, msg, what);
		}
		parts += lay->refs[i].size;
	}
	lay->body_len = msg->size - parts;
	if (dbox_msg_where(msg)->body_size + parts == msg->size ||
	    dbox_msg_where(msg)->compression != DBOX_COMP_NONE)
		return 0;
	snprintf(what, sizeof(what), "record holds %llu bytes and its external "
		 "attachments %llu, but the message has %llu",
		 (unsigned long long)dbox_msg_where(msg)->body_size,
		 (unsigned long long)parts,
		 (unsigned long long)msg->size);
	return corrupted(err, lay->rec_path, msg, what);
}

static int set_suffix(struct dbox_store *store, const struct dbox_msg *msg,
		      struct layout *lay, struct dbox_err *err)
{
	struct dbox_mailbox box;
	int ret;

	if (dbox_msg_where(msg)->file_id != 0)
		return 0;
	ret = dbox_mailbox_get(store, msg->mailbox_id, &box, err);
	if (ret < 0)
		return ret;
	snprintf(lay->suffix, sizeof(lay->suffix), "-%s-%u", box.guid,
		 msg->uid);
	return 0;
}

static int part_path(const struct dbox_store *store, const struct layout *lay,
		     size_t i, char *buf, size_t len)
{
	return dbox_path(buf, len, "%s/%s%s", store->attachment_dir,
			 lay->refs[i].path, lay->suffix);
}

/* Files whose digest was found right, by identity: SIS links one file
 * under many names, and a message is read in many pieces, so each file is
 * hashed once (again when it changes: size, mtime or ctime). */
struct verified {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};
#define VERIFIED_MAX 128
static pthread_mutex_t verified_lock = PTHREAD_MUTEX_INITIALIZER;
static struct verified verified[VERIFIED_MAX];
static unsigned int verified_next;

static struct verified identity(const struct stat *st)
{
	return (struct verified){ st->st_dev, st->st_ino, st->st_size,
				  st->st_mtim, st->st_ctim };
}

static bool same_identity(const struct verified *a, const struct verified *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
		a->mtime.tv_sec == b->mtime.tv_sec &&
		a->mtime.tv_nsec == b->mtime.tv_nsec &&
		a->ctime.tv_sec == b->ctime.tv_sec &&
		a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static bool verified_find(const struct verified *v)
{
	bool found = false;

	pthread_mutex_lock(&verified_lock);
	for (unsigned int i = 0; i < VERIFIED_MAX && !found; i++)
		found = same_identity(&verified[i], v);
	pthread_mutex_unlock(&verified_lock);
	return found;
}

static void verified_add(const struct verified *v)
{
	pthread_mutex_lock(&verified_lock);
	verified[verified_next++ % VERIFIED_MAX] = *v;
	pthread_mutex_unlock(&verified_lock);
}

/* Hex SHA-1 (40) or SHA-256 (64) of the whole file. */
static int hash_file(int fd, size_t hex_len, char hex[65])
{
	unsigned char buf[65536], digest[SHA256_DIGEST_SIZE];
	struct sha1_ctx s1;
	struct sha256_ctx s256;
	uint64_t off = 0;
	ssize_t n;

	sha1_init(&s1);
	sha256_init(&s256);
	while ((n = pread(fd, buf, sizeof(buf), (off_t)off)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (hex_len == 40)
			sha1_update(&s1, (size_t)n, buf);
		else
			sha256_update(&s256, (size_t)n, buf);
		off += (uint64_t)n;
	}
	if (hex_len == 40)
		sha1_digest(&s1, SHA1_DIGEST_SIZE, digest);
	else
		sha256_digest(&s256, SHA256_DIGEST_SIZE, digest);
	for (size_t i = 0; i < hex_len / 2; i++)
		snprintf(hex + i * 2, 3, "%02x", digest[i]);
	return 0;
}

/* A file cut within the last base64 group, or changed in place, keeps its
 * size: the digest in its name is what tells. */
static int check_digest(int fd, const struct stat *st,
			const struct dbox_extref *ref, char got[65])
{
	struct verified v = identity(st);
	char want[65];
	size_t len = dbox_extref_digest(ref, want);
	int ret;

	got[0] = '\0';
	if (len == 0 || verified_find(&v))
		return 0;
	ret = hash_file(fd, len, got);
	if (ret < 0)
		return ret;
	if (strcmp(got, want) != 0)
		return -EILSEQ;
	verified_add(&v);
	return 0;
}

static int part_error(struct dbox_err *err, const struct layout *lay,
		      const struct dbox_msg *msg, const char *path, int e,
		      const char *got)
{
	if (e == -EILSEQ)
		return dbox_fail(err, -EIO, "%s uid %u: external attachment %s "
				 "does not hold what its name says (its digest "
				 "is %s)", lay->rec_path, msg->uid, path, got);
	return dbox_fail(err, -EIO, "%s uid %u: external attachment %s is "
			 "missing: %s", lay->rec_path, msg->uid, path,
			 strerror(-e));
}

/* One part's file is there, re-encodes to exactly its size and has the
 * contents its name says. */
static int check_part(struct dbox_store *store, const struct dbox_msg *msg,
		      struct layout *lay, size_t i, struct dbox_err *err)
{
	const struct dbox_extref *ref = &lay->refs[i];
	char path[PATH_MAX], got[65] = "";
	struct stat st;
	uint64_t enc;
	int fd = -1, e = part_path(store, lay, i, path, sizeof(path));

	if (e == 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		e = -errno;
	if (e == 0 && fstat(fd, &st) < 0)
		e = -errno;
	else if (e == 0 && !S_ISREG(st.st_mode))
		e = -EISDIR;
	enc = e == 0 ? dbox_extref_encoded_size(ref, (uint64_t)st.st_size) : 0;
	if (e == 0 && enc != ref->size) {
		close(fd);
		return dbox_fail(err, -EIO, "%s uid %u: external attachment %s "
				 "has %llu bytes, which make %llu in the "
				 "message, not %llu", lay->rec_path, msg->uid,
				 path, (unsigned long long)st.st_size,
				 (unsigned long long)enc,
				 (unsigned long long)ref->size);
	}
	if (e == 0)
		e = check_digest(fd, &st, ref, got);
	if (fd >= 0)
		close(fd);
	if (e < 0)
		return part_error(err, lay, msg, path, e, got);
	lay->file_size[i] = (uint64_t)st.st_size;
	return 0;
}

static int check_parts(struct dbox_store *store, const struct dbox_msg *msg,
		       struct layout *lay, struct dbox_err *err)
{
	int ret = 0;

	lay->file_size = calloc(lay->n, sizeof(*lay->file_size));
	if (lay->file_size == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < lay->n && ret == 0; i++)
		ret = check_part(store, msg, lay, i, err);
	return ret;
}

static int load_layout(struct dbox_store *store, const struct dbox_msg *msg,
		       const char *ext_refs, struct layout *lay,
		       struct dbox_err *err)
{
	char reason[200], what[300];
	int ret;

	if (ext_refs == NULL)
		return corrupted(err, lay->rec_path, msg, "the stored body is "
				 "not the whole message and no external "
				 "attachments are named");
	if (store->attachment_dir == NULL)
		return dbox_fail(err, -EIO, "%s uid %u: the message has %llu "
				 "bytes, %llu of them in external attachments "
				 "(Dovecot's mail_attachment_dir), and no "
				 "attachment directory is given (dboxfs -o "
				 "attachment_dir=PATH, dboxctl "
				 "--attachment-dir=PATH)", lay->rec_path,
				 msg->uid, (unsigned long long)msg->size,
				 (unsigned long long)(msg->size -
				 dbox_msg_where(msg)->body_size));
	ret = dbox_extref_parse(ext_refs, strlen(ext_refs), &lay->refs,
				&lay->n, reason, sizeof(reason));
	if (ret == -ENOMEM)
		return dbox_fail(err, ret, "out of memory");
	if (ret < 0) {
		snprintf(what, sizeof(what), "bad ext-refs metadata: %s",
			 reason);
		return corrupted(err, lay->rec_path, msg, what);
	}
	ret = check_totals(lay, msg, err);
	if (ret == 0)
		ret = set_suffix(store, msg, lay, err);
	if (ret == 0)
		ret = check_parts(store, msg, lay, err);
	return ret;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

/* len bytes at off of a part, as they are in the message. */
static int read_part_fd(int fd, const struct dbox_extref *ref,
			uint64_t file_size, void *buf, size_t len,
			uint64_t off)
{
	unsigned char *dec;
	uint64_t dec_off;
	size_t dec_len;
	int ret;

	if (ref->b64_line == 0)
		return pread_full(fd, buf, len, off);
	dbox_extref_b64_range(ref, file_size, off, len, &dec_off, &dec_len);
	dec = malloc(dec_len > 0 ? dec_len : 1);
	if (dec == NULL)
		return -ENOMEM;
	ret = pread_full(fd, dec, dec_len, dec_off);
	if (ret == 0)
		ret = dbox_extref_b64_render(ref, off, len, dec, dec_len,
					     dec_off, buf);
	free(dec);
	return ret;
}

/* One read of the whole message: [off, end) into buf. */
struct want {
	struct dbox_store *store;
	const struct dbox_msg *msg;
	const struct layout *lay;
	char *buf;
	uint64_t off, end;
	struct dbox_err *err;
};

/* Where the read overlaps the piece [ps, pe) of the message. */
static bool overlap(const struct want *w, uint64_t ps, uint64_t pe,
		    uint64_t *lo_r, size_t *len_r)
{
	uint64_t lo = ps > w->off ? ps : w->off, hi = pe < w->end ? pe : w->end;

	*lo_r = lo;
	*len_r = lo < hi ? (size_t)(hi - lo) : 0;
	return lo < hi;
}

/* Part i's bytes that the read wants. */
static int copy_part(const struct want *w, size_t i, uint64_t ps)
{
	const struct layout *lay = w->lay;
	char path[PATH_MAX];
	uint64_t lo;
	size_t len;
	int fd, ret;

	if (!overlap(w, ps, ps + lay->refs[i].size, &lo, &len))
		return 0;
	ret = part_path(w->store, lay, i, path, sizeof(path));
	fd = ret < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dbox_fail(w->err, -EIO, "%s uid %u: external attachment "
				 "%s is missing: %m", lay->rec_path,
				 w->msg->uid, path);
	ret = read_part_fd(fd, &lay->refs[i], lay->file_size[i],
			   w->buf + (lo - w->off), len, lo - ps);
	close(fd);
	if (ret == -ENOMEM)
		return dbox_fail(w->err, ret, "out of memory");
	if (ret < 0)
		return dbox_fail(w->err, -EIO, "%s uid %u: external attachment "
				 "%s: %s", lay->rec_path, w->msg->uid, path,
				 ret == -ENODATA ? "shorter than when checked" :
				 strerror(-ret));
	return 0;
}

/* Record bytes of the piece [ps, pe), which starts at bpos of the plain
 * record (size - parts bytes, stored or compressed; never the attachment
 * path again: no recursion). */
static int copy_body(const struct want *w, uint64_t ps, uint64_t pe,
		     uint64_t bpos)
{
	struct dbox_msg raw = *w->msg;
	uint64_t lo;
	size_t len;
	ssize_t n;

	if (!overlap(w, ps, pe, &lo, &len))
		return 0;
	raw.size = w->lay->body_len;
	if (dbox_msg_where(&raw)->compression == DBOX_COMP_NONE)
		n = dbox_msg_pread(w->store, &raw, w->buf + (lo - w->off), len,
				   bpos + (lo - ps), w->err);
	else
		n = dbox_decompress_pread(w->store, &raw, w->buf +
					  (lo - w->off), len, bpos + (lo - ps),
					  w->err);
	if (n == -ERANGE)
		n = -EBADMSG;
	if (n >= 0 && (size_t)n != len)
		return dbox_fail(w->err, -EBADMSG, "%s uid %u: short read",
				 w->lay->rec_path, w->msg->uid);
	return n < 0 ? (int)n : 0;
}

/* Record piece, part, record piece, ... record piece. */
static int assemble(const struct want *w)
{
	const struct layout *lay = w->lay;
	uint64_t vpos = 0, bpos = 0;
	int ret = 0;

	for (size_t i = 0; ret == 0 && i <= lay->n; i++) {
		uint64_t ps = i < lay->n ? lay->refs[i].offset : w->msg->size;

		ret = copy_body(w, vpos, ps, bpos);
		bpos += ps - vpos;
		if (ret == 0 && i < lay->n)
			ret = copy_part(w, i, ps);
		vpos = i < lay->n ? ps + lay->refs[i].size : ps;
	}
	return ret;
}

ssize_t dbox_attach_pread(struct dbox_store *store, const struct dbox_msg *msg,
			  void *buf, size_t len, uint64_t off,
			  struct dbox_err *err)
{
	struct layout lay = { 0 };
	struct dbox_record rec;
	int ret;

	if (off >= msg->size)
		return 0;
	if (len > msg->size - off)
		len = (size_t)(msg->size - off);
	ret = dbox_msg_file_path(store, msg, lay.rec_path,
				 sizeof(lay.rec_path));
	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	ret = read_record(lay.rec_path, msg, &rec, err);
	if (ret < 0)
		return ret;
	ret = load_layout(store, msg, rec.meta.ext_refs, &lay, err);
	dbox_record_clear(&rec);
	if (ret == 0)
		ret = assemble(&(struct want){ store, msg, &lay, buf, off,
					       off + len, err });
	layout_clear(&lay);
	return ret < 0 ? ret : (ssize_t)len;
}

int dbox_attach_check(struct dbox_store *store, const struct dbox_msg *msg,
		      const struct dbox_record *rec, const char *path,
		      struct dbox_err *err)
{
	struct layout lay = { 0 };
	int ret;

	if (rec->meta.ext_refs == NULL &&
	    (dbox_msg_is_plain(msg) ||
	     dbox_msg_where(msg)->compression != DBOX_COMP_NONE))
		return 0;
	snprintf(lay.rec_path, sizeof(lay.rec_path), "%s", path);
	ret = load_layout(store, msg, rec->meta.ext_refs, &lay, err);
	layout_clear(&lay);
	return ret;
}

/* The X references of msg's record (NULL: none). */
static int record_refs(struct dbox_store *store, const struct dbox_msg *msg,
		       struct layout *lay, struct dbox_err *err)
{
	char reason[200];
	struct dbox_record rec;
	int ret = dbox_msg_file_path(store, msg, lay->rec_path,
				     sizeof(lay->rec_path));

	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	ret = read_record(lay->rec_path, msg, &rec, err);
	if (ret < 0 || rec.meta.ext_refs == NULL) {
		if (ret == 0)
			dbox_record_clear(&rec);
		return ret;
	}
	if (store->attachment_dir == NULL)
		ret = dbox_fail(err, -EIO, "%s uid %u: moving a message with "
				"external attachments needs the attachment "
				"directory (dboxfs -o attachment_dir=PATH)",
				lay->rec_path, msg->uid);
	else
		ret = dbox_extref_parse(rec.meta.ext_refs,
					strlen(rec.meta.ext_refs), &lay->refs,
					&lay->n, reason, sizeof(reason));
	if (ret == -EINVAL || ret == -EBADMSG)
		ret = corrupted(err, lay->rec_path, msg, reason);
	dbox_record_clear(&rec);
	return ret;
}

/* Part i's file under the names of (mailbox_id, uid). */
static int moved_path(struct dbox_store *store, struct layout *lay, size_t i,
		      int64_t mailbox_id, uint32_t uid, char *buf,
		      size_t len, struct dbox_err *err)
{
	struct dbox_msg named = { .mailbox_id = mailbox_id, .uid = uid };
	int ret = set_suffix(store, &named, lay, err);

	if (ret == 0 && part_path(store, lay, i, buf, len) < 0)
		ret = dbox_fail(err, -ENAMETOOLONG, "attachment path");
	return ret;
}

static int link_part(const char *from, const char *to, struct dbox_err *err)
{
	int ret;

	if (link(from, to) < 0 && errno != EEXIST) {
		/* a part that is gone: the message cannot be read whole, as
		 * where it is written whole */
		if (errno == ENOENT && access(from, F_OK) < 0)
			return dbox_fail(err, -EIO, "attachment file %s is "
					 "missing", from);
		return dbox_fail(err, -errno, "link %s: %m", to);
	}
	ret = dbox_fsync_parent(to);
	if (ret < 0)
		return dbox_fail(err, ret, "fsync %s: %s", to, strerror(-ret));
	return 0;
}

/* Dovecot names an sdbox message's attachment files after its mailbox's
 * GUID, which it keeps in its index of the mailbox (the dbox-hdr
 * extension of dbox-Mails/dovecot.index*); a mailbox it has no index of
 * (made through a takeover mount) gets a random GUID when Dovecot first
 * opens it, so no name given now would be found: -EXDEV, and
 * dbox_msg_move writes the message whole there instead. */
static int dest_known(struct dbox_store *store, int64_t dest_id,
		      uint32_t dest_uid, struct dbox_err *err)
{
	static const char *const files[] = { "dovecot.index",
					     "dovecot.index.log" };
	char name[DBOX_NAME_MAX * 4 + 1], path[PATH_MAX], *slash;
	int ret;

	if (store->origin == DBOX_ORIGIN_DBOXFS)
		return 0;
	ret = dbox_mailbox_name_of(store, dest_id, name, sizeof(name), err);
	if (ret == 0 && dbox_sdbox_path(store, name, dest_uid, path,
					sizeof(path)) < 0)
		ret = dbox_fail(err, -ENAMETOOLONG, "path of message");
	if (ret < 0)
		return ret;
	slash = strrchr(path, '/');
	for (size_t i = 0; slash != NULL && i < 2; i++) {
		snprintf(slash + 1, sizeof(path) - (size_t)(slash + 1 - path),
			 "%s", files[i]);
		if (access(path, F_OK) == 0)
			return 0;
	}
	return dbox_fail(err, -EXDEV, "mailbox %s has no Dovecot index, which "
			 "would name its attachment files", name);
}

int dbox_attach_move(struct dbox_store *store, const struct dbox_msg *msg,
		     int64_t dest_id, uint32_t dest_uid, bool drop_old,
		     struct dbox_err *err)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct layout lay = { 0 };
	size_t i;
	int ret;

	if (dbox_msg_where(msg)->file_id != 0 || dbox_msg_is_plain(msg))
		return 0;
	ret = record_refs(store, msg, &lay, err);
	if (ret == 0 && lay.n > 0 && !drop_old)
		ret = dest_known(store, dest_id, dest_uid, err);
	for (i = 0; ret == 0 && i < lay.n; i++) {
		ret = moved_path(store, &lay, i, msg->mailbox_id, msg->uid,
				 from, sizeof(from), err);
		if (ret == 0 && drop_old)
			unlink(from);  /* gone already is fine */
		else if (ret == 0)
			ret = moved_path(store, &lay, i, dest_id, dest_uid, to,
					 sizeof(to), err);
		if (ret == 0 && !drop_old)
			ret = link_part(from, to, err);
	}
	/* a failed move leaves no new names behind */
	for (size_t j = 0; ret < 0 && !drop_old && j < i; j++) {
		struct dbox_err scratch;

		if (moved_path(store, &lay, j, dest_id, dest_uid, to,
			       sizeof(to), &scratch) == 0)
			unlink(to);
	}
	layout_clear(&lay);
	return ret;
}
