"""A takeover mount's changes that Dovecot's log could not take when they
were made (its lock held longer than the mount waits) are owed, not
dropped: the mount keeps showing them, also when Dovecot changes the
mailbox meanwhile, and hands them back once the log is free, also after
the daemon was killed in between; Dovecot then shows exactly the mount's
view, with no force-resync."""

import fcntl
import os
import sqlite3
import threading

import pytest

from dboxfs_testlib import (DBOXFS, chown_tree, is_mounted, mounts,
                            needs_dovecot, store_ids, wait_for,
                            wtmp)  # noqa: F401
from test_dovecot_view import view_of, view_polled
from test_handback import (deliver, dovecot_all, dovecot_inbox,
                           dovecot_texts, inbox_guids, letters, mount_all,
                           mount_texts, names_by_guid, set_info)
from test_takeover import dovecot_store

pytestmark = [needs_dovecot,
              pytest.mark.skipif(not os.path.exists(DBOXFS),
                                 reason="dboxfs not built")]

# the mount waits this long for Dovecot's lock (10 s by default)
LOCK_OPT = "dovecot_lock_ms=300"


def inbox_log(root):
    return os.path.join(root, "mailboxes", "INBOX", "dbox-Mails",
                        "dovecot.index.log")


def owed_rows(root):
    """The changes the mount's index says Dovecot is owed (None: no such
    table, a dboxfs that has none)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        root, "dboxfs", "index.sqlite"), uri=True)
    try:
        return db.execute("SELECT count(*) FROM dovecot_owed").fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()


def waits_for_lock(path):
    """Whether some process waits for a lock of path (/proc/locks marks
    a blocked request "->")."""
    ino = ":%d " % os.stat(path).st_ino
    with open("/proc/locks") as f:
        return any("->" in line and ino in line + " " for line in f)


def store_with_keywords(wtmp, fmt):
    root, da = dovecot_store(wtmp, fmt)
    da("flags", "add", "$Label1 Work", "mailbox", "INBOX", "uid", "1")
    da("flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "2")
    return root, da, inbox_guids(da)


def change_while_locked(mnt, by_uid):
    """Through the mount: flags and keywords of uid 1 changed, uid 2 gone,
    a message delivered; returns the mount's view of INBOX after."""
    names = names_by_guid(mnt)
    kw = letters(mnt)
    set_info(mnt, names, by_uid[1], "F" + kw["Work"])   # -$Label1 +F
    os.unlink(os.path.join(mnt, *names[by_uid[2]]))
    set_info(mnt, names, by_uid[3], "RS")
    deliver(mnt, "", "c1", "cur/c1:2,S")
    shown = view_of(mnt, "INBOX")
    assert len(shown) == 5
    return shown


def handed_back(root, size):
    """Dovecot's log grew past size and nothing is owed any more."""
    return os.path.getsize(inbox_log(root)) > size and \
        owed_rows(root) in (0, None)


