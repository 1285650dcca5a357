/* dbox-dovecot-record.c - the dbox record of a message Dovecot indexed:
 * read from its file (the last file kept open while records of one m.N
 * follow) and checked against Dovecot's GUID. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "dbox/dovecot-index.h"
#include "index/dindex-mailbox.h"
#include "index/dindex-msg.h"
#include "store/dbox-dovecot-private.h"
#include "store/dbox-rfile.h"
#include "store/dbox-scan.h"
#include "store/store-private.h"

/* ---------------------------------------------------------- records */

/* The last file read, kept while Dovecot's records of one m.N follow
 * each other; failures are logged once per file. */
static bool reader_open(struct dbox_rfile *r, const char *path)
{
	char reason[256];
	int e = 0;

	switch (dbox_rfile_open(r, path, &e, reason, sizeof(reason))) {
	case DBOX_RFILE_READY:
		return true;
	case DBOX_RFILE_CANNOT_OPEN:
		if (e != EBADMSG)  /* logged already */
			dbox_log(DBOX_LOG_WARNING, "%s: %s", path, strerror(e));
		return false;
	case DBOX_RFILE_BAD_HEADER:
		dbox_log(DBOX_LOG_WARNING, "Corrupted dbox file %s: %s", path,
			 reason);
		return false;
	default:
		return false;
	}
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A 32-hex-digit GUID string against the binary GUID of Dovecot's guid
 * extension; other strings are hashed by Dovecot and cannot be checked
 * without SHA-1 - they pass. */
bool dbox_dovecot_guid_matches(const char *guid, const struct dovi_message *dm)
{
	if (!dm->have_guid || guid == NULL || strlen(guid) != 32)
		return true;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(guid[i * 2]), lo = hexval(guid[i * 2 + 1]);

		if (hi < 0 || lo < 0)
			return true;
		if ((uint8_t)(hi << 4 | lo) != dm->guid[i])
			return false;
	}
	return true;
}

/* Reads the record of a Dovecot message into msg (storage fields). */
int dbox_dovecot_read_record(struct dbox_store *store, struct dovecot_box *b,
			     const struct dovi_message *dm, struct dbox_rfile *r,
			     struct dbox_msg *msg)
{
	char path[PATH_MAX], reason[256];
	struct dbox_record rec;
	uint64_t offset;
	struct stat st;

	if (store->format == DBOX_FORMAT_MDBOX) {
		if (!dm->in_map)
			return -ENOENT;
		dbox_mdbox_path(store, dm->file_id, path, sizeof(path));
	} else if (dovi_mailbox_sdbox_path(b->db, dm->uid, path,
					   sizeof(path)) < 0) {
		return -ENOENT;
	}
	if (!reader_open(r, path))
		return -EBADMSG;
	offset = store->format == DBOX_FORMAT_MDBOX ? dm->offset :
		r->hdr.length;
	if (dbox_rfile_record(r, offset, &rec, reason, sizeof(reason)) < 0) {
		dbox_log(DBOX_LOG_WARNING, "Corrupted dbox file %s (around "
			 "%s): mailbox %s uid %u left out", path, reason,
			 b->name, dm->uid);
		return -EBADMSG;
	}
	if (!dbox_dovecot_guid_matches(rec.meta.guid, dm)) {
		/* never show one message as another */
		dbox_log(DBOX_LOG_WARNING, "%s offset %llu: GUID %s is not the "
			 "one Dovecot's index has for %s uid %u; left out", path,
			 (unsigned long long)offset, rec.meta.guid, b->name,
			 dm->uid);
		dbox_record_clear(&rec);
		return -EBADMSG;
	}
	memset(msg, 0, sizeof(*msg));
	dbox_msg_from_record(msg, &rec);
	dbox_msg_where(msg)->file_id =
		store->format == DBOX_FORMAT_MDBOX ? dm->file_id : 0;
	msg->uid = dm->uid;
	msg->mailbox_id = b->id;
	if (dm->have_map_uid && dm->save_date != 0)
		msg->saved = dm->save_date;
	else
		msg->saved = fstat(r->fd, &st) == 0 ? st.st_ctime : 0;
	if (rec.meta.maildir_base != NULL &&
	    strchr(rec.meta.maildir_base, '/') == NULL)
		snprintf(msg->base, sizeof(msg->base), "%s",
			 rec.meta.maildir_base);
	else
		dbox_msg_derive_base(msg, msg->base, sizeof(msg->base));
	dbox_record_clear(&rec);
	return 0;
}

