"""A message's bytes go into the kernel's page cache before a reader asks
for them (FUSE_NOTIFY_STORE, fusefs/pagepush.c): a cold open on a
read-write mount pushes the message it opens, and the first read of a
storage window pushes the next messages the window holds, so that a cold
pass over a folder sends few READs (issue 13, cold and first warm reads).
What is pushed must be exactly what a READ serves: plain, compressed and
single-instance-attachment records, messages larger than what one push
stores, through read(2) and mmap(2)."""

import mmap
import os
import random

import pytest

from dboxfs_testlib import DBOXFS, dboxctl, drops, make_maildir, \
    mounts  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built")

PUSH_MAX = 128 * 1024   # pagepush.h PAGEPUSH_MAX


def count(m, opcode):
    """Requests of one kind the daemon received so far (-o debug)."""
    return m.output().count("opcode: %s " % opcode)


def body(i, size):
    rng = random.Random(i)
    head = b"Subject: %d\n\n" % i
    line = bytes(rng.choice(b"abcdefghij ") for _ in range(75)) + b"\n"
    return (head + line * (size // 76 + 1))[:size]


def store_of(tmp_path, fmt, msgs):
    src = make_maildir(str(tmp_path / "src"), {
        "1700000000.M%dP1.host" % i: data for i, data in msgs.items()})
    store = str(tmp_path / "store")
    dboxctl("init", store, "--format", fmt)
    dboxctl("import", store, "INBOX", src)
    return store


def read_pass(cur):
    """{name: bytes} of a cold pass as cat does it (open, fstat, read to
    the end), in name order (uid order: the names' order here)."""
    got = {}
    for n in sorted(os.listdir(cur)):
        with open(os.path.join(cur, n), "rb") as f:
            os.fstat(f.fileno())
            got[n] = f.read()
    return got


def by_subject(got):
    return {int(d.split(b"\n", 1)[0].split()[1]): d for d in got.values()}


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_a_cold_pass_sends_few_reads(tmp_path, mounts, fmt, mode):
    """100 small messages read once, cold: a read-write mount sends no
    READ at all (each cold open pushes its message, or a check ahead
    pushed it); a read-only one (no OPEN) sends READs only for messages
    not pushed yet.  Before: one READ per message."""
    msgs = {i: body(i, 300 + 37 * i) for i in range(100)}
    store = store_of(tmp_path, fmt, msgs)
    for attempt in range(5):   # a fresh mount each: a cold pass
        mnt = str(tmp_path / ("mnt%d" % attempt))
        m = mounts(store, mnt, "debug", *(["ro"] if mode == "ro" else []))
        before = drops()
        got = read_pass(os.path.join(mnt, "cur"))
        assert by_subject(got) == msgs
        if drops() == before:
            break
        m.stop()
    reads = count(m, "READ")
    if mode == "rw":
        assert reads == 0, "%d READs on a cold pass" % reads
    else:
        # mdbox: a window holds the folder, one READ per 33 messages
        # (and one more now and then, when the reader overtakes the
        # push); sdbox: the checks ahead push in parallel, racing the
        # reader
        most = 15 if fmt == "mdbox" else 50
        assert reads <= most, "%d READs on a cold pass" % reads
    assert "NOTIFY: code=4 " in m.output()   # FUSE_NOTIFY_STORE


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_large_messages_read_right(tmp_path, mounts, fmt, mode):
    """Messages around and above what one push stores (the rest comes by
    READ), around a page and small: read(2) in odd pieces, pread and mmap(2) give
    exactly the stored bytes, cold and warm."""
    sizes = [PUSH_MAX - 1, PUSH_MAX, PUSH_MAX + 1, 3 * PUSH_MAX + 4097,
             1 << 20, 4096, 4095, 20, 5000]
    msgs = {i: body(i, s) for i, s in enumerate(sizes)}
    store = store_of(tmp_path, fmt, msgs)
    mnt = str(tmp_path / "mnt")
    mounts(store, mnt, *(["ro"] if mode == "ro" else []))
    cur = os.path.join(mnt, "cur")
    names = sorted(os.listdir(cur))
    for n in names:
        p = os.path.join(cur, n)
        with open(p, "rb") as f:
            data = b""
            while True:
                piece = f.read(7919)
                if not piece:
                    break
                data += piece
        i = int(data.split(b"\n", 1)[0].split()[1])
        assert os.stat(p).st_size == len(msgs[i]), n
        assert data == msgs[i], n
        fd = os.open(p, os.O_RDONLY)
        try:
            tail = max(0, len(msgs[i]) - 50)
            assert os.pread(fd, 100, tail) == msgs[i][tail:]
            with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mm:
                assert mm[:] == msgs[i], n
        finally:
            os.close(fd)
    # mapped first, before any read of the file: a fresh mount
    mnt2 = str(tmp_path / "mnt2")
    mounts(store, mnt2, *(["ro"] if mode == "ro" else []))
    for n in sorted(os.listdir(os.path.join(mnt2, "cur")), reverse=True):
        fd = os.open(os.path.join(mnt2, "cur", n), os.O_RDONLY)
        try:
            with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mm:
                data = mm[:]
        finally:
            os.close(fd)
        i = int(data.split(b"\n", 1)[0].split()[1])
        assert data == msgs[i], n

