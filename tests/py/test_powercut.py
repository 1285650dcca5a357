"""Durability and atomicity of the mount across a power cut
(maildir-view.md section 3).

The daemon runs on the power-cut simulator (-o fs=powercut:N/posix,
libdbox/src/fs/dfs-powercut.h): every write since the last sync of its
file is undone at the Nth write or sync of the process, which then ends
as a power cut would end it.  Eight writers deliver (write tmp/X, fsync
it, rename into new/, fsync new/), change flags (rename into cur/ with
:2,S, fsync cur/) and expunge (unlink, fsync cur/) while the cut comes.
After the "reboot" (a mount without the simulator) every message is in
a state at least as far as its last acknowledged step and at most as far
as its last attempted one: exact bytes, listed once, never partial, a
delivery that was not durable back in tmp/.

Cut points: DBOXFS_POWERCUT_RUNS (default 200; 10,000 for a long run),
drawn over the whole storm with DBOXFS_POWERCUT_SEED (default fixed)."""

import errno
import os
import random
import re
import sqlite3
import threading

import pytest

from dboxfs_testlib import (abort_fuse, dboxctl, mount_dev, mounts,  # noqa: F401
                            wait_for, wtmp)

WRITERS = 8
PER_WRITER = 2
RUNS = int(os.environ.get("DBOXFS_POWERCUT_RUNS", "200"))
SEED = int(os.environ.get("DBOXFS_POWERCUT_SEED", "20261205"))
# states of a message, in the order its writer takes it through them
TMP, NEW, CUR, GONE = range(4)


class Msg:
    def __init__(self, name, data):
        self.name, self.data = name, data
        self.attempted = -1     # furthest state whose call was made
        self.durable = -1       # furthest state acknowledged durable


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pending_has(store, name):
    d = os.path.join(store, "dboxfs", "pending")
    return any(n.endswith("." + name) for n in os.listdir(d))


def writer(mnt, store, msgs, mode, proc):
    """mode: "fsync" (fsync the directory after each step), "wait" (no
    fsync: wait until the commit interval flushed the delivery), "sync"
    (-o sync: a step is durable when its call returns), "kill" (kill -9:
    the page cache survives, so the same); "nofsync" (the file in tmp/
    is not fsynced, nor any directory: nothing is promised but
    atomicity), "nofsync-dir" (the file is not fsynced, each directory
    is after the step: the flush makes the message's bytes durable with
    its rename)."""
    def step(state, call, dirpath):
        m.attempted = state
        call()
        if mode in ("sync", "kill"):
            m.durable = state
        elif mode in ("fsync", "nofsync-dir"):
            fsync_dir(dirpath)
            m.durable = state
        elif mode == "wait" and state == NEW:
            wait_for(lambda: proc.poll() is not None or
                     not pending_has(store, m.name), timeout=30,
                     what="commit interval")
            if proc.poll() is None:
                m.durable = state
    try:
        for m in msgs:
            tmp = os.path.join(mnt, "tmp", m.name)
            new = os.path.join(mnt, "new", m.name)
            cur = os.path.join(mnt, "cur", m.name + ":2,S")
            m.attempted = TMP
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                os.write(fd, m.data)
                if not mode.startswith("nofsync"):
                    os.fsync(fd)
                    m.durable = TMP
            finally:
                os.close(fd)
            step(NEW, lambda: os.rename(tmp, new), os.path.join(mnt, "new"))
            step(CUR, lambda: os.rename(new, cur), os.path.join(mnt, "cur"))
            if len(m.data) % 2 == 0:
                step(GONE, lambda: os.unlink(cur), os.path.join(mnt, "cur"))
    except OSError as e:
        # the daemon is gone: ENOTCONN, ECONNABORTED; or it went while a
        # call was waiting for it
        assert e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO,
                           errno.ENOENT), e


