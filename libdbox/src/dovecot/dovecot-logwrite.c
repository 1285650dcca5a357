/* dovecot-logwrite.c - appends to Dovecot's transaction log (see
 * dovecot-logwrite.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dovecot/dovecot-log.h"
#include "dovecot/dovecot-logwrite.h"
#include "util/util.h"

/* A log that keeps being replaced while we lock it: give up after this
 * many reopens (Dovecot retries without a bound, but it also rotates). */
#define LOGWRITE_REOPENS 8
/* offset of log_file_tail_offset in the base header (dovecot-index.md 2.2) */
#define LOG_TAIL_OFFSET 64

struct dovi_logwrite {
	uint8_t *buf;               /* the records, without a boundary */
	size_t len, cap;
	unsigned count;
	bool failed;                /* a record could not be added */
	bool synced;                /* a sync's: the tail offset follows */
	bool expect;                /* only onto a log ending at exp_end */
	uint32_t exp_seq;
	uint64_t exp_end[2];
	uint32_t done_seq;          /* where the commit wrote: file_seq */
	uint64_t done_start, done_end;  /* and the offsets it wrote */
};

struct dovi_logwrite *dovi_logwrite_new(void)
{
	return calloc(1, sizeof(struct dovi_logwrite));
}

void dovi_logwrite_free(struct dovi_logwrite *w)
{
	if (w == NULL)
		return;
	free(w->buf);
	free(w);
}

unsigned dovi_logwrite_count(const struct dovi_logwrite *w)
{
	return w->count;
}

void dovi_logwrite_set_synced(struct dovi_logwrite *w)
{
	w->synced = true;
}

void dovi_logwrite_expect(struct dovi_logwrite *w, uint32_t seq,
			  uint64_t end1, uint64_t end2)
{
	w->expect = true;
	w->exp_seq = seq;
	w->exp_end[0] = end1;
	w->exp_end[1] = end2;
}

void dovi_logwrite_end(const struct dovi_logwrite *w, uint32_t *seq_r,
		       uint64_t *start_r, uint64_t *end_r)
{
	*seq_r = w->done_seq;
	*start_r = w->done_start;
	*end_r = w->done_end;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Room for n more bytes (zeroed), or NULL (remembered: the commit then
 * fails rather than write half a change). */
static uint8_t *grow(struct dovi_logwrite *w, size_t n)
{
	uint8_t *p;

	if (w->failed)
		return NULL;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;

		while (cap < w->len + n)
			cap *= 2;
		p = realloc(w->buf, cap);
		if (p == NULL) {
			w->failed = true;
			return NULL;
		}
		w->buf = p;
		w->cap = cap;
	}
	p = w->buf + w->len;
	memset(p, 0, n);
	w->len += n;
	return p;
}

/* A record header for a payload of n bytes (a multiple of 4); returns
 * where the payload goes. */
static uint8_t *record(struct dovi_logwrite *w, uint32_t type, size_t n)
{
	uint8_t *p = grow(w, 8 + n);

	if (p == NULL)
		return NULL;
	dovi_log_encode_size((uint32_t)(8 + n), p);
	put32(p + 4, type);
	w->count++;
	return p + 8;
}

void dovi_logwrite_append_add(struct dovi_logwrite *w, uint32_t uid,
			      uint8_t flags)
{
	uint8_t *p = record(w, DOVI_T_APPEND | DOVI_T_EXTERNAL, 8);

	if (p == NULL)
		return;
	put32(p, uid);
	p[4] = flags;
}

void dovi_logwrite_ext_rec_add(struct dovi_logwrite *w, uint32_t uid,
			       const void *data, size_t len)
{
	uint8_t *p = record(w, DOVI_T_EXT_REC_UPDATE,
			    (4 + len + 3) & ~(size_t)3);

	if (p == NULL)
		return;
	put32(p, uid);
	memcpy(p + 4, data, len);
}

void dovi_logwrite_flags_add(struct dovi_logwrite *w, uint32_t uid1,
			     uint32_t uid2, uint8_t add, uint8_t remove)
{
	uint8_t *p = record(w, DOVI_T_FLAG_UPDATE, 12);

	if (p == NULL)
		return;
	put32(p, uid1);
	put32(p + 4, uid2);
	p[8] = add;
	p[9] = remove;
	/* p[10] modseq_inc_flag: 0, the modseq follows from the change */
}

