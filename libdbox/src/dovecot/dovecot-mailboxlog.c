/* dovecot-mailboxlog.c - records of Dovecot's mailbox log (see the
 * header).  A record is 24 bytes: type, 3 bytes of padding, the 16-byte
 * GUID or name hash, the time in seconds, big-endian (Dovecot's struct
 * mailbox_log_record).  Dovecot appends one record with one write to a
 * file opened O_APPEND, with no lock, and rotates the file itself when it
 * grows: we append the same way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nettle/sha1.h>

#include "dovecot/dovecot-mailboxlog.h"
#include "util/util.h"

#define MBOXLOG_NAME "dovecot.mailbox.log"
#define MBOXLOG_RECORD_SIZE 24

void dovi_mboxlog_name_hash(const char *name, uint8_t hash[16])
{
	struct sha1_ctx ctx;
	uint8_t digest[SHA1_DIGEST_SIZE];

	sha1_init(&ctx);
	sha1_update(&ctx, strlen(name), (const uint8_t *)name);
	sha1_digest(&ctx, sizeof(digest), digest);
	memcpy(hash, digest, 16);
}

static void record(uint8_t rec[MBOXLOG_RECORD_SIZE],
		   enum dovi_mboxlog_type type, const uint8_t id[16])
{
	uint32_t now = (uint32_t)time(NULL);

	memset(rec, 0, MBOXLOG_RECORD_SIZE);
	rec[0] = (uint8_t)type;
	memcpy(rec + 4, id, 16);
	rec[20] = (uint8_t)(now >> 24);
	rec[21] = (uint8_t)(now >> 16);
	rec[22] = (uint8_t)(now >> 8);
	rec[23] = (uint8_t)now;
}

int dovi_mboxlog_append(const char *root, enum dovi_mboxlog_type type,
			const uint8_t id[16], struct dbox_err *err)
{
	uint8_t rec[MBOXLOG_RECORD_SIZE];
	char path[PATH_MAX];
	ssize_t n;
	int fd, ret;

	ret = dbox_path(path, sizeof(path), "%s/%s", root, MBOXLOG_NAME);
	if (ret < 0)
		return dbox_fail(err, ret, "%s: path too long", root);
	/* 0600 as the mount's own logs of new mailboxes */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return dbox_fail(err, -errno, "open %s: %m", path);
	record(rec, type, id);
	n = write(fd, rec, sizeof(rec));
	if (n != (ssize_t)sizeof(rec))
		ret = dbox_fail(err, n < 0 ? -errno : -ENOSPC, "write %s: %s",
				path, n < 0 ? strerror(errno) : "no room");
	if (ret == 0 && fsync(fd) < 0)
		ret = dbox_fail(err, -errno, "fsync %s: %m", path);
	close(fd);
	return ret;
}
