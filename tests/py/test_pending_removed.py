"""A delivery committed unconfirmed (no fsync) keeps its spool file in
pending/ until the group flush; a message the client then expunges,
moves to another folder or renames, before the flush, must not come back
as a tmp/ file after a kill -9 (maildir-view.md section 3: on a native
maildir the file is gone for good, or where the client moved it)."""

import errno
import fcntl
import os
import re
import sqlite3
import threading

import pytest

from dboxfs_testlib import (chown_tree, dboxctl, mounts,  # noqa: F401
                            needs_dovecot, run, store_ids, wait_for,
                            wtmp)
from test_handback_deferred import LOCK_OPT, inbox_log, waits_for_lock
from test_integrity import damage_leaf, flagged_store, index_path
from test_takeover import ORIGINAL, dovecot_store, texts_polled

DATA = b"Subject: x\n\nbody\n"


def listing(mnt):
    """Every entry of the mount's maildirs (INBOX and .Other)."""
    out = []
    for box in ("", ".Other"):
        for sub in ("cur", "new", "tmp"):
            d = os.path.join(mnt, box, sub)
            if os.path.isdir(d):
                out += [os.path.join(box, sub, n) for n in os.listdir(d)]
    return sorted(out)


def deliver_then(wtmp, mounts, fmt, change, fsync=False):
    """Delivers tmp/x (fsynced if fsync: prepared then, prepare.c, with no
    unconfirmed mark) into cur/x:2,S, calls change(mnt),
    kills the daemon with SIGKILL before any flush, remounts (read-only,
    then read-write: both show the same); returns the listing and the
    pending/ area after the start-up sweep."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", fmt)
    m = mounts(store, mnt, "commit=3600")
    for d in ("", "/cur", "/new", "/tmp"):
        os.mkdir(os.path.join(mnt, ".Other" + d))
    with open(os.path.join(mnt, "tmp", "x"), "wb") as f:
        f.write(DATA)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.rename(os.path.join(mnt, "tmp", "x"), os.path.join(mnt, "cur", "x:2,S"))
    change(mnt)
    m.kill()
    # a read-only mount shows what the next sweep leaves
    r = mounts(store, mnt, "ro")
    try:
        ro = listing(mnt)
    finally:
        r.stop()
    c = mounts(store, mnt)
    try:
        assert listing(mnt) == ro
        return ro, os.listdir(os.path.join(store, "dboxfs", "pending"))
    finally:
        c.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
@pytest.mark.parametrize("fsync", [False, True], ids=["nosync", "fsync"])
def test_kill9_after_unlink_does_not_bring_it_back(wtmp, mounts, fmt, fsync):
    names, pending = deliver_then(
        wtmp, mounts, fmt,
        lambda mnt: os.unlink(os.path.join(mnt, "cur", "x:2,S")), fsync)
    assert names == [] and pending == []


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
@pytest.mark.parametrize("fsync", [False, True], ids=["nosync", "fsync"])
def test_kill9_after_move_leaves_one_copy(wtmp, mounts, fmt, fsync):
    def move(mnt):
        os.rename(os.path.join(mnt, "cur", "x:2,S"),
                  os.path.join(mnt, ".Other", "cur", "x:2,S"))
    names, pending = deliver_then(wtmp, mounts, fmt, move, fsync)
    assert names == [".Other/cur/x:2,S"] and pending == []


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
@pytest.mark.parametrize("to", ["x:2,RS", "y:2,S"])
def test_kill9_after_rename_leaves_one_copy(wtmp, mounts, fmt, to):
    def rename(mnt):
        os.rename(os.path.join(mnt, "cur", "x:2,S"),
                  os.path.join(mnt, "cur", to))
    names, pending = deliver_then(wtmp, mounts, fmt, rename)
    assert names == ["cur/" + to] and pending == []


def events_of(output):
    counts = re.findall(r"powercut: (\d+) events", output)
    return int(counts[-1]) if counts else None


def fill_until_cut(mnt):
    """fsynced writes until the simulator cuts the power."""
    with pytest.raises(OSError):
        for i in range(200):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
                f.flush()
                os.fsync(f.fileno())


def cut_after(wtmp, mounts, change):
    """sdbox on the power-cut simulator: delivers tmp/x without fsync
    into cur/x:2,S, calls change(mnt) (which makes the index durable: an
    sdbox move syncs it), then writes until the cut; returns the listing
    after the reboot, but for the fill files."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "sdbox")
    m = mounts(store, mnt, "fs=powercut:0/posix", "commit=3600")
    for d in ("", "/cur", "/new", "/tmp"):
        os.mkdir(os.path.join(mnt, ".Other" + d))
    m.stop()
    low = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (low + 80),
               "commit=3600")
    with open(os.path.join(mnt, "tmp", "x"), "wb") as f:
        f.write(DATA)
    os.rename(os.path.join(mnt, "tmp", "x"), os.path.join(mnt, "cur", "x:2,S"))
    change(mnt)
    fill_until_cut(mnt)
    assert m.stop() == 99
    c = mounts(store, mnt)
    try:
        return [n for n in listing(mnt) if not n.startswith("tmp/f")], \
            os.listdir(os.path.join(store, "dboxfs", "pending"))
    finally:
        c.stop()