def dying(proc):
    """The daemon's main thread is gone but the process is not: a
    thread of it is stuck in the kernel (an invalidation notify waiting
    for the directory lock of a rename that waits for the daemon: a
    dead daemon's connection must be aborted, as after any crash)."""
    try:
        with open("/proc/%d/stat" % proc.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def join_storm(threads, mnt, proc):
    dev = mount_dev(mnt)
    wait_for(lambda: not any(t.is_alive() for t in threads) or
             dying(proc), timeout=120, what="the storm")
    if any(t.is_alive() for t in threads) and dev is not None:
        abort_fuse(dev)
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()


def storm(mnt, store, rng, tag, modes, proc):
    all_msgs, threads = [], []
    for w in range(WRITERS):
        msgs = [Msg("%s.w%d.m%d" % (tag, w, i),
                    b"Subject: %s %d %d\n\n" % (tag.encode(), w, i) +
                    rng.randbytes(rng.randrange(100, 3000)))
                for i in range(PER_WRITER)]
        all_msgs += msgs
        t = threading.Thread(target=writer, args=(
            mnt, store, msgs, modes[w % len(modes)], proc))
        t.start()
        threads.append(t)
    return all_msgs, threads


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check(mnt, msgs, tag):
    """The state after the reboot, against what the writers saw."""
    found = {}
    for sub in ("new", "cur"):
        for n in os.listdir(os.path.join(mnt, sub)):
            base = n.split(":2,")[0]
            assert base not in found, "listed twice: %s" % n
            found[base] = (sub, n)
    tmp = set(os.listdir(os.path.join(mnt, "tmp")))
    for m in msgs:
        where = found.pop(m.name, None)
        if where is None and m.name in tmp:
            state = TMP
            if m.durable >= TMP:
                assert read(os.path.join(mnt, "tmp", m.name)) == m.data
        elif where is None:
            state = GONE if m.attempted >= NEW else None
            if m.attempted < NEW:
                # cut before its file was written: nothing, or in tmp/
                assert m.durable < TMP, m.name
                continue
        else:
            sub, n = where
            state = NEW if sub == "new" else CUR
            assert n == (m.name if state == NEW else m.name + ":2,S"), n
            assert read(os.path.join(mnt, sub, n)) == m.data, n
            assert m.name not in tmp, "delivered and in tmp/: " + m.name
        assert state is not None
        assert max(m.durable, TMP) <= state <= max(m.attempted, TMP), (
            "%s: state %d, durable %d, attempted %d" % (
                m.name, state, m.durable, m.attempted))
    others = [b for b in found if b.startswith(tag + ".")]
    assert not others, others


def events_of(output):
    counts = re.findall(r"powercut: (\d+) events", output)
    return int(counts[-1]) if counts else None


def chained_cuts(mounts, store, mnt, rng, prefix, cuts, opts, modes):
    """Like run_cut for each cut point, but the mount that checks one
    storm is the next one's, cut points and all, so that a cut may also
    come during the recovery of the last one (the check then waits for
    the mount after).  Returns how many runs were cut."""
    todo, died = [], 0
    for i, cut in enumerate(cuts):
        try:
            m = mounts(store, mnt, "fs=powercut:%d/posix" % cut, *opts)
        except AssertionError:
            died += 1       # cut while opening the store, before mounting
            continue
        try:
            for msgs, tag in todo:
                check(mnt, msgs, tag)
            todo = []
        except OSError as e:
            # cut during the start-up sweep: check at the next mount
            assert e.errno in (errno.ENOTCONN, errno.ECONNABORTED), e
            assert m.stop() == 99
            died += 1
            continue
        msgs, threads = storm(mnt, store, rng, "%s%d" % (prefix, i), modes,
                              m.proc)
        join_storm(threads, mnt, m.proc)
        rc = m.stop()
        assert rc in (0, 99), m.output()
        died += rc == 99
        todo.append((msgs, "%s%d" % (prefix, i)))
    c = mounts(store, mnt)
    try:
        for msgs, tag in todo:
            check(mnt, msgs, tag)
        assert not os.listdir(os.path.join(store, "dboxfs", "pending"))
    finally:
        c.stop()
    return died


def calibrate(mounts, store, mnt, opts, modes):
    """Events of a mount alone, and of a whole storm."""
    m = mounts(store, mnt, "fs=powercut:0/posix", *opts)
    m.stop()
    low = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:0/posix", *opts)
    msgs, threads = storm(mnt, store, random.Random(1), "cal", modes,
                          m.proc)
    join_storm(threads, mnt, m.proc)
    m.stop()
    high = events_of(m.output())
    assert low is not None and high is not None and high > low
    return low, high


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
def test_powercut_storms(wtmp, mounts, fmt):
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", fmt)
    opts = ("commit=0.2",)
    modes = ["fsync"] * 7 + ["wait"]
    low, high = calibrate(mounts, store, mnt, opts, modes)
    rng = random.Random(SEED + (fmt == "sdbox"))
    n = max(1, RUNS // 2)
    cuts = [rng.randint(1, high + 20) for _ in range(n)]
    died = chained_cuts(mounts, store, mnt, rng, "r", cuts, opts, modes)
    # most cut points fall inside a mount's life
    assert died >= n // 2, died


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
def test_powercut_storms_without_fsync(wtmp, mounts, fmt):
    """Deliveries whose file was never fsynced commit without a device
    flush (their rows unconfirmed until the group flush): cuts during
    such storms leave each message whole in new/ or cur/, or back in
    tmp/, never partial nor listed twice; those whose directory fsync
    returned are there with exact bytes."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", fmt)
    opts = ("commit=0.2",)
    modes = ["nofsync"] * 4 + ["nofsync-dir"] * 2 + ["fsync", "wait"]
    low, high = calibrate(mounts, store, mnt, opts, modes)
    rng = random.Random(SEED + 11 + (fmt == "sdbox"))
    n = max(1, RUNS // 4)
    cuts = [rng.randint(low + 1, high + 20) for _ in range(n)]
    died = chained_cuts(mounts, store, mnt, rng, "u", cuts, opts, modes)
    assert died >= n // 2, died


def unconfirmed_rows(store):
    db = sqlite3.connect(os.path.join(store, "dboxfs", "index.sqlite"))
    try:
        return db.execute("SELECT count(*) FROM unconfirmed").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
def test_delivery_without_fsync_is_unconfirmed_until_the_flush(
        wtmp, mounts, fmt):
    """A rename of a file that was not fsynced commits its row without
    syncing the record (marked unconfirmed in the index); the fsync of
    new/ syncs the record and confirms the row; -o sync never marks."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", fmt)
    m = mounts(store, mnt, "commit=3600")
    data = b"Subject: u\n\nbody\n"
    for name in ("a", "b"):
        with open(os.path.join(mnt, "tmp", name), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", name),
                  os.path.join(mnt, "new", name))
    assert unconfirmed_rows(store) == 2
    fsync_dir(os.path.join(mnt, "new"))
    assert unconfirmed_rows(store) == 0
    assert read(os.path.join(mnt, "new", "a")) == data
    m.stop()
    m = mounts(store, mnt, "sync")
    with open(os.path.join(mnt, "tmp", "c"), "wb") as f:
        f.write(data)
    os.rename(os.path.join(mnt, "tmp", "c"), os.path.join(mnt, "new", "c"))
    assert unconfirmed_rows(store) == 0
    m.stop()


def test_index_of_schema_3_gets_the_unconfirmed_table(wtmp, mounts):
    """An index of schema version 3 (before unconfirmed rows) is
    upgraded at the first read-write open; its messages stay."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "mdbox")
    m = mounts(store, mnt)
    with open(os.path.join(mnt, "tmp", "a"), "wb") as f:
        f.write(b"Subject: a\n\nbody\n")
    os.rename(os.path.join(mnt, "tmp", "a"), os.path.join(mnt, "new", "a"))
    m.stop()
    db = sqlite3.connect(os.path.join(store, "dboxfs", "index.sqlite"))
    db.execute("DROP TABLE unconfirmed")
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()
    m = mounts(store, mnt, "commit=3600")
    try:
        assert os.listdir(os.path.join(mnt, "new")) == ["a"]
        with open(os.path.join(mnt, "tmp", "b"), "wb") as f:
            f.write(b"Subject: b\n\nbody\n")
        os.rename(os.path.join(mnt, "tmp", "b"),
                  os.path.join(mnt, "new", "b"))
        assert unconfirmed_rows(store) == 1
    finally:
        m.stop()
    db = sqlite3.connect(os.path.join(store, "dboxfs", "index.sqlite"))
    assert db.execute("PRAGMA user_version").fetchone()[0] == 5
    db.close()


def test_unconfirmed_record_lost_at_a_cut_goes_back_to_tmp(wtmp, mounts):
    """The index row of a delivery made durable (here by the removal of
    another folder, which syncs the index) while its record was not:
    after the cut the open drops the row, the file is back in tmp/, and
    the folder takes new deliveries."""
    cal, store = os.path.join(wtmp, "cal"), os.path.join(wtmp, "store")
    mnt = os.path.join(wtmp, "mnt")
    dboxctl("init", cal, "--format", "mdbox")
    dboxctl("init", store, "--format", "mdbox")
    data = b"Subject: lost\n\nbody\n"

    def until_index_synced(tag):
        with open(os.path.join(mnt, "tmp", "x" + tag), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", "x" + tag),
                  os.path.join(mnt, "new", "x" + tag))
        os.mkdir(os.path.join(mnt, ".T" + tag))
        os.rmdir(os.path.join(mnt, ".T" + tag))
    # events up to the index's sync (and the unmount's, after it)
    # (the same steps on a store of its own)
    m = mounts(cal, mnt, "fs=powercut:0/posix", "commit=3600")
    until_index_synced("1")
    m.stop()
    upto = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (upto + 1),
               "commit=3600")
    until_index_synced("1")
    # unsynced writes of tmp/ files until the cut: no record is synced
    with pytest.raises(OSError):
        for i in range(1000):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
    assert m.stop() == 99
    c = mounts(store, mnt)
    try:
        assert os.listdir(os.path.join(mnt, "new")) == []
        assert "x1" in os.listdir(os.path.join(mnt, "tmp"))
        assert unconfirmed_rows(store) == 0
        with open(os.path.join(mnt, "tmp", "y"), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", "y"),
                  os.path.join(mnt, "new", "y"))
        assert read(os.path.join(mnt, "new", "y")) == data
    finally:
        c.stop()
    assert "record was not durable" in c.output()


def test_unconfirmed_delivery_moved_keeps_its_check(wtmp, mounts):
    """A delivery without fsync moved to another folder within the
    commit interval: the move makes its record durable first, and its
    mark goes with it, while its old one stays (the spool file kept for
    it is the moved message's, not a lost delivery's); after a cut (its
    rows made durable by the removal of a folder) the moved message is
    there, intact, and its spool file is not back in tmp/ (sdbox: the
    moved record is a file of its own)."""
    fmt = "sdbox"
    cal, store = os.path.join(wtmp, "cal"), os.path.join(wtmp, "store")
    mnt = os.path.join(wtmp, "mnt")
    dboxctl("init", cal, "--format", fmt)
    dboxctl("init", store, "--format", fmt)
    data = b"Subject: moved\n\nbody\n"

    def deliver_move_sync():
        os.mkdir(os.path.join(mnt, ".O"))
        for sub in ("cur", "new", "tmp"):
            os.mkdir(os.path.join(mnt, ".O", sub))
        with open(os.path.join(mnt, "tmp", "x1"), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", "x1"),
                  os.path.join(mnt, "new", "x1"))
        os.rename(os.path.join(mnt, "new", "x1"),
                  os.path.join(mnt, ".O", "new", "x1"))
        os.mkdir(os.path.join(mnt, ".T"))
        os.rmdir(os.path.join(mnt, ".T"))
    m = mounts(cal, mnt, "fs=powercut:0/posix", "commit=3600")
    deliver_move_sync()
    m.stop()
    upto = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (upto + 1),
               "commit=3600")
    deliver_move_sync()
    assert unconfirmed_rows(store) == 2
    with pytest.raises(OSError):
        for i in range(1000):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
    assert m.stop() == 99
    c = mounts(store, mnt)
    try:
        moved = view_of(os.path.join(mnt, ".O"))
        assert moved == {"new/x1": (len(data), data)}, moved
        assert "x1" not in os.listdir(os.path.join(mnt, "tmp"))
        assert unconfirmed_rows(store) == 0
    finally:
        c.stop()
    assert "record was not durable" not in c.output()


def make_maildir_folder(path):
    os.mkdir(path)
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(path, sub))


def cut_after(mounts, cal, store, mnt, setup, steps):
    """setup() on a mount of cal and one of store (whole, durable), then
    steps() on a mount of store that a power cut ends at its first
    write or sync after them (counted on a mount of cal doing the same),
    which unsynced writes to tmp/ files then bring."""
    for root in (cal, store):
        m = mounts(root, mnt)
        setup()
        m.stop()
    m = mounts(cal, mnt, "fs=powercut:0/posix", "commit=3600")
    steps()
    m.stop()
    upto = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (upto + 1),
               "commit=3600")
    steps()
    with pytest.raises(OSError):
        for i in range(1000):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
    assert m.stop() == 99


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
@pytest.mark.parametrize("where", ["same", "other"])
def test_unconfirmed_delivery_renamed_onto_a_message_survives_a_cut(
        wtmp, mounts, fmt, where):
    """A delivery without fsync renamed within the commit interval onto
    an existing message (of its folder: one transaction replacing it; of
    another folder: an expunge, then the move) has its record made
    durable before the message it replaces goes: after a cut that came
    once the rename was durable (the index synced by a folder's
    removal), the name shows the new bytes.  Before, the cut dropped the
    unconfirmed row while the replaced message stayed gone: the name
    showed nothing."""
    cal, store = os.path.join(wtmp, "cal"), os.path.join(wtmp, "store")
    mnt = os.path.join(wtmp, "mnt")
    dboxctl("init", cal, "--format", fmt)
    dboxctl("init", store, "--format", fmt)
    old, data = b"Subject: old\n\nold body\n", b"Subject: new\n\nnew\n"
    src = mnt if where == "same" else os.path.join(mnt, ".O")

    def setup():
        if where == "other":
            make_maildir_folder(src)
        with open(os.path.join(mnt, "tmp", "y"), "wb") as f:
            f.write(old)
        os.rename(os.path.join(mnt, "tmp", "y"),
                  os.path.join(mnt, "new", "y"))

    def deliver_rename_sync():
        with open(os.path.join(src, "tmp", "x1"), "wb") as f:
            f.write(data)
        os.rename(os.path.join(src, "tmp", "x1"),
                  os.path.join(src, "new", "x1"))
        os.rename(os.path.join(src, "new", "x1"),
                  os.path.join(mnt, "new", "y"))
        os.mkdir(os.path.join(mnt, ".T"))
        os.rmdir(os.path.join(mnt, ".T"))
    cut_after(mounts, cal, store, mnt, setup, deliver_rename_sync)
    c = mounts(store, mnt)
    try:
        assert os.listdir(os.path.join(mnt, "new")) == ["y"]
        assert read(os.path.join(mnt, "new", "y")) == data
        for sub in ("cur", "new"):
            assert os.listdir(os.path.join(src, sub)) == \
                (["y"] if src == mnt and sub == "new" else [])
        assert unconfirmed_rows(store) == 0
    finally:
        c.stop()


def test_powercut_sync_keeps_the_old_promise(wtmp, mounts):
    """-o sync: a rename is durable when it returns; a cut right after it
    loses nothing (the writers never fsync a directory)."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "mdbox")
    modes = ["sync"]
    low, high = calibrate(mounts, store, mnt, ("sync",), modes)
    rng = random.Random(SEED + 7)
    cuts = [rng.randint(low + 1, high) for _ in range(20)]
    chained_cuts(mounts, store, mnt, rng, "s", cuts, ("sync",), modes)


def test_without_sync_a_cut_loses_what_was_not_flushed(wtmp, mounts):
    """Without -o sync and with no fsync of the directory, a rename is
    not durable until the commit interval: a cut right after it (at
    the next write) takes it back to tmp/.  This is the check that the
    simulator cuts anything at all."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "mdbox")
    m = mounts(store, mnt, "fs=powercut:0/posix", "commit=3600")
    m.stop()
    low = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (low + 40),
               "commit=3600")
    data = b"Subject: lost\n\nbody\n"
    with open(os.path.join(mnt, "tmp", "x1"), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(os.path.join(mnt, "tmp", "x1"), os.path.join(mnt, "new", "x1"))
    assert os.listdir(os.path.join(mnt, "new")) == ["x1"]
    # writes until the cut
    with pytest.raises(OSError):
        for i in range(100):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
                f.flush()
                os.fsync(f.fileno())
    assert m.stop() == 99
    c = mounts(store, mnt)
    assert os.listdir(os.path.join(mnt, "new")) == []
    assert read(os.path.join(mnt, "tmp", "x1")) == data
    c.stop()


def write_fsync_until_cut(mnt, data):
    """Writes tmp/x1 and fsyncs it, then unsynced tmp/ files until the
    simulator cuts (never a rename).  Returns whether the fsync of x1
    returned."""
    fsynced = False
    try:
        fd = os.open(os.path.join(mnt, "tmp", "x1"),
                     os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
            fsynced = True
        finally:
            os.close(fd)
        for i in range(1000):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
    except OSError as e:
        assert e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO,
                           errno.ENOENT), e
        return fsynced
    raise AssertionError("the simulator never cut")


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
def test_file_fsynced_in_tmp_survives_a_cut_before_its_rename(
        wtmp, mounts, fmt):
    """A power cut at every write and sync from the writing of tmp/x1
    to past its fsync, before any rename: once the fsync returned, x1
    is in tmp/ with exact bytes (the daemon makes its record durable in
    the store then too, beyond the committed end, which a cut must not
    turn into a message); before, whatever tmp/ holds, no message."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", fmt)
    data = b"Subject: fsynced\n\n" + b"body\n" * 400
    m = mounts(store, mnt, "fs=powercut:0/posix", "commit=3600")
    m.stop()
    low = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:0/posix", "commit=3600")
    fd = os.open(os.path.join(mnt, "tmp", "x0"), os.O_CREAT | os.O_WRONLY)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.unlink(os.path.join(mnt, "tmp", "x0"))
    m.stop()
    high = events_of(m.output())
    assert high > low
    kept = 0
    for cut in range(low + 1, high + 3):
        m = mounts(store, mnt, "fs=powercut:%d/posix" % cut, "commit=3600")
        fsynced = write_fsync_until_cut(mnt, data)
        assert m.stop() == 99
        c = mounts(store, mnt)
        try:
            view = view_of(mnt)
            for k in view:
                os.unlink(os.path.join(mnt, k))
        finally:
            c.stop()
        assert not [k for k in view if not k.startswith("tmp/")], (cut,
                                                                   view)
        if fsynced:
            kept += 1
            assert view.get("tmp/x1") == (len(data), data), cut
    assert kept > 0
    dboxctl("check", store)