void dovi_logwrite_keyword_add(struct dovi_logwrite *w, bool add,
			       const char *name, uint32_t uid1,
			       uint32_t uid2)
{
	size_t nlen = strlen(name), padded = (4 + nlen + 3) & ~(size_t)3;
	uint8_t *p;

	if (nlen == 0 || nlen > UINT16_MAX) {
		w->failed = true;   /* Dovecot would call the record corrupt */
		return;
	}
	p = record(w, DOVI_T_KEYWORD_UPDATE, padded + 8);
	if (p == NULL)
		return;
	p[0] = add ? 0 : 1;
	p[2] = (uint8_t)nlen;
	p[3] = (uint8_t)(nlen >> 8);
	memcpy(p + 4, name, nlen);
	put32(p + padded, uid1);
	put32(p + padded + 4, uid2);
}

void dovi_logwrite_expunge_add(struct dovi_logwrite *w, uint32_t uid,
			       const uint8_t guid[16])
{
	uint8_t *p = record(w, DOVI_T_EXPUNGE_GUID | DOVI_T_EXPUNGE_PROT |
			    DOVI_T_EXTERNAL, 20);

	if (p == NULL)
		return;
	put32(p, uid);
	memcpy(p + 4, guid, 16);
}

void dovi_logwrite_ext_intro_add(struct dovi_logwrite *w, const char *name,
				 uint32_t reset_id, uint32_t hdr_size,
				 uint16_t record_size, uint16_t record_align)
{
	size_t nlen = strlen(name), padded = (20 + nlen + 3) & ~(size_t)3;
	uint8_t *p;

	if (nlen == 0 || nlen > UINT16_MAX) {
		w->failed = true;   /* Dovecot would call the intro corrupt */
		return;
	}
	p = record(w, DOVI_T_EXT_INTRO, padded);
	if (p == NULL)
		return;
	/* by name: the position in Dovecot's list is the one of its own
	 * main file, which may differ from what a replay gives */
	put32(p, 0xffffffffu);
	put32(p + 4, reset_id);
	put32(p + 8, hdr_size);
	p[12] = (uint8_t)record_size;
	p[13] = (uint8_t)(record_size >> 8);
	p[14] = (uint8_t)record_align;
	p[15] = (uint8_t)(record_align >> 8);
	p[16] = 0x01;   /* NO_SHRINK, as every current writer */
	p[18] = (uint8_t)nlen;
	p[19] = (uint8_t)(nlen >> 8);
	memcpy(p + 20, name, nlen);
}

void dovi_logwrite_ext_hdr_add(struct dovi_logwrite *w, uint16_t offset,
			       const void *data, size_t len)
{
	uint8_t *p;

	if (len == 0 || offset + len > UINT16_MAX) {
		w->failed = true;   /* needs EXT_HDR_UPDATE32, never ours */
		return;
	}
	p = record(w, DOVI_T_EXT_HDR_UPDATE, (4 + len + 3) & ~(size_t)3);
	if (p == NULL)
		return;
	p[0] = (uint8_t)offset;
	p[1] = (uint8_t)(offset >> 8);
	p[2] = (uint8_t)len;
	p[3] = (uint8_t)(len >> 8);
	memcpy(p + 4, data, len);
}

void dovi_logwrite_header_add(struct dovi_logwrite *w, uint16_t offset,
			      uint32_t value)
{
	uint8_t *p = record(w, DOVI_T_HEADER_UPDATE | DOVI_T_EXTERNAL, 8);

	if (p == NULL)
		return;
	put32(p, offset | 4u << 16);
	put32(p + 4, value);
}

void dovi_logwrite_atomic_inc_add(struct dovi_logwrite *w, uint32_t uid,
				  int32_t diff)
{
	uint8_t *p = record(w, DOVI_T_EXT_ATOMIC_INC, 8);

	if (p == NULL)
		return;
	put32(p, uid);
	put32(p + 4, (uint32_t)diff);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Dovecot's log lock: an fcntl write lock on the whole file.  An open
 * file description lock conflicts with Dovecot's process locks and, unlike
 * them, is not dropped when another descriptor of this process on the
 * same file (the follower's reader) is closed. */
static int lock_wait(int fd, const char *path, unsigned timeout_ms,
		     struct dbox_err *err)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	uint64_t deadline = now_ms() + timeout_ms;
	long step_ms = 1;

	while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EACCES)
			return dbox_fail(err, -errno, "lock %s: %m", path);
		if (now_ms() >= deadline)
			return dbox_fail(err, -ETIMEDOUT, "%s stayed locked "
					 "for %u ms", path, timeout_ms);
		/* nothing to wait on but the lock itself: poll it */
		nanosleep(&(struct timespec){ 0, step_ms * 1000000 }, NULL);
		step_ms = step_ms < 32 ? step_ms * 2 : step_ms;
	}
	return 0;
}