def move_one(mnt, name, data=DATA):
    """A delivery made durable (fsync), moved to .Other: an sdbox move
    syncs the index, so every commit before it is durable."""
    fd = os.open(os.path.join(mnt, "tmp", name), os.O_CREAT | os.O_WRONLY)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    cur = os.path.join(mnt, "cur", name + ":2,S")
    os.rename(os.path.join(mnt, "tmp", name), cur)
    os.rename(cur, os.path.join(mnt, ".Other", "cur", name + ":2,S"))


def test_cut_after_a_durable_unlink_does_not_bring_it_back(wtmp, mounts):
    def unlink(mnt):
        os.unlink(os.path.join(mnt, "cur", "x:2,S"))
        move_one(mnt, "y")
    names, pending = cut_after(wtmp, mounts, unlink)
    assert names == [".Other/cur/y:2,S"] and pending == []


def test_cut_after_a_move_leaves_one_copy(wtmp, mounts):
    def move(mnt):
        os.rename(os.path.join(mnt, "cur", "x:2,S"),
                  os.path.join(mnt, ".Other", "cur", "x:2,S"))
    names, pending = cut_after(wtmp, mounts, move)
    assert names == [".Other/cur/x:2,S"] and pending == []


# -------------------------------------------------- rows others dropped

def pending_of(store):
    return os.listdir(os.path.join(store, "dboxfs", "pending"))


def tmp_after_kill9(store, mnt, mounts, m, *opts):
    """Kills the daemon m, remounts; returns tmp/ of INBOX and pending/
    after the start-up sweep."""
    m.kill()
    c = mounts(store, mnt, *opts)
    try:
        return sorted(os.listdir(os.path.join(mnt, "tmp"))), \
            pending_of(store)
    finally:
        c.stop()


def deliver_fsynced(mnt, name):
    """tmp/NAME fsynced (prepared: its record synced, no unconfirmed
    mark), then renamed into cur/; returns its cur/ path."""
    with open(os.path.join(mnt, "tmp", name), "wb") as f:
        f.write(DATA)
        f.flush()
        os.fsync(f.fileno())
    cur = os.path.join(mnt, "cur", name + ":2,S")
    os.rename(os.path.join(mnt, "tmp", name), cur)
    return cur


@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_kill9_after_dovecot_expunge_does_not_bring_it_back(wtmp, mounts,
                                                            fmt):
    """A takeover mount's follower drops the row of a message Dovecot
    expunged (doveadm expunge while mounted) while its spool file waits
    in pending/: after a kill -9 it is not back in tmp/."""
    store, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "takeover", "commit=3600")
    cur = deliver_fsynced(mnt, "x")
    assert len(pending_of(store)) == 1
    chown_tree(store, *store_ids())    # what the mount wrote
    uids = [mm["uid"] for mm in da.fetch("uid text", "mailbox", "INBOX")
            if mm["text"].replace(b"\r\n", b"\n") == DATA]
    assert len(uids) == 1, "the delivery was not handed back to Dovecot"
    da("expunge", "mailbox", "INBOX", "uid", uids[0])
    wait_for(lambda: not os.path.exists(cur), timeout=15,
             what="the follower to drop the expunged message")
    assert len(pending_of(store)) == 1     # no flush came in between
    names, pending = tmp_after_kill9(store, mnt, mounts, m, "takeover")
    assert names == [] and pending == []



