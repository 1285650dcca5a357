"""A delivery committed unconfirmed (no fsync) keeps its spool file in
pending/ until the group flush; a message the client then expunges,
moves to another folder or renames, before the flush, must not come back
as a tmp/ file after a kill -9 (maildir-view.md section 3: on a native
maildir the file is gone for good, or where the client moved it)."""

import errno
import os
import re

import pytest

from dboxfs_testlib import (chown_tree, dboxctl, mounts,  # noqa: F401
                            needs_dovecot, run, store_ids, wait_for,
                            wtmp)
from test_takeover import ORIGINAL, dovecot_store

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
