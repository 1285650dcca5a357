"""Reads on slow storage (fs=delay:..., every I/O of the daemon waits):
a cold read of an mdbox folder costs about one I/O per window of its m.N
file, not two per message (the check at open and the read), and a warm
re-read costs none (read-only mounts have no opens; read-write ones skip
the check of a message checked before)."""

import collections
import os
import re
import shutil
import time

import pytest

from dboxfs_testlib import DBOXFS, Strace, dboxctl, drops, make_maildir, \
    mounts  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built")

COUNT = 40
DELAY = 0.1


def make_store(tmp_path, fmt):
    msgs = {"17000%05d.M%dP1.host" % (i, i):
            b"Subject: m%d\n\n" % i + b"x" * (1500 + 37 * i) + b"\n"
            for i in range(COUNT)}
    src = make_maildir(str(tmp_path / "src"), msgs)
    store = str(tmp_path / "store")
    dboxctl("init", store, "--format", fmt)
    dboxctl("import", store, "INBOX", src)
    return store, msgs


def read_all(mnt, msgs):
    cur = os.path.join(mnt, "cur")
    t = time.monotonic()
    for name in sorted(os.listdir(cur)):
        with open(os.path.join(cur, name), "rb") as f:
            assert f.read() == msgs[name.split(":2,")[0]], name
    return time.monotonic() - t


@pytest.mark.parametrize("ro", [True, False], ids=["ro", "rw"])
def test_mdbox_cold_read_shares_reads(tmp_path, mounts, ro):
    store, msgs = make_store(tmp_path, "mdbox")
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mounts(store, mnt, "fs=delay:%dms/posix" % int(DELAY * 1000),
           *(["ro"] if ro else []))
    cold = read_all(mnt, msgs)
    # one I/O per message alone would take COUNT * DELAY = 4 s (before:
    # two per message, 8 s)
    assert cold < COUNT * DELAY / 3, cold
    warm = read_all(mnt, msgs)
    assert warm < COUNT * DELAY / 4, warm


@pytest.mark.parametrize("ro", [True, False], ids=["ro", "rw"])
def test_sdbox_warm_read_needs_no_io(tmp_path, mounts, ro):
    store, msgs = make_store(tmp_path, "sdbox")
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mounts(store, mnt, "fs=delay:%dms/posix" % int(DELAY * 1000),
           *(["ro"] if ro else []))
    # one file per message: the cold read opens and checks each (ahead,
    # test below); the warm one needs no I/O (before: a check per open,
    # 4 s)
    read_all(mnt, msgs)
    warm = read_all(mnt, msgs)
    assert warm < COUNT * DELAY / 4, warm


@pytest.mark.parametrize("ro", [True, False], ids=["ro", "rw"])
def test_sdbox_cold_read_in_uid_order_checks_ahead(tmp_path, mounts, ro):
    """sdbox: a cold read in uid order checks the next messages ahead, in
    parallel (fileio.c, check_ahead): about two I/Os per 9 messages
    instead of an open and a read of each u.N in turn."""
    store, msgs = make_store(tmp_path, "sdbox")
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mounts(store, mnt, "fs=delay:%dms/posix" % int(DELAY * 1000),
           *(["ro"] if ro else []))
    cold = read_all(mnt, msgs)
    # before: 2 * COUNT * DELAY = 8 s; now ~1 s
    assert cold < COUNT * DELAY / 2.5, cold


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="strace not installed")
def test_sdbox_cold_pass_is_checked_ahead_in_batches(tmp_path, mounts):
    """sdbox, read-write: a cold read in uid order is checked ahead in a
    window that every open in order moves on, warm ones too (fileio.c,
    check_ahead), a batch at a time: the index is read twice per batch
    (its rows listed, the mailbox's name), not per message (before: the
    row, then the mailbox's name twice, for every message, 3 read
    transactions each); every u.N is opened once, also when the reader
    overtakes the check of its message (it waits for that check); and
    each message goes into the page cache in one store, from the bytes
    its check read (before: a zero-byte store to see whether the kernel
    knows the inode, then the store)."""
    n = 120
    msgs = {"17000%05d.M%dP1.host" % (i, i):
            b"Subject: b%d\n\n" % i + b"z" * (900 + 23 * i) + b"\n"
            for i in range(n)}
    src = make_maildir(str(tmp_path / "src"), msgs)
    store = str(tmp_path / "store")
    dboxctl("init", store, "--format", "sdbox")
    dboxctl("import", store, "INBOX", src)
    for attempt in range(5):   # a fresh mount each: a cold pass
        mnt = str(tmp_path / ("mnt%d" % attempt))
        os.mkdir(mnt)
        m = mounts(store, mnt, "debug")
        cur = os.path.join(mnt, "cur")
        names = sorted(os.listdir(cur))    # uid order
        assert len(names) == n
        stores0 = m.output().count("NOTIFY: code=4 ")
        before = drops()
        st = Strace(m.proc.pid, str(tmp_path / ("strace%d" % attempt)),
                    "fcntl,openat")
        try:
            for name in names:
                with open(os.path.join(cur, name), "rb") as f:
                    assert f.read() == msgs[name.split(":2,")[0]], name
        finally:
            calls = st.stop()
        if drops() == before:
            break
        m.stop()
    # SQLite's read transactions: a shared lock on its -shm each; two
    # per batch of 7 (VERIFIED_AHEAD - VERIFIED_REFILL + 1) and the first
    # two messages' cold opens: ~40 (before: 3 * n = 360)
    reads = [c for c in calls if "F_RDLCK" in c]
    assert len(reads) < n // 2, "%d index reads" % len(reads)
    opened = collections.Counter(
        mo.group(1) for c in calls
        for mo in [re.search(r'openat\(.*"[^"]*/(u\.[0-9]+)"', c)] if mo)
    assert len(opened) == n and max(opened.values()) == 1, opened
    pushed = m.output().count("NOTIFY: code=4 ") - stores0
    assert pushed == n, "%d stores for %d messages" % (pushed, n)


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


def test_read_ahead_windows_stay_within_their_budget(tmp_path, mounts):
    """A cold read of a whole mdbox folder of 24 MB leaves at most the
    windows' budget (2 MiB) of read-ahead in the daemon's memory, not a
    window per slot (16 MiB; issue 13: the daemon's RSS after reading a
    folder of a million must stay within 32 MiB).  Under ASan, freed
    blocks are kept in its quarantine unless told otherwise."""
    n = 2400
    msgs = {"17100%05d.M%dP1.host" % (i, i):
            b"Subject: big %d\n\n" % i + b"y" * 10000 + b"\n"
            for i in range(n)}
    src = make_maildir(str(tmp_path / "src"), msgs)
    store = str(tmp_path / "store")
    dboxctl("init", store, "--format", "mdbox")
    dboxctl("import", store, "INBOX", src)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":quarantine_size_mb=0").lstrip(":")
    m = mounts(store, mnt, env=env)
    cur = os.path.join(mnt, "cur")
    names = sorted(os.listdir(cur))
    assert len(names) == n
    with open(os.path.join(cur, names[0]), "rb") as f:
        f.read()
    before = rss_anon_kib(m.proc.pid)
    for name in names:
        with open(os.path.join(cur, name), "rb") as f:
            assert f.read() == msgs[name.split(":2,")[0]], name
    grown = (rss_anon_kib(m.proc.pid) - before) / 1024.0
    assert grown < 12, "the daemon grew by %.1f MiB reading %d MB" % (
        grown, n * 10 // 1000)