/* 1 if fd is still the file at path (Dovecot may have rotated the log
 * while we waited for the lock), 0 if not, -errno. */
static int still_current(int fd, const char *path, struct dbox_err *err)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return dbox_fail(err, -errno, "fstat %s: %m", path);
	if (stat(path, &b) < 0)
		return errno == ENOENT ? 0 :
			dbox_fail(err, -errno, "stat %s: %m", path);
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Where the log says its backend has synced to: the value of its last
 * record when that is the tail offset's update (what a sync writes last),
 * its header size when it has no records, else 0 (unknown). */
static uint64_t tail_of(const struct dovi_log *log)
{
	struct dovi_log_rec rec, last = { 0 };
	uint64_t pos = log->hdr_size;

	if (pos >= log->sync_offset)
		return log->hdr_size;
	while (dovi_log_next(log, &pos, log->sync_offset, &rec, NULL) == 1)
		last = rec;
	if (dovi_log_real_type(last.type) != DOVI_T_HEADER_UPDATE ||
	    last.size != 8 || last.payload[0] != LOG_TAIL_OFFSET ||
	    last.payload[1] != 0 || last.payload[2] != 4 ||
	    last.payload[3] != 0)
		return 0;
	return (uint64_t)last.payload[4] | (uint64_t)last.payload[5] << 8 |
		(uint64_t)last.payload[6] << 16 |
		(uint64_t)last.payload[7] << 24;
}

/* The end of the log where the transaction goes: the end of the file,
 * which must be the end of its complete records (what Dovecot's readers
 * stop at; anything past it would hide our records from them). */
static int append_offset(int fd, const char *path,
			 const struct dovi_logwrite *w, uint64_t *off_r,
			 uint32_t *seq_r, struct dbox_err *err)
{
	struct dovi_log *log = NULL;
	struct stat st;
	int ret = dovi_log_open(path, false, &log, err);

	if (ret < 0)
		return ret == -ENOENT ? -ESTALE : ret;
	if (fstat(fd, &st) < 0)
		ret = dbox_fail(err, -errno, "fstat %s: %m", path);
	else if (st.st_dev != log->dev || st.st_ino != log->ino)
		ret = -ESTALE;  /* replaced since still_current() */
	else if (log->indexid == 0)
		ret = dbox_fail(err, -EBADMSG, "%s is marked corrupted", path);
	else if (log->sync_offset != log->len ||
		 (uint64_t)st.st_size != log->len)
		ret = dbox_fail(err, -EBADMSG, "%s ends in an unfinished "
				"transaction", path);
	else if (w->expect && (log->file_seq != w->exp_seq ||
				(log->len != w->exp_end[0] &&
				 log->len != w->exp_end[1])))
		/* another writer came first: what we add may no longer
		 * fit (a uid it gave meanwhile) */
		ret = dbox_fail(err, -EAGAIN, "%s changed since it was read",
				path);
	else if (w->synced && tail_of(log) != log->len)
		/* the mdbox map is only written by syncs: Dovecot takes
		 * anything unsynced in it for a crash and rebuilds */
		ret = dbox_fail(err, -EBADMSG, "%s has changes its backend "
				"has not synced", path);
	*off_r = log->len;
	*seq_r = log->file_seq;
	dovi_log_free(log);
	return ret;
}

static int write_at(int fd, const char *path, const uint8_t *buf,
		    size_t len, uint64_t off, struct dbox_err *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;

			/* we hold the lock: take the partial write back, as
			 * Dovecot 2.3 would at its next append */
			if (ftruncate(fd, (off_t)off) < 0)
				dbox_log(DBOX_LOG_WARNING, "%s: a partial write "
					 "stays at its end", path);
			return dbox_fail(err, -e, "write %s: %s", path,
					 strerror(e));
		}
		done += (size_t)n;
	}
	if (fdatasync(fd) < 0)
		return dbox_fail(err, -errno, "fdatasync %s: %m", path);
	return 0;
}

/* The bytes of the transaction: a BOUNDARY with its total size first when
 * it has two records or more, as Dovecot writes them. */
