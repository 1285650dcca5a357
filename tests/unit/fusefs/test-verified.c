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
		moved.storage.w[w] = 0x0101010101010101ull;
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

/* Buckets of two: a folder of 2,000 messages stays in the table almost
 * whole (one slot per number kept ~79% of them), and a warm open asks
 * by number alone. */
static void test_verified_folder_fits(void)
{
	struct verified_cache *vc = calloc(1, sizeof(*vc));
	struct dbox_msg m;
	unsigned int hits = 0;

	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&vc->lock, NULL);
	CHECK(!verified_has_ino(vc, view_ino_msg(3, 1)));
	for (uint32_t uid = 1; uid <= 2000; uid++)
		verified_add(vc, view_ino_msg(3, uid), &m);
	for (uint32_t uid = 1; uid <= 2000; uid++)
		hits += verified_has_ino(vc, view_ino_msg(3, uid));
	CHECK(hits >= 1900);
	CHECK(!verified_has_ino(vc, view_ino_msg(4, 1)));
	CHECK(!verified_has_ino(vc, 0));
	pthread_mutex_destroy(&vc->lock);
	free(vc);
}

/* Checks ahead only when cold opens go in uid order: the second one in
 * a row starts them, the first one after what was checked ahead goes
 * on, anything else starts over. */
static void test_verified_ahead_in_order(void)
{
	struct verified_cache *vc = calloc(1, sizeof(*vc));
	uint32_t first = 0;

	pthread_mutex_init(&vc->lock, NULL);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 1, &first), 0);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 2, &first), 8);
	CHECK_EQ_INT(first, 3);
	/* one checked ahead but not yet done, opened cold: only the rest */
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 3, &first), 1);
	CHECK_EQ_INT(first, 11);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 12, &first), 8);
	CHECK_EQ_INT(first, 13);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 4, &first), 0);   /* back */
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 100, &first), 0); /* a jump */
	CHECK_EQ_INT(verified_ahead_of(vc, 6, 101, &first), 0); /* a folder */
	CHECK_EQ_INT(verified_ahead_of(vc, 6, 102, &first), 8);
	CHECK_EQ_INT(verified_ahead_of(vc, 6, UINT32_MAX - 1, &first), 0);
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
	RUN(test_verified_folder_fits);
	RUN(test_verified_ahead_in_order);
	RUN(test_dir_mailbox);
	return CHECK_DONE();
}
