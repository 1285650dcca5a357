/* test-verified.c - the pure parts split out of the daemon's handlers:
 * the table of verified messages (fusefs/verified.c) and which mailbox a
 * directory of the view stands for (folders_dir_mailbox,
 * folders_files_box in fusefs/folders.c). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "folders.h"
#include "verified.h"
#include "view.h"

/* A message is verified only at the place it was verified: a record
 * moved (purge, another file) needs a new check.  Its place is libdbox's
 * own (opaque words): every word is changed in turn, and wherever that
 * moves dbox_msg_file_id or dbox_msg_file_offset it is no hit. */
static void test_verified_place(void)
{
	struct verified_cache *vc = calloc(1, sizeof(*vc));
	struct dbox_msg m, moved;
	int moves = 0;

	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&vc->lock, NULL);
	CHECK(!verified_has(vc, 42, &m));
	verified_add(vc, 42, &m);
	CHECK(verified_has(vc, 42, &m));
	CHECK(!verified_has(vc, 43, &m));
	for (int w = 0; w < DBOX_MSG_STORAGE_WORDS; w++) {
		moved = m;
		moved.storage_[w] = 0x0101010101010101ull;
		if (dbox_msg_file_id(&moved) == dbox_msg_file_id(&m) &&
		    dbox_msg_file_offset(&moved) == dbox_msg_file_offset(&m))
			continue;
		moves++;
		CHECK(!verified_has(vc, 42, &moved));
	}
	CHECK(moves >= 2);   /* the file and the offset */
	pthread_mutex_destroy(&vc->lock);
	free(vc);
}

/* A fixed table: a later message in the same slot takes it over, and
 * the earlier one is checked again (never a false hit). */
static void test_verified_evicts(void)
{
	struct verified_cache *vc = calloc(1, sizeof(*vc));
	struct dbox_msg m;
	unsigned int hits = 0;

	memset(&m, 0, sizeof(m));

	pthread_mutex_init(&vc->lock, NULL);
	for (uint64_t ino = 1; ino <= 4 * VERIFIED_SLOTS; ino++)
		verified_add(vc, ino, &m);
	for (uint64_t ino = 1; ino <= 4 * VERIFIED_SLOTS; ino++)
		hits += verified_has(vc, ino, &m);
	CHECK(hits > 0 && hits <= VERIFIED_SLOTS);
	CHECK(verified_has(vc, 4 * VERIFIED_SLOTS, &m));
	pthread_mutex_destroy(&vc->lock);
	free(vc);
}

/* maildir++: the root is INBOX's folder; fs layout: the root holds only
 * folders and plain files; vdirs and cur/ new/ tmp/ hold no folder. */
static void test_dir_mailbox(void)
{
	struct view_ino root, folder, vdir, sub;

	CHECK(view_ino_decode(VIEW_ROOT_INO, &root));
	CHECK(view_ino_decode(view_ino_folder(7), &folder));
	CHECK(view_ino_decode(view_ino_vdir(9), &vdir));
	CHECK(view_ino_decode(view_ino_sub(7, SUB_TMP), &sub));
	CHECK_EQ_INT(folders_dir_mailbox(VIEW_MAILDIRPP, 5, &root), 5);
	CHECK_EQ_INT(folders_dir_mailbox(VIEW_FS, 5, &root), 0);
	CHECK_EQ_INT(folders_dir_mailbox(VIEW_FS, 5, &folder), 7);
	CHECK_EQ_INT(folders_dir_mailbox(VIEW_FS, 5, &vdir), 0);
	CHECK_EQ_INT(folders_dir_mailbox(VIEW_MAILDIRPP, 5, &sub), 0);
	CHECK_EQ_INT(folders_files_box(VIEW_MAILDIRPP, 5, &root), 5);
	CHECK_EQ_INT(folders_files_box(VIEW_FS, 5, &root), 0);
	CHECK_EQ_INT(folders_files_box(VIEW_FS, 5, &folder), 7);
	CHECK_EQ_INT(folders_files_box(VIEW_FS, 5, &vdir), -1);
	CHECK_EQ_INT(folders_files_box(VIEW_FS, 5, &sub), -1);
}

int main(void)
{
	RUN(test_verified_place);
	RUN(test_verified_evicts);
	RUN(test_dir_mailbox);
	return CHECK_DONE();
}