@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
@pytest.mark.parametrize("opener", ["mount", "dboxctl"])
def test_dovecot_expunge_while_killed_does_not_bring_it_back(wtmp, mounts,
                                                             fmt, opener):
    """The same expunge made while no daemon runs (after its kill -9):
    the next open of the store (the mount's, or `dboxctl --takeover
    reindex` first) resyncs with Dovecot's index and drops the row
    before the mount's sweep looks at pending/; the file is not back in
    tmp/ either."""
    store, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "takeover", "commit=3600")
    deliver_fsynced(mnt, "x")
    m.kill()
    assert len(pending_of(store)) == 1
    chown_tree(store, *store_ids())    # what the mount wrote
    uids = [mm["uid"] for mm in da.fetch("uid text", "mailbox", "INBOX")
            if mm["text"].replace(b"\r\n", b"\n") == DATA]
    assert len(uids) == 1, "the delivery was not handed back to Dovecot"
    da("expunge", "mailbox", "INBOX", "uid", uids[0])
    if opener == "dboxctl":
        dboxctl("--takeover", "reindex", store)
    c = mounts(store, mnt, "takeover")
    try:
        names = listing(mnt)
    finally:
        c.stop()
    assert [n for n in names if n.startswith("tmp/")] == []
    assert len([n for n in names
                if n.startswith(("cur/", "new/"))]) == len(ORIGINAL)
    assert pending_of(store) == []

@pytest.fixture
def small_fs(wtmp):
    """A 16 MiB tmpfs at wtmp/small, unmounted after the test (after the
    dboxfs mounts on it: ask for it before `mounts`)."""
    path = os.path.join(wtmp, "small")
    os.mkdir(path)
    run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", path])
    try:
        yield path
    finally:
        run(["umount", path], check=False)


