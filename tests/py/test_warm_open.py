"""A warm open of a message on a read-write mount (a message checked
before) is answered from memory: no index lookup, no handle, so the
daemon makes no system call for it but reading the request and writing
the reply (fileio.c, open_warm).  Its reads, when the page cache misses,
come by inode and find the record where the index has it then: a record
another program moved meanwhile (dboxctl purge) reads exactly, through a
descriptor opened before the move too, and fsync of such a descriptor
still waits for the commits before it."""

import os
import shutil

import pytest

from dboxfs_testlib import DBOXFS, Strace, dboxctl, make_maildir, \
    mounts  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built")

COUNT = 60
ROUNDS = 5


def make_store(tmp_path):
    msgs = {"17000%05d.M%dP1.host" % (i, i):
            b"Subject: w%d\n\n" % i + b"y" * (700 + 31 * i) + b"\n"
            for i in range(COUNT)}
    src = make_maildir(str(tmp_path / "src"), msgs)
    store = str(tmp_path / "store")
    dboxctl("init", store, "--format", "mdbox")
    dboxctl("import", store, "INBOX", src)
    return store, msgs


def read_all(mnt, msgs):
    cur = os.path.join(mnt, "cur")
    for name in sorted(os.listdir(cur)):
        with open(os.path.join(cur, name), "rb") as f:
            assert f.read() == msgs[name.split(":2,")[0]], name


def drop_pages(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="strace not installed")
def test_warm_open_makes_no_index_lookup(tmp_path, mounts):
    store, msgs = make_store(tmp_path)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    m = mounts(store, mnt)
    read_all(mnt, msgs)                 # each message checked once
    cur = os.path.join(mnt, "cur")
    paths = [os.path.join(cur, n) for n in sorted(os.listdir(cur))]
    for p in paths:
        os.stat(p)      # the atime a read of ours made stale, asked now
    st = Strace(m.proc.pid, str(tmp_path / "strace"), Strace.INDEX)
    try:
        for _ in range(ROUNDS):         # warm opens and releases only
            for p in paths:
                with open(p, "rb") as f:
                    assert len(f.read()) > 700
    finally:
        calls = st.stop()
    # before: 3 per open (SQLite's read transaction: a lock and an
    # unlock of its shared memory, a stat of the database), 900 or more;
    # what remains is the follower's periodic check (a few per second)
    assert len(calls) < ROUNDS * COUNT // 3, calls[:20]


def test_warm_descriptor_reads_a_record_moved_by_purge(tmp_path, mounts):
    store, msgs = make_store(tmp_path)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mounts(store, mnt)
    cur = os.path.join(mnt, "cur")
    read_all(mnt, msgs)
    names = sorted(os.listdir(cur))
    # warm opens, held across the move
    held = {n: open(os.path.join(cur, n), "rb") for n in names[1:]}
    try:
        # an expunge leaves a record nothing points at; another program's
        # purge copies the live ones into a new m.N and removes m.1
        os.unlink(os.path.join(cur, names[0]))
        old = set(os.listdir(os.path.join(store, "storage")))
        dboxctl("purge", store)
        assert set(os.listdir(os.path.join(store, "storage"))) != old
        for n in names[1:]:
            drop_pages(os.path.join(cur, n))    # the reads reach us
        for n, f in held.items():
            f.seek(0)
            assert f.read() == msgs[n.split(":2,")[0]], n
        # a message's fsync waits for the commits before it, handle or
        # not (here: the expunge's)
        os.fsync(held[names[1]].fileno())
    finally:
        for f in held.values():
            f.close()
    for n in names[1:]:
        drop_pages(os.path.join(cur, n))
    read_all(mnt, {k: v for k, v in msgs.items()
                   if k != names[0].split(":2,")[0]})
