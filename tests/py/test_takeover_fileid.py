"""mdbox taken over (-o takeover): the ids of new m.N files.  Dovecot names
a new m.N, under its map's lock, after the map's highest file id
(mdbox_map_assign_file_ids: highest + 1); finding a file of that name
there, its save fails, it calls the storage corrupted and rebuilds its
indexes (mdbox_file_assign_file_id).  So an m.N the mount makes must be
counted in the map's highest file id from the start, not only once its
messages are handed back: Dovecot's next new file is then the one after
it, and nothing of either is lost or rebuilt."""

import errno
import fcntl
import os
import sqlite3

import pytest

from dboxfs_testlib import (DBOXFS, chown_tree, mounts, needs_dovecot,
                            store_ids, wtmp)  # noqa: F401
from test_handback import deliver, drop_dovecot_index, make_folder
from test_takeover import dovecot_store

pytestmark = [needs_dovecot,
              pytest.mark.skipif(not os.path.exists(DBOXFS),
                                 reason="dboxfs not built")]

DOVECOTS = b"Subject: dovecot's own\n\nsaved by doveadm into a new file\n"


def set_rotate_size(root, size):
    """Our store's rotate size (an index setting): 1 puts every message
    the mount saves into a new m.N."""
    db = sqlite3.connect(os.path.join(root, "dboxfs", "index.sqlite"))
    try:
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = "
                       "'rotate_size'", (str(size),))
    finally:
        db.close()


def m_files(root):
    """{m.N id: bytes} of the store."""
    d = os.path.join(root, "storage")
    res = {}
    for n in os.listdir(d):
        if n.startswith("m.") and n[2:].isdigit():
            with open(os.path.join(d, n), "rb") as f:
                res[int(n[2:])] = f.read()
    return res


def file_of(files, text):
    """The id of the one m.N holding text."""
    ids = [i for i, data in files.items() if text in data]
    assert len(ids) == 1, (ids, text)
    return ids[0]


def dovecot_save_new_file(da):
    """doveadm save into INBOX with a rotate size that gives the message
    a new m.N; returns its output."""
    chown_tree(da.root, *store_ids())
    res = da("-o", "mdbox_rotate_size=1", "save", "-m", "INBOX",
             input=DOVECOTS, check=False)
    out = (res.stdout + res.stderr).decode("utf-8", "replace")
    assert res.returncode == 0, out
    return out


def dovecot_texts(da):
    chown_tree(da.root, *store_ids())
    return sorted((t["mailbox"], t["text"])
                  for t in da.fetch("mailbox text", "mailbox", "*"))


def mount_texts(mnt):
    """[(mailbox, bytes)] of every message the mount shows, sorted."""
    res = []
    for folder in [""] + [n for n in os.listdir(mnt) if n.startswith(".")]:
        for sub in ("new", "cur"):
            d = os.path.join(mnt, folder, sub)
            for n in os.listdir(d):
                with open(os.path.join(d, n), "rb") as f:
                    res.append((folder[1:] or "INBOX", f.read()))
    return sorted(res)


def checked_by_dovecot(da, texts):
    """Dovecot reads texts ([(mailbox, bytes)]) back, as they are, after
    a force-resync and after a purge, and calls nothing corrupted."""
    assert dovecot_texts(da) == texts
    for step in (("force-resync", "*"), ("purge",)):
        res = da(*step, check=False)
        out = (res.stdout + res.stderr).decode("utf-8", "replace")
        assert res.returncode == 0 and "Corrupted" not in out, (step, out)
        assert dovecot_texts(da) == texts, step


def before(wtmp, mounts, box=None):
    """A store of Dovecot's, taken over once (with a folder made through
    the mount if box is given), whose rotate size of ours is 1.  Returns
    (root, da, mnt, Dovecot's texts)."""
    root, da = dovecot_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    if box is not None:
        make_folder(mnt, "." + box)
    m.stop()
    set_rotate_size(root, 1)
    return root, da, mnt, dovecot_texts(da)


def test_new_file_not_handed_back_is_not_dovecots_next(wtmp, mounts):
    """A delivery through the mount into a folder Dovecot is making its
    index of (its dovecot.index.log.newlock there: the mount leaves the
    folder to Dovecot and hands nothing of it back) goes into a new m.K;
    Dovecot's next new file, made once the mount is gone, is m.K+1, its
    save succeeds, and Dovecot and the next mount read both messages with
    their bytes, with no corruption found (after a force-resync and a
    purge too)."""
    root, da, mnt, texts = before(wtmp, mounts, "Old")
    drop_dovecot_index(root, "Old")
    lock = os.path.join(root, "mailboxes", "Old", "dbox-Mails",
                        "dovecot.index.log.newlock")
    with open(lock, "wb") as f:
        f.write(b"%d:dovecot\n" % os.getpid())
    m = mounts(root, mnt, "takeover")
    assert "mailbox Old: not handed back" in m.output()
    ours = deliver(mnt, ".Old", "x1", "new/x1")
    m.stop()
    os.unlink(lock)
    k = file_of(m_files(root), ours)
    out = dovecot_save_new_file(da)
    assert "Corrupted" not in out and "already exists" not in out, out
    files = m_files(root)
    assert file_of(files, DOVECOTS) == k + 1
    assert file_of(files, ours) == k
    every = sorted(texts + [("INBOX", DOVECOTS), ("Old", ours)])
    m = mounts(root, mnt, "takeover")
    assert mount_texts(mnt) == every
    m.stop()
    checked_by_dovecot(da, every)


def test_delivery_while_maps_lock_held(wtmp, mounts):
    """While a Dovecot process holds the lock of the map's log, no new m.N
    is made: a delivery through the mount that needs one fails with
    EAGAIN (the file stays in tmp/ as it was) and succeeds once the lock
    is gone; one after it while the lock is held again goes into the
    mount's m.K beyond the rotate size.  The mount ends with that one not
    handed back; Dovecot's next new file is m.K+1, its save succeeds, and
    Dovecot and the next mount read every message with its bytes, with no
    corruption found."""
    root, da, mnt, texts = before(wtmp, mounts)
    m = mounts(root, mnt, "takeover", "dovecot_lock_ms=300")
    maplog = os.path.join(root, "storage", "dovecot.map.index.log")
    first = b"Subject: x1\n\nrefused, then delivered\n"
    tmp = os.path.join(mnt, "tmp", "x1")
    with open(tmp, "wb") as f:
        f.write(first)
    with open(maplog, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            with pytest.raises(OSError) as e:
                os.rename(tmp, os.path.join(mnt, "new", "x1"))
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    assert e.value.errno == errno.EAGAIN
    with open(tmp, "rb") as f:
        assert f.read() == first
    os.rename(tmp, os.path.join(mnt, "new", "x1"))
    k = file_of(m_files(root), first)
    with open(maplog, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            second = deliver(mnt, "", "x2", "new/x2")
            m.stop()
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    assert file_of(m_files(root), second) == k
    out = dovecot_save_new_file(da)
    assert "Corrupted" not in out and "already exists" not in out, out
    assert file_of(m_files(root), DOVECOTS) == k + 1
    every = sorted(texts + [("INBOX", DOVECOTS), ("INBOX", first),
                            ("INBOX", second)])
    m = mounts(root, mnt, "takeover")
    assert mount_texts(mnt) == every
    m.stop()
    assert "not handed back" not in m.output()
    checked_by_dovecot(da, every)