def view_of(mnt):
    """cur/ new/ tmp/ as the mount shows them: name -> size, bytes."""
    out = {}
    for sub in ("cur", "new", "tmp"):
        for n in os.listdir(os.path.join(mnt, sub)):
            path = os.path.join(mnt, sub, n)
            out[sub + "/" + n] = (os.stat(path).st_size, read(path))
    return out


def test_ro_mount_after_a_cut_shows_the_lost_delivery_in_tmp(wtmp, mounts):
    """A read-only mount runs no repair and writes nothing, but shows
    what the next read-write mount's repair leaves: a delivery a power
    cut left not durable back in tmp/ (under "x1.1" here, tmp/ having a
    newer x1), never in new/; the read-write mount and a read-only one
    after it show the same."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "sdbox")
    m = mounts(store, mnt, "fs=powercut:0/posix", "commit=3600")
    m.stop()
    low = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (low + 60),
               "commit=3600")
    data = b"Subject: lost\n\nbody\n"
    for name, body in (("x1", data), ("x1", b"Subject: again\n\n")):
        with open(os.path.join(mnt, "tmp", name), "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        if body == data:
            os.rename(os.path.join(mnt, "tmp", "x1"),
                      os.path.join(mnt, "new", "x1"))
    with pytest.raises(OSError):
        for i in range(200):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
                f.flush()
                os.fsync(f.fileno())
    assert m.stop() == 99
    pending = os.path.join(store, "dboxfs", "pending")
    assert [n.split(".", 2)[2] for n in os.listdir(pending)] == ["x1"]
    # not what the daemon leaves there: stays, shows nowhere
    box = os.listdir(pending)[0].split(".")[0]
    junk = ["junk", box + ".x.y", box + ".7.dir"]
    for n in junk[:2]:
        with open(os.path.join(pending, n), "wb") as f:
            f.write(b"Subject: junk\n\n")
    os.mkdir(os.path.join(pending, junk[2]))
    before = sorted(os.listdir(pending))
    r = mounts(store, mnt, "ro")
    ro = view_of(mnt)
    assert os.path.exists(os.path.join(mnt, "tmp", "x1.1"))
    r.stop()
    assert sorted(os.listdir(pending)) == before
    assert not [k for k in ro if not k.startswith("tmp/")], ro
    assert ro["tmp/x1.1"] == (len(data), data)
    assert ro["tmp/x1"][1] == b"Subject: again\n\n"
    c = mounts(store, mnt)
    assert view_of(mnt) == ro
    c.stop()
    assert sorted(os.listdir(pending)) == sorted(junk)
    r = mounts(store, mnt, "ro")
    assert view_of(mnt) == ro
    r.stop()


def files_without_their_file(store):
    """Rows of the index's files table whose m.N is not on disk."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        store, "dboxfs", "index.sqlite"), uri=True)
    try:
        ids = [r[0] for r in db.execute("SELECT file_id FROM files")]
    finally:
        db.close()
    return [i for i in ids if not os.path.exists(
        os.path.join(store, "storage", "m.%d" % i))]