def fill(path):
    """Fills the file system of path (a file `filler`) until ENOSPC."""
    with open(os.path.join(path, "filler"), "wb", buffering=0) as f:
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_kill9_after_a_failed_flush_does_not_bring_it_back(wtmp, small_fs,
                                                           mounts, fmt):
    """A group flush fails (the index's disk is full: ENOSPC, reported by
    the fsync of the directory); a message whose spool file that flush
    left in pending/ is then expunged: after a kill -9 it is not back in
    tmp/ (the expunge left its mark, as before any flush)."""
    store, mnt = os.path.join(small_fs, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", fmt)
    m = mounts(store, mnt, "commit=3600")
    cur = deliver_fsynced(mnt, "x")
    # an unconfirmed delivery: the flush has a mark to confirm
    with open(os.path.join(mnt, "tmp", "y"), "wb") as f:
        f.write(DATA)
    os.rename(os.path.join(mnt, "tmp", "y"),
              os.path.join(mnt, "cur", "y:2,S"))
    fill(small_fs)
    fd = os.open(os.path.join(mnt, "cur"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as e:
            os.fsync(fd)
    finally:
        os.close(fd)
    assert e.value.errno == errno.ENOSPC
    os.unlink(os.path.join(small_fs, "filler"))
    assert len(pending_of(store)) == 2
    os.unlink(cur)
    names, pending = tmp_after_kill9(store, mnt, mounts, m)
    assert names == [] and pending == []


# ------------------------------------------- a row renumbered, or lost

def deliver_to_cur(mnt, name, fsync, to=None):
    """tmp/NAME (fsynced if fsync) renamed into cur/TO (NAME:2,S)."""
    with open(os.path.join(mnt, "tmp", name), "wb") as f:
        f.write(DATA)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.rename(os.path.join(mnt, "tmp", name),
              os.path.join(mnt, "cur", to or name + ":2,S"))


def inbox_uids(store):
    db = sqlite3.connect("file:%s?mode=ro" % index_path(store), uri=True)
    try:
        return {b: u for b, u in db.execute(
            "SELECT m.base, m.uid FROM messages m JOIN mailboxes b ON "
            "b.id = m.mailbox_id WHERE b.name = 'INBOX'")}
    finally:
        db.close()


def unconfirmed_marks(store):
    db = sqlite3.connect("file:%s?mode=ro" % index_path(store), uri=True)
    try:
        return db.execute("SELECT mailbox_id, uid FROM unconfirmed").fetchall()
    finally:
        db.close()


def dovecot_takes_our_uid(wtmp, mounts, fsync, to):
    """mdbox: a delivery (tmp/x into cur/TO) through a takeover mount
    while Dovecot's log is locked is owed to Dovecot, which does not know
    its uid yet: doveadm save, waiting for that lock, gives the uid to
    its own message, and the follower renumbers ours (an UPDATE of its
    row) while its spool file waits in pending/ under the old uid.
    Returns (store, mnt, the mount, the old uid, the new uid)."""
    store, da = dovecot_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "takeover", "commit=3600", LOCK_OPT)
    os.mkdir(os.path.join(mnt, ".Other"))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".Other", sub))
    text = b"Subject: from dovecot\n\nsaved beside the mount\n"
    saver = threading.Thread(target=lambda: da("save", "-m", "INBOX",
                                               input=text))
    base = to.split(":")[0]
    with open(inbox_log(store), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            deliver_to_cur(mnt, "x", fsync, to)
            ours = inbox_uids(store)[base]
            assert pending_of(store) == ["1.%d.x" % ours]
            chown_tree(store, *store_ids())    # what the mount wrote
            saver.start()
            wait_for(lambda: waits_for_lock(inbox_log(store)), timeout=30,
                     what="doveadm save to wait for INBOX's log")
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    saver.join(120)
    assert not saver.is_alive()
    wait_for(lambda: text in texts_polled(mnt).values(), timeout=15,
             what="Dovecot's message on the mount")
    wait_for(lambda: inbox_uids(store).get(base) != ours, timeout=15,
             what="the follower to renumber our delivery")
    assert [n for n in os.listdir(os.path.join(mnt, "cur"))
            if n.startswith(base + ":")] == [to]
    return store, mnt, m, ours, inbox_uids(store)[base]


def ours_after_kill9(store, mnt, mounts, m):
    """Kills the daemon m, remounts (takeover); returns the listing of
    our names (x, y) in INBOX and .Other, and pending/ after the
    start-up sweep."""
    m.kill()
    c = mounts(store, mnt, "takeover")
    try:
        names = [n for n in listing(mnt) if n.split("/")[-1][0] in "xy"]
        for n in names:
            with open(os.path.join(mnt, n), "rb") as g:
                assert g.read() == DATA
    finally:
        c.stop()
    return names, pending_of(store)


@needs_dovecot
@pytest.mark.parametrize("fsync", [False, True], ids=["nosync", "fsync"])
@pytest.mark.parametrize("to", ["x:2,S", "y:2,S"])
def test_kill9_after_dovecot_takes_our_uid_leaves_one_copy(wtmp, mounts,
                                                          fsync, to):
    """After the renumber (dovecot_takes_our_uid), a kill -9: the
    delivery is listed once, under its name, and not also back in tmp/
    (also with the client's other name for it, y)."""
    store, mnt, m, ours, fresh = dovecot_takes_our_uid(wtmp, mounts,
                                                       fsync, to)
    assert pending_of(store) in (["1.%d.x" % ours], ["1.%d.x" % fresh])
    # a record not durable yet stays checked after a cut under its new
    # uid (its unconfirmed mark moved with it)
    marks = unconfirmed_marks(store)
    assert (1, fresh) in marks if not fsync else \
        (1, ours) not in marks or (1, fresh) in marks
    names, pending = ours_after_kill9(store, mnt, mounts, m)
    assert names == ["cur/" + to] and pending == []


@needs_dovecot
@pytest.mark.parametrize("fsync", [False, True], ids=["nosync", "fsync"])
@pytest.mark.parametrize("to", ["x:2,S", "y:2,S"])
def test_dovecot_takes_our_uid_while_killed_leaves_one_copy(wtmp, mounts,
                                                            fsync, to):
    """The same delivery, owed to Dovecot, then a kill -9 before Dovecot
    saves a message of its own under its uid: the next mount's open
    renumbers ours while its pending file still has the old uid (no
    follower to rename it).  The delivery is listed once, and not also
    back in tmp/: the sweep knows it among the later rows by its name
    (x) or mtime (y, the client's other name), and its bytes."""
    store, da = dovecot_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "takeover", "commit=3600", LOCK_OPT)
    base = to.split(":")[0]
    with open(inbox_log(store), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            deliver_to_cur(mnt, "x", fsync, to)
            ours = inbox_uids(store)[base]
            m.kill()
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    assert pending_of(store) == ["1.%d.x" % ours]
    chown_tree(store, *store_ids())    # what the mount wrote
    da("save", "-m", "INBOX",
       input=b"Subject: from dovecot\n\nsaved while killed\n")
    assert ours in [int(mm["uid"]) for mm in da.fetch("uid", "mailbox",
                                                      "INBOX")]
    c = mounts(store, mnt, "takeover")
    try:
        names = [n for n in listing(mnt) if n.split("/")[-1][0] in "xy"]
        with open(os.path.join(mnt, "cur", to), "rb") as g:
            assert g.read() == DATA
    finally:
        c.stop()
    assert inbox_uids(store)[base] != ours
    assert names == ["cur/" + to] and pending_of(store) == []


@needs_dovecot
@pytest.mark.parametrize("change", ["unlink", "move"])
def test_renumbered_delivery_removed_before_kill9(wtmp, mounts, change):
    """After the renumber (dovecot_takes_our_uid), the pending file
    follows the new uid; the client then expunges the message, or moves
    it to another folder, before any flush: after a kill -9 it is not
    back in tmp/ (the removal of the renumbered row left its mark)."""
    store, mnt, m, ours, fresh = dovecot_takes_our_uid(wtmp, mounts, False,
                                                       "y:2,S")
    wait_for(lambda: pending_of(store) == ["1.%d.x" % fresh], timeout=15,
             what="the pending file to follow the new uid")
    cur = os.path.join(mnt, "cur", "y:2,S")
    if change == "unlink":
        os.unlink(cur)
    else:
        os.rename(cur, os.path.join(mnt, ".Other", "cur", "y:2,S"))
    assert pending_of(store) == ["1.%d.x" % fresh]   # no flush yet
    names, pending = ours_after_kill9(store, mnt, mounts, m)
    assert names == ([] if change == "unlink" else [".Other/cur/y:2,S"])
    assert pending == []


def lose_record(store, fmt, uid):
    """What a power cut does to a record never synced: sdbox loses its
    u.N (made within the commit interval), mdbox the tail of m.N."""
    db = sqlite3.connect("file:%s?mode=ro" % index_path(store), uri=True)
    try:
        (file_id, off), = db.execute(
            "SELECT m.file_id, m.offset FROM messages m JOIN mailboxes b "
            "ON b.id = m.mailbox_id WHERE b.name = 'INBOX' AND m.uid = ?",
            (uid,)).fetchall()
    finally:
        db.close()
    if fmt == "sdbox":
        os.unlink(os.path.join(store, "mailboxes", "INBOX", "dbox-Mails",
                               "u.%d" % uid))
    else:
        os.truncate(os.path.join(store, "storage", "m.%d" % file_id), off)


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_reindex_after_a_cut_puts_a_lost_delivery_back_in_tmp(wtmp, mounts,
                                                              fmt):
    """A delivery committed unconfirmed (no fsync), then a power cut that
    took its record and damaged the index (simulated after a kill -9: its
    record's bytes removed, a leaf of messages garbled).  `dboxctl
    reindex` (what the refused mount asks for) salvages the row and drops
    it, finding no record: that delivery was never durable, so the next
    mount puts its spool file back into tmp/, rather than drop it as if
    the message had been expunged after its commit."""
    store, msgs, _ = flagged_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "commit=3600")
    deliver_to_cur(mnt, "x", False)
    (entry,) = pending_of(store)
    m.kill()
    lose_record(store, fmt, int(entry.split(".")[1]))
    # the first leaf: the rows delivered last, at the end of the key
    # order, stay readable
    damage_leaf(index_path(store), "messages", first=True)
    p = dboxctl("reindex", store)
    assert b"damaged" in p.stderr
    c = mounts(store, mnt)
    try:
        names = listing(mnt)
        with open(os.path.join(mnt, "tmp", "x"), "rb") as g:
            assert g.read() == DATA
    finally:
        c.stop()
    assert [n for n in names if n.split("/")[-1].startswith("x")] == \
        ["tmp/x"]
    assert pending_of(store) == []
