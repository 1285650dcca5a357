"""Crash recovery on a takeover mount of a Dovecot mdbox tree: once a
dead daemon's flock is gone, its m.N is Dovecot's to append to (Dovecot's
map lists our files after the hand-back), so the recovery of that file
must not cut bytes a committed record covers, Dovecot's or ours
(dbox-recover.c recover_mfile), and `dboxctl check` must not report them
(dbox-check.c check_mfile; both use mdbox_file_committed_end)."""

import fcntl
import os

import pytest

from dboxfs_testlib import (chown_tree, dboxctl, mounts,  # noqa: F401
                            needs_dovecot, store_ids, wtmp)
from test_handback_deferred import LOCK_OPT, inbox_log
from test_pending_removed import DATA, deliver_to_cur
from test_takeover import dovecot_store

SAVED = b"Subject: from dovecot\n\nsaved while killed\n"


def mount_texts(mnt):
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(mnt, sub)
        for n in os.listdir(d):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
    return sorted(out)


@needs_dovecot
def test_dovecot_save_into_killed_daemons_file_survives(wtmp, mounts):
    """Our daemon keeps m.2 (its last append's file) locked and marked;
    kill -9, then doveadm save appends to m.2 after our last record
    (its map has it from the hand-back).  The next mount's recovery of
    the dead owner keeps Dovecot's record: it reads intact through the
    mount and by doveadm, and so do ours; force-resync finds no damage."""
    store, da = dovecot_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "takeover", "commit=3600", LOCK_OPT)
    deliver_to_cur(mnt, "a", True)
    with open(inbox_log(store), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            deliver_to_cur(mnt, "x", False)
            m.kill()
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    before = os.path.getsize(os.path.join(store, "storage", "m.2"))
    chown_tree(store, *store_ids())    # what the mount wrote
    da("save", "-m", "INBOX", input=SAVED)
    m2 = os.path.join(store, "storage", "m.2")
    # the premise: Dovecot appended to our file, not to a new one
    saved_end = os.path.getsize(m2)
    assert saved_end > before
    # what a save killed mid-append leaves: no record covers it, cut
    with open(m2, "ab") as f:
        f.write(b"torn")
    c = mounts(store, mnt, "takeover")
    try:
        texts = mount_texts(mnt)
    finally:
        c.stop()
    assert os.path.getsize(m2) == saved_end
    assert texts.count(SAVED) == 1 and texts.count(DATA) == 2
    chown_tree(store, *store_ids())
    fetched = [mm["text"] for mm in da.fetch("text", "mailbox", "INBOX")]
    assert fetched.count(SAVED) == 1 and fetched.count(DATA) == 2
    r = da("force-resync", "*")
    assert b"orrupt" not in r.stderr, r.stderr
    fetched = [mm["text"] for mm in da.fetch("text", "mailbox", "INBOX")]
    assert fetched.count(SAVED) == 1 and fetched.count(DATA) == 2


def check_lines(store):
    p = dboxctl("check", store, check=False)
    return p.returncode, p.stdout.decode().splitlines()


@needs_dovecot
@pytest.mark.parametrize("end", ["stop", "kill"])
def test_check_counts_dovecots_records_in_our_file(wtmp, mounts, end):
    """Dovecot appends to our m.2 once nobody holds it: after a clean
    unmount, or after a kill -9 (check's open recovers the dead owner,
    keeping Dovecot's record).  dboxctl check takes the committed end
    from Dovecot's map as well as ours, as the recovery does: nothing is
    reported; a few stray bytes past Dovecot's record still are."""
    store, da = dovecot_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "takeover", LOCK_OPT)
    deliver_to_cur(mnt, "a", True)
    m2 = os.path.join(store, "storage", "m.2")
    if end == "stop":
        m.stop()
    else:
        # the hand-back of "a" is done; kill while m.2 is still kept
        m.kill()
    before = os.path.getsize(m2)
    chown_tree(store, *store_ids())
    da("save", "-m", "INBOX", input=SAVED)
    saved_end = os.path.getsize(m2)
    assert saved_end > before    # the premise: Dovecot appended to m.2
    assert check_lines(store) == (0, [])
    with open(m2, "ab") as f:
        f.write(b"torn")
    assert check_lines(store) == (
        1, ["%s:%d: 4 uncommitted bytes after the committed end"
            % (m2, saved_end)])