static uint8_t *framed(const struct dovi_logwrite *w, size_t *len_r)
{
	size_t hdr = w->count >= 2 ? 12 : 0, tail = w->synced ? 16 : 0;
	uint8_t *buf = malloc(hdr + w->len + tail);

	if (buf == NULL)
		return NULL;
	if (hdr != 0) {
		dovi_log_encode_size(12, buf);
		put32(buf + 4, DOVI_T_BOUNDARY | DOVI_T_EXTERNAL);
		put32(buf + 8, (uint32_t)(hdr + w->len));
	}
	memcpy(buf + hdr, w->buf, w->len);
	if (tail != 0) {
		/* outside the transaction, as Dovecot's sync writes it; its
		 * value is set once the offset is known */
		uint8_t *t = buf + hdr + w->len;

		dovi_log_encode_size(16, t);
		put32(t + 4, DOVI_T_HEADER_UPDATE | DOVI_T_EXTERNAL);
		put32(t + 8, LOG_TAIL_OFFSET | 4u << 16);
		put32(t + 12, 0);
	}
	*len_r = hdr + w->len + tail;
	return buf;
}

/* fd opened on path and locked, if it is still the log at path: 1, 0 if
 * it was replaced meanwhile (fd closed: try again), -errno (fd closed). */
static int open_locked(const char *path, unsigned timeout_ms, int *fd_r,
		       struct dbox_err *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	int ret;

	if (fd < 0)
		return dbox_fail(err, -errno, "open %s: %m", path);
	ret = lock_wait(fd, path, timeout_ms, err);
	if (ret == 0)
		ret = still_current(fd, path, err);
	if (ret <= 0) {
		close(fd);
		return ret;
	}
	*fd_r = fd;
	return 1;
}

/* The framed transaction buf appended to the locked log fd: 0, -ESTALE
 * (replaced since it was locked), -errno. */
static int append_locked(int fd, struct dovi_logwrite *w, const char *path,
			 uint8_t *buf, size_t len, struct dbox_err *err)
{
	uint64_t off = 0;
	uint32_t seq = 0;
	int ret = append_offset(fd, path, w, &off, &seq, err);

	if (ret == 0 && w->synced)
		put32(buf + len - 4, (uint32_t)(off + len));
	if (ret == 0 && off + len > UINT32_MAX)
		ret = dbox_fail(err, -EFBIG, "%s is too large", path);
	if (ret == 0)
		ret = write_at(fd, path, buf, len, off, err);
	if (ret == 0) {
		w->done_seq = seq;
		w->done_start = off;
		w->done_end = off + len;
	}
	return ret;
}

/* One attempt on the file at path: 1 written, 0 replaced meanwhile (try
 * again), -errno. */
static int commit_once(struct dovi_logwrite *w, const char *path,
		       uint8_t *buf, size_t len, unsigned timeout_ms,
		       struct dbox_err *err)
{
	int fd = -1;
	int ret = open_locked(path, timeout_ms, &fd, err);

	if (ret <= 0)
		return ret;
	ret = append_locked(fd, w, path, buf, len, err);
	/* closing the descriptor releases its lock */
	close(fd);
	if (ret == -ESTALE)
		return 0;
	return ret < 0 ? ret : 1;
}

/* w framed for the log at path: 1 (*buf_r, freed by the caller), 0 if
 * it has nothing to write, -errno. */