def tree_bytes(root):
    """Every file and directory under root: path -> bytes (None: dir),
    but SQLite's shared memory (index.sqlite-shm, which any reader of a
    WAL database maps) and an empty write-ahead log (the same)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), root)] = None
        for n in files:
            with open(os.path.join(d, n), "rb") as f:
                data = f.read()
            if not n.endswith("-shm") and (data or not n.endswith("-wal")):
                out[os.path.relpath(os.path.join(d, n), root)] = data
    return out


def test_unconfirmed_mfile_lost_whole_leaves_no_files_row(wtmp, mounts):
    """An m.N created by a delivery without fsync (nor of storage/) and
    lost whole at the cut (its name not durable: the simulator undoes
    writes, not names, so the test removes it): the open drops its
    rows and its row of the files table, instead of keeping that row,
    sealed, for a file that no purge or check ever meets again."""
    cal, store = os.path.join(wtmp, "cal"), os.path.join(wtmp, "store")
    mnt = os.path.join(wtmp, "mnt")
    dboxctl("init", cal, "--format", "mdbox")
    dboxctl("init", store, "--format", "mdbox")
    data = b"Subject: lost\n\nbody\n"

    def deliver_sync_index():
        with open(os.path.join(mnt, "tmp", "x1"), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", "x1"),
                  os.path.join(mnt, "new", "x1"))
        os.mkdir(os.path.join(mnt, ".T"))
        os.rmdir(os.path.join(mnt, ".T"))
    cut_after(mounts, cal, store, mnt, lambda: None, deliver_sync_index)
    assert os.listdir(os.path.join(store, "storage")) == ["m.1"]
    os.unlink(os.path.join(store, "storage", "m.1"))
    c = mounts(store, mnt)
    try:
        assert os.listdir(os.path.join(mnt, "new")) == []
        assert "x1" in os.listdir(os.path.join(mnt, "tmp"))
        with open(os.path.join(mnt, "tmp", "y"), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", "y"),
                  os.path.join(mnt, "new", "y"))
        assert read(os.path.join(mnt, "new", "y")) == data
    finally:
        c.stop()
    assert "record was not durable" in c.output()
    assert files_without_their_file(store) == []


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
def test_ro_mount_after_lost_unconfirmed_records_shows_the_repair(
        wtmp, mounts, fmt):
    """Deliveries without any fsync whose rows were made durable (by the
    removal of a folder, which syncs the index) while their records were
    not, then a cut: a read-only mount shows what the read-write open's
    check of unconfirmed rows leaves (the deliveries back in tmp/, none
    in new/ failing with EIO), writing nothing; a read-only mount after
    the read-write one shows the same."""
    cal, store = os.path.join(wtmp, "cal"), os.path.join(wtmp, "store")
    mnt = os.path.join(wtmp, "mnt")
    dboxctl("init", cal, "--format", fmt)
    dboxctl("init", store, "--format", fmt)
    kept = b"Subject: kept\n\nbody\n"

    def storm_until_index_synced():
        with open(os.path.join(mnt, "tmp", "k"), "wb") as f:
            f.write(kept)
            f.flush()
            os.fsync(f.fileno())
        os.rename(os.path.join(mnt, "tmp", "k"), os.path.join(mnt, "new", "k"))
        fsync_dir(os.path.join(mnt, "new"))
        for i in range(6):
            with open(os.path.join(mnt, "tmp", "x%d" % i), "wb") as f:
                f.write(b"Subject: lost %d\n\n" % i + b"y" * (100 * i))
            os.rename(os.path.join(mnt, "tmp", "x%d" % i),
                      os.path.join(mnt, "new", "x%d" % i))
        os.mkdir(os.path.join(mnt, ".T"))
        os.rmdir(os.path.join(mnt, ".T"))
    m = mounts(cal, mnt, "fs=powercut:0/posix", "commit=3600")
    storm_until_index_synced()
    m.stop()
    upto = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (upto + 1),
               "commit=3600")
    storm_until_index_synced()
    # unsynced writes of tmp/ files until the cut: no record is synced
    with pytest.raises(OSError):
        for i in range(1000):
            with open(os.path.join(mnt, "tmp", "f%d" % i), "wb") as f:
                f.write(b"x")
    assert m.stop() == 99
    assert unconfirmed_rows(store) > 0
    before = tree_bytes(store)
    r = mounts(store, mnt, "ro")
    try:
        ro = view_of(mnt)
    finally:
        r.stop()
    assert tree_bytes(store) == before
    assert "new/k" in ro
    assert [k for k in ro if k.startswith("tmp/x")], ro
    assert not [k for k in ro if k.startswith("new/x")], ro
    c = mounts(store, mnt)
    try:
        assert view_of(mnt) == ro
    finally:
        c.stop()
    assert "record was not durable" in c.output()
    assert unconfirmed_rows(store) == 0
    r = mounts(store, mnt, "ro")
    try:
        assert view_of(mnt) == ro
    finally:
        r.stop()


def test_kill9_storm_is_atomic(wtmp, mounts):
    """kill -9 at random moments of a storm: what the writers saw return
    is there (the page cache survives a killed daemon), all or nothing,
    listed once."""
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "sdbox")
    rng = random.Random(SEED + 9)
    for i in range(10):
        m = mounts(store, mnt, "commit=3600")
        msgs, threads = storm(mnt, store, rng, "k%d" % i, ["kill"], m.proc)
        wait_for(lambda: sum(x.attempted >= NEW for x in msgs) >=
                 rng.randint(1, len(msgs)) or
                 not any(t.is_alive() for t in threads), timeout=60,
                 interval=0.001, what="deliveries")
        m.kill()
        for t in threads:
            t.join(timeout=60)
        c = mounts(store, mnt)
        try:
            check(mnt, msgs, "k%d" % i)
        finally:
            c.stop()


def cut_after_rename(mounts, store, mnt, make_durable):
    """Delivers x1 (fsynced file, rename), calls make_durable(), then
    writes until the simulator cuts; returns what the reboot shows."""
    m = mounts(store, mnt, "fs=powercut:0/posix", "commit=3600")
    m.stop()
    low = events_of(m.output())
    m = mounts(store, mnt, "fs=powercut:%d/posix" % (low + 60),
               "commit=3600")
    data = b"Subject: kept\n\nbody\n"
    fd = os.open(os.path.join(mnt, "tmp", "x1"), os.O_CREAT | os.O_WRONLY)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.rename(os.path.join(mnt, "tmp", "x1"), os.path.join(mnt, "new", "x1"))
    make_durable()
    with pytest.raises(OSError):
        for i in range(200):
            fd = os.open(os.path.join(mnt, "tmp", "f%d" % i),
                         os.O_CREAT | os.O_WRONLY)
            os.write(fd, b"x")
            os.fsync(fd)
            os.close(fd)
    assert m.stop() == 99
    c = mounts(store, mnt)
    try:
        return (os.listdir(os.path.join(mnt, "new")),
                read(os.path.join(mnt, "new", "x1"))
                if os.path.exists(os.path.join(mnt, "new", "x1")) else None)
    finally:
        c.stop()


def test_fsync_of_a_message_makes_its_delivery_durable(wtmp, mounts):
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "sdbox")

    def fsync_msg():
        fd = os.open(os.path.join(mnt, "new", "x1"), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    names, data = cut_after_rename(mounts, store, mnt, fsync_msg)
    assert names == ["x1"] and data == b"Subject: kept\n\nbody\n"


def test_fsync_of_the_directory_makes_its_delivery_durable(wtmp, mounts):
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "mdbox")
    names, data = cut_after_rename(
        mounts, store, mnt, lambda: fsync_dir(os.path.join(mnt, "new")))
    assert names == ["x1"] and data == b"Subject: kept\n\nbody\n"


@pytest.mark.parametrize("opt", ["commit=-1", "commit=abc", "commit=1e9"])
def test_bad_commit_interval_is_refused(wtmp, opt):
    from dboxfs_testlib import DBOXFS, run
    store, mnt = os.path.join(wtmp, "store"), os.path.join(wtmp, "mnt")
    dboxctl("init", store, "--format", "mdbox")
    os.makedirs(mnt)
    p = run([DBOXFS, store, mnt, "-f", "-o", opt], check=False, timeout=30)
    assert p.returncode != 0
    assert b"commit" in p.stderr or b"invalid" in p.stderr, p.stderr
    assert not os.listdir(mnt)
