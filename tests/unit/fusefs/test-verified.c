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

/* Checks ahead only when opens go in uid order: the second one in a row
 * starts them (a window of VERIFIED_AHEAD uids, bit i for uid first +
 * i), an open with fewer than VERIFIED_REFILL left ahead of it moves the
 * window on (one that waits for its check: fewer than VERIFIED_AHEAD),
 * anything else starts over. */
static void test_verified_ahead_in_order(void)
{
	struct verified_cache *vc = calloc(1, sizeof(*vc));
	uint32_t first = 0;

	pthread_mutex_init(&vc->lock, NULL);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 1, false, &first), 0);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 2, false, &first), 0xfff);
	CHECK_EQ_INT(first, 3);
	/* 3..14 checked ahead: the window moves when 5 or fewer are left */
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 3, false, &first), 0);
	CHECK(!verified_refill_due(vc, 5, 8));
	CHECK(verified_refill_due(vc, 5, 9));
	CHECK(!verified_refill_due(vc, 5, 2));           /* back */
	CHECK(!verified_refill_due(vc, 6, 9));           /* a folder */
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 9, false, &first), 0x7f);
	CHECK_EQ_INT(first, 15);
	/* waiting for its own check: whatever is left */
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 10, true, &first), 0x1);
	CHECK_EQ_INT(first, 22);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 4, false, &first), 0); /* back */
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 100, false, &first), 0);
	CHECK_EQ_INT(verified_ahead_of(vc, 6, 101, false, &first), 0);
	CHECK_EQ_INT(verified_ahead_of(vc, 6, 102, false, &first), 0xfff);
	CHECK_EQ_INT(verified_ahead_of(vc, 6, UINT32_MAX - 1, false, &first),
		     0);
	pthread_mutex_destroy(&vc->lock);
	free(vc);
}

/* The uids of a window are claimed in flight: an open may wait for one
 * (one open per uid), the check's end hands it over; a uid in flight is
 * not claimed again, nor one past the table's room. */
static void test_verified_pending(void)
{
	struct verified_cache *vc = calloc(1, sizeof(*vc));
	uint32_t first = 0;
	int w1, w2;

	pthread_mutex_init(&vc->lock, NULL);
	CHECK(!verified_pending_wait(vc, view_ino_msg(5, 3), &w1));
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 1, false, &first), 0);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 2, false, &first), 0xfff);
	CHECK(verified_pending_wait(vc, view_ino_msg(5, 3), &w1));
	CHECK(!verified_pending_wait(vc, view_ino_msg(5, 3), &w2));
	CHECK(verified_pending_done(vc, view_ino_msg(5, 3)) == &w1);
	CHECK(verified_pending_done(vc, view_ino_msg(5, 4)) == NULL);
	CHECK(!verified_pending_wait(vc, view_ino_msg(5, 3), &w1));
	/* started over below them: 5..14 are still in flight, 3 and 4 are
	 * done */
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 1, false, &first), 0);
	CHECK_EQ_INT(verified_ahead_of(vc, 5, 2, false, &first), 0x3);
	CHECK_EQ_INT(first, 3);
	/* 12 in flight in box 5; 20 more fit */
	CHECK_EQ_INT(verified_ahead_of(vc, 7, 1, false, &first), 0);
	CHECK_EQ_INT(verified_ahead_of(vc, 7, 2, false, &first), 0xfff);
	CHECK_EQ_INT(verified_ahead_of(vc, 7, 9, false, &first), 0x7f);
	CHECK_EQ_INT(verified_ahead_of(vc, 7, 16, false, &first), 0x1);
	CHECK_EQ_INT(first, 22);
	CHECK_EQ_INT(verified_ahead_of(vc, 7, 17, true, &first), 0);
	CHECK(verified_pending_done(vc, view_ino_msg(7, 3)) == NULL);
	CHECK_EQ_INT(verified_ahead_of(vc, 7, 18, true, &first), 0x1);
	CHECK_EQ_INT(first, 30);
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
	RUN(test_verified_pending);
	RUN(test_dir_mailbox);
	return CHECK_DONE();
}