static int frame_for(struct dovi_logwrite *w, const char *path,
		     uint8_t **buf_r, size_t *len_r, struct dbox_err *err)
{
	if (w->failed)
		return dbox_fail(err, -ENOMEM, "%s: transaction not built",
				 path);
	if (w->count == 0)
		return 0;
	*buf_r = framed(w, len_r);
	if (*buf_r == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	return 1;
}

int dovi_logwrite_commit(struct dovi_logwrite *w, const char *path,
			 unsigned timeout_ms, struct dbox_err *err)
{
	size_t len;
	uint8_t *buf;
	int ret = frame_for(w, path, &buf, &len, err);

	if (ret <= 0)
		return ret;
	ret = 0;
	for (int i = 0; ret == 0 && i < LOGWRITE_REOPENS; i++)
		ret = commit_once(w, path, buf, len, timeout_ms, err);
	free(buf);
	if (ret == 0)
		return dbox_fail(err, -ESTALE, "%s keeps being replaced", path);
	return ret < 0 ? ret : 0;
}

struct dovi_loglock {
	int fd;
	char *path;
};

int dovi_loglock_take(const char *path, unsigned timeout_ms,
		      struct dovi_loglock **lk_r, struct dbox_err *err)
{
	int fd = -1, ret = 0;

	for (int i = 0; ret == 0 && i < LOGWRITE_REOPENS; i++)
		ret = open_locked(path, timeout_ms, &fd, err);
	if (ret == 0)
		return dbox_fail(err, -ESTALE, "%s keeps being replaced", path);
	if (ret < 0)
		return ret;
	*lk_r = calloc(1, sizeof(**lk_r));
	if (*lk_r != NULL)
		(*lk_r)->path = strdup(path);
	if (*lk_r == NULL || (*lk_r)->path == NULL) {
		free(*lk_r);
		close(fd);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	(*lk_r)->fd = fd;
	return 0;
}

int dovi_loglock_append(struct dovi_loglock *lk, struct dovi_logwrite *w,
			struct dbox_err *err)
{
	size_t len;
	uint8_t *buf;
	int ret = frame_for(w, lk->path, &buf, &len, err);

	if (ret <= 0)
		return ret;
	ret = append_locked(lk->fd, w, lk->path, buf, len, err);
	free(buf);
	/* Dovecot rotates only under this lock: never while we hold it */
	if (ret == -ESTALE)
		ret = dbox_fail(err, -ESTALE, "%s was replaced while locked",
				lk->path);
	return ret;
}

void dovi_loglock_release(struct dovi_loglock *lk)
{
	if (lk == NULL)
		return;
	close(lk->fd);    /* and its lock with it */
	free(lk->path);
	free(lk);
}

/* The 40-byte header of a mailbox's first log (dovecot-index.md 3.1):
 * version 1.3, file_seq 2 and prev_file_seq 0 as Dovecot's first log,
 * initial modseq 1, little-endian. */
static void first_log_header(uint8_t hdr[40])
{
	uint32_t now = (uint32_t)time(NULL);

	memset(hdr, 0, 40);
	hdr[0] = 1;
	hdr[1] = 3;
	hdr[2] = 40;
	put32(hdr + 4, now);   /* indexid, as Dovecot: its creation time */
	put32(hdr + 8, 2);
	put32(hdr + 20, now);
	hdr[24] = 1;
	hdr[32] = 0x01;
}

/* buf written whole to a new file at tmp, made durable. */
static int write_new(const char *tmp, const uint8_t *buf, size_t len,
		     struct dbox_err *err)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int ret = 0;

	if (fd < 0)
		return dbox_fail(err, -errno, "create %s: %m", tmp);
	for (size_t done = 0; ret == 0 && done < len; ) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n <= 0)
			ret = dbox_fail(err, n < 0 ? -errno : -ENOSPC,
					"write %s: %s", tmp, n < 0 ?
					strerror(errno) : "no room");
		else
			done += (size_t)n;
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = dbox_fail(err, -errno, "fsync %s: %m", tmp);
	close(fd);
	return ret;
}

int dovi_logwrite_create(struct dovi_logwrite *w, const char *path,
			 struct dbox_err *err)
{
	char tmp[PATH_MAX];
	size_t len;
	uint8_t *body, *buf = NULL;
	int ret;

	if (w->failed || w->count == 0 || w->synced)
		return dbox_fail(err, -EINVAL, "%s: transaction not built",
				 path);
	/* Dovecot's own lock on making a log (its dotlock .newlock, taken
	 * with O_EXCL): Dovecot, waiting for it, then finds our log there
	 * and uses it rather than renaming its own over it */
	ret = dbox_path(tmp, sizeof(tmp), "%s.newlock", path);
	if (ret < 0)
		return dbox_fail(err, ret, "%s: path too long", path);
	body = framed(w, &len);
	if (body != NULL)
		buf = malloc(40 + len);
	if (buf == NULL) {
		free(body);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	first_log_header(buf);
	memcpy(buf + 40, body, len);
	free(body);
	ret = write_new(tmp, buf, 40 + len, err);
	free(buf);
	if (ret == -EEXIST)   /* Dovecot's: it is making the log now */
		return dbox_fail(err, -EBUSY, "%s is there: Dovecot is making "
				 "the log", tmp);
	/* link, not rename: never replaces a log Dovecot made meanwhile */
	if (ret == 0 && link(tmp, path) < 0)
		ret = dbox_fail(err, -errno, "link %s: %m", path);
	unlink(tmp);
	if (ret == 0) {
		w->done_seq = 2;
		w->done_start = 40;
		w->done_end = 40 + len;
	}
	return ret;
}