def dovecot_sees(da, shown):
    """doveadm fetch shows exactly the mount's view, and Dovecot found
    nothing to repair (no rebuild, no force-resync)."""
    assert dovecot_inbox(da) == shown
    r = da("-f", "json", "fetch", "uid flags", "mailbox", "INBOX")
    assert b"orrupt" not in r.stderr and b"ebuild" not in r.stderr


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_changes_while_dovecots_log_locked_handed_back(wtmp, mounts, fmt):
    """While a Dovecot process holds the lock of INBOX's log longer than
    the mount waits: a flag and keyword change, an expunge, a delivery
    and a move to another folder through the mount write nothing into it,
    are owed (rows of the mount's index) and shown as made; once the lock
    is gone the follower hands them back: doveadm fetch shows exactly the
    mount's view, while mounted, with no force-resync, and so after
    Dovecot's purge (mdbox: the moved message's map record counted right)
    and on the next mount."""
    root, da, by_uid = store_with_keywords(wtmp, fmt)
    da("mailbox", "create", "Folder")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", LOCK_OPT)
    with open(inbox_log(root), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            size = os.path.getsize(inbox_log(root))
            change_while_locked(mnt, by_uid)
            names = names_by_guid(mnt)
            os.rename(os.path.join(mnt, *names[by_uid[4]]),
                      os.path.join(mnt, ".Folder", "cur", "moved:2,S"))
            assert os.path.getsize(inbox_log(root)) == size
            assert owed_rows(root) in (6, None)
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    shown = mount_all(mnt)
    assert len(shown["INBOX"]) == 4 and len(shown["Folder"]) == 1
    ours = mount_texts(mnt)
    wait_for(lambda: handed_back(root, size), timeout=30,
             what="the owed changes in Dovecot's log")
    assert mount_all(mnt) == shown
    dovecot_sees(da, shown["INBOX"])
    assert dovecot_all(da) == shown
    assert mount_all(mnt) == shown
    m.stop()
    assert "not handed back to Dovecot yet" in m.output()
    da("purge")
    assert dovecot_all(da) == shown
    assert dovecot_texts(da) == ours
    m = mounts(root, mnt, "takeover")
    assert mount_all(mnt) == shown
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecots_change_while_ours_owed_both_stay(wtmp, mounts, fmt):
    """A flag and keyword change through the mount that is owed (Dovecot's
    log was locked), then Dovecot's own changes: another message's flags,
    and another flag of the same message.  The mount shows Dovecot's
    change of the other message at once and keeps its own (the follower
    does not take Dovecot's older state of the message it owes); once
    handed back, Dovecot and the mount both have all three changes."""
    root, da, by_uid = store_with_keywords(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", LOCK_OPT)
    names = names_by_guid(mnt)
    dovecots = threading.Thread(target=lambda: (
        da("flags", "add", "\\Answered", "mailbox", "INBOX", "uid", "4"),
        da("flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "1")))
    with open(inbox_log(root), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            set_info(mnt, names, by_uid[1], "D")   # -$Label1 -Work +D
            assert owed_rows(root) in (1, None)
            # Dovecot's change waits for the lock, so it is the first in
            # the log once the lock is gone
            dovecots.start()
            wait_for(lambda: waits_for_lock(inbox_log(root)), timeout=30,
                     what="doveadm waiting for the log's lock")
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    wait_for(lambda: "\\Answered" in (view_polled(mnt, "INBOX") or {}).get(
        by_uid[4], ()), timeout=30, what="Dovecot's flag on the mount")
    assert view_of(mnt, "INBOX")[by_uid[1]] >= {"\\Draft"}
    dovecots.join(timeout=60)
    wait_for(lambda: owed_rows(root) in (0, None) and (view_polled(
        mnt, "INBOX") or {}).get(by_uid[1]) == {"\\Draft", "\\Seen"},
        timeout=30, what="all three changes on the mount")
    shown = view_of(mnt, "INBOX")
    assert shown[by_uid[4]] == {"\\Answered"}
    dovecot_sees(da, shown)
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_owed_changes_survive_a_killed_daemon(wtmp, mounts, fmt):
    """Changes owed to Dovecot when the daemon is killed (SIGKILL) are
    handed back by the next mount: Dovecot shows what the killed mount
    showed, with no force-resync."""
    root, da, by_uid = store_with_keywords(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", LOCK_OPT)
    with open(inbox_log(root), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            size = os.path.getsize(inbox_log(root))
            shown = change_while_locked(mnt, by_uid)
            m.kill()
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    assert os.path.getsize(inbox_log(root)) == size
    assert owed_rows(root) in (4, None)
    m = mounts(root, mnt, "takeover", LOCK_OPT)
    wait_for(lambda: handed_back(root, size), timeout=30,
             what="the owed changes in Dovecot's log")
    assert view_of(mnt, "INBOX") == shown
    dovecot_sees(da, shown)
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_changes_while_dovecots_log_missing_handed_back(wtmp, mounts, fmt):
    """INBOX's log gone (its only index file: a small folder) while
    mounted: a flag change, an expunge and a delivery through the mount
    are owed; Dovecot's next access makes the folder anew (an empty index
    of another uidvalidity), and the follower then hands back what the
    mount shows, as a mount's start would: Dovecot lists exactly the
    mount's view, with no force-resync."""
    root, da, by_uid = store_with_keywords(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", LOCK_OPT)
    names = names_by_guid(mnt)
    assert not os.path.exists(inbox_log(root)[:-len(".log")])
    os.rename(inbox_log(root), inbox_log(root) + ".gone")
    set_info(mnt, names, by_uid[3], "F")
    os.unlink(os.path.join(mnt, *names[by_uid[4]]))
    deliver(mnt, "", "c1", "cur/c1:2,S")
    shown = view_of(mnt, "INBOX")
    assert len(shown) == 5 and owed_rows(root) in (3, None)
    chown_tree(root, *store_ids())
    da("mailbox", "status", "all", "INBOX")   # Dovecot makes a new index
    wait_for(lambda: dovecot_inbox(da) == shown, timeout=30, interval=0.5,
             what="the mount's view in Dovecot's new index")
    wait_for(lambda: owed_rows(root) in (0, None), timeout=30,
             what="nothing owed")
    assert view_of(mnt, "INBOX") == shown
    dovecot_sees(da, shown)
    m.stop()


def test_lock_wait_out_of_range_refused(wtmp, mounts):
    """A wait for Dovecot's lock beyond 10 minutes (-5 wraps to one) is
    refused with a clear error, and nothing is mounted."""
    root, da = dovecot_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    with pytest.raises(AssertionError) as e:
        mounts(root, mnt, "takeover", "dovecot_lock_ms=-5")
    assert "dovecot_lock_ms=4294967291: use at most 600000" in str(e.value)
    assert not is_mounted(mnt)
