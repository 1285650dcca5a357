"""The write side of the maildir view on real mounts: delivery, crash
safety, flags, moves, expunge, folders and plain files."""

import errno
import fcntl
import mmap
import os
import random
import shutil
import struct
import subprocess
import sys
import time

import pytest

from dboxfs_testlib import (DBOXFS, Strace, Doveadm, dboxctl,
                            export_maildir,
                            have_dovecot, is_mounted, ls_mailboxes,
                            ls_messages, make_maildir, mounts, run, wait_for,
                            wtmp)  # noqa: F401

sys.path.insert(0, os.path.dirname(__file__))
from deliver import payload  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")
DELIVER = os.path.join(os.path.dirname(__file__), "deliver.py")
COPIER = os.path.join(os.path.dirname(__file__), "copier.py")


def new_store(wtmp, fmt):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    return store


def read(path):
    with open(path, "rb") as f:
        return f.read()


def start_deliverers(mnt, nproc, count, acks, mode="mixed", prefix="d"):
    procs = []
    for p in range(nproc):
        procs.append(subprocess.Popen(
            ["/usr/bin/python3", DELIVER, mnt, "%s%d" % (prefix, p),
             str(count), mode, acks[p]], stderr=subprocess.PIPE))
    return procs


def names_in(mnt, sub):
    return sorted(os.listdir(os.path.join(mnt, sub)))


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_delivery_storm(wtmp, mounts, fmt):
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    acks = [os.path.join(wtmp, "ack%d" % p) for p in range(8)]
    procs = start_deliverers(mnt, 8, 125, acks)
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    expected = {"d%d.%d" % (p, i) for p in range(8) for i in range(125)}
    got = names_in(mnt, "new")
    assert len(got) == len(set(got)) == 1000
    assert set(got) == expected
    assert names_in(mnt, "tmp") == []
    for name in got:
        assert read(os.path.join(mnt, "new", name)) == payload(name)
    first = {n: os.stat(os.path.join(mnt, "new", n)).st_ino for n in got}
    m.stop()
    assert dboxctl("check", store).returncode == 0
    m = mounts(store, mnt)
    assert {n: os.stat(os.path.join(mnt, "new", n)).st_ino
            for n in names_in(mnt, "new")} == first
    m.stop()
    if have_dovecot():
        da = Doveadm(wtmp, store, fmt)
        da.force_resync("*" if fmt == "sdbox" else "INBOX")
        texts = sorted(msg["text"] for msg in da.fetch("text"))
        assert texts == sorted(payload(n) for n in expected)


def test_group_commit_shares_transactions(wtmp, mounts):
    """Commits that reach the daemon together share index transactions.
    (The kernel serialises renames on one mount and every change to one
    directory, so only deliveries into different folders, by link, or
    files closed in cur/ can arrive together.)"""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    for p in range(8):
        for d in ("", "/cur", "/new", "/tmp"):
            os.mkdir(os.path.join(mnt, ".F%d%s" % (p, d)))
    seq = lambda: int(dboxctl("stats", store).stdout.decode().split(
        "changes\t")[1].split()[0])
    before = seq()
    procs = []
    for p in range(8):
        procs.append(subprocess.Popen(
            ["/usr/bin/python3", DELIVER, os.path.join(mnt, ".F%d" % p),
             "g%d" % p, "40", "link", os.path.join(wtmp, "ack%d" % p)]))
    for p in procs:
        assert p.wait(timeout=300) == 0
    for p in range(8):
        assert len(names_in(mnt, ".F%d/new" % p)) == 40
    assert seq() - before < 320

@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_crash_safety(wtmp, mounts, fmt):
    """SIGKILL the daemon during delivery storms: every rename that
    returned success is present after remount with exact bytes, nothing
    partial, the rest absent or still in tmp/."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    rng = random.Random(99)
    runs = 15
    for run_no in range(runs):
        m = mounts(store, mnt)
        acks = [os.path.join(wtmp, "ack%d.%d" % (run_no, p)) for p in range(8)]
        for a in acks:
            open(a, "w").close()
        procs = start_deliverers(mnt, 8, 60, acks, prefix="r%d-" % run_no)
        wait_for(lambda: sum(os.path.getsize(a) for a in acks) > 0,
                 what="first deliveries")
        deadline = time.monotonic() + rng.uniform(0, 0.3)
        wait_for(lambda: time.monotonic() >= deadline or
                 all(p.poll() is not None for p in procs), timeout=5,
                 what="the moment to kill")
        m.kill()
        for p in procs:
            p.wait(timeout=60)
        wait_for(lambda: not is_mounted(mnt), what="unmount")
        acked = set()
        for a in acks:
            acked |= set(open(a).read().split())
        m = mounts(store, mnt)
        present = set(names_in(mnt, "new"))
        mine = {n for n in present if n.startswith("r%d-" % run_no)}
        assert acked <= mine, sorted(acked - mine)[:5]
        for name in mine:
            assert read(os.path.join(mnt, "new", name)) == payload(name)
        # a delivered file left in tmp/ by the kill is removed at mount
        assert not set(names_in(mnt, "tmp")) & mine
        m.stop()
        chk = dboxctl("check", store, check=False)
        assert chk.returncode == 0, chk.stdout.decode()


def copy_sources(wtmp, run_no, sub):
    """500 files to copy into cur/ (with flags) or new/: a few spanning
    many writes, so that kills land inside files too."""
    src = os.path.join(wtmp, "src%d" % run_no)
    os.mkdir(src)
    files = {}
    for i in range(500):
        base = "r%d-%03d.M%dP1.host" % (run_no, i, i)
        name = base + (":2,S" if sub == "cur" else "")
        data = payload(base) * (40 if i % 25 == 0 else 1)
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
        files[name] = data
    return src, files


@pytest.mark.parametrize("sub", ["cur", "new"])
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_copy_into_cur_killed(wtmp, mounts, fmt, sub):
    """SIGKILL the daemon while files are copied straight into cur/ or new/
    (maildir-view.md section 3: each is committed at its last close).  At
    the next mount every file whose close had returned is a message with
    exact bytes, the mount and dboxctl agree, nothing truncated is listed,
    and what was cut short is in tmp/ (a prefix of its source) or absent.
    Even runs use a copier that logs each close, odd runs cp -r."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    rng = random.Random(7)
    expected = {}
    for run_no in range(4):
        src, files = copy_sources(wtmp, run_no, sub)
        ack = os.path.join(wtmp, "ack%d" % run_no)
        open(ack, "w").close()
        dst = os.path.join(mnt, sub)
        m = mounts(store, mnt)
        if run_no % 2 == 0:
            p = subprocess.Popen(["/usr/bin/python3", COPIER, src, dst, ack],
                                 stderr=subprocess.PIPE)
            wait_for(lambda: os.path.getsize(ack) > 0 or
                     p.poll() is not None, what="first copies")
        else:
            p = subprocess.Popen(["cp", "-r", src + "/.", dst],
                                 stderr=subprocess.PIPE)
        deadline = time.monotonic() + rng.uniform(0, 1.5)
        wait_for(lambda: time.monotonic() >= deadline or
                 p.poll() is not None, timeout=5, what="the moment to kill")
        m.kill()
        p.wait(timeout=60)
        wait_for(lambda: not is_mounted(mnt), what="unmount")
        closed = set(open(ack).read().split())
        m = mounts(store, mnt)
        listed = {n: read(os.path.join(dst, n)) for n in names_in(mnt, sub)
                  if n in files}
        assert closed <= set(listed), sorted(closed - set(listed))[:5]
        for name, data in listed.items():
            assert data == files[name], (name, len(data), len(files[name]))
            expected[name.split(":")[0]] = data
        for name in names_in(mnt, "tmp"):
            assert name not in listed, name
            if name in files:   # cut short: a prefix of its source
                assert files[name].startswith(read(os.path.join(mnt, "tmp",
                                                                name)))
        other = "new" if sub == "cur" else "cur"
        assert not set(names_in(mnt, other)) & set(files)
        m.stop()
        rows = ls_messages(store, "INBOX")
        assert {r["base"]: r["size"] for r in rows} == \
            {b: len(d) for b, d in expected.items()}
        out = export_maildir(store, "INBOX", os.path.join(wtmp, "x%d" % run_no))
        assert {b: v[0] for b, v in out.items()} == expected
        chk = dboxctl("check", store, check=False)
        assert chk.returncode == 0, chk.stdout.decode()


def test_file_open_in_cur_at_crash_goes_to_tmp(wtmp, mounts):
    """A file created in cur/ or new/ that was not closed when the daemon
    died may be incomplete: the next mount shows it in tmp/ (bytes kept),
    never in cur/ or new/ and never as a message.  So does one written
    again after a close (through a second descriptor)."""
    store = new_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fds = [os.open(os.path.join(mnt, "cur", "e:2,S"), flags, 0o600)]
    fds.append(os.open(os.path.join(mnt, "cur", "p:2,S"), flags, 0o600))
    os.write(fds[-1], b"Subject: p\n\n")
    w = os.open(os.path.join(mnt, "new", "w"), flags, 0o600)
    os.write(w, b"Subject: w\n\n")
    fds.append(os.dup(w))
    os.close(w)
    os.write(fds[-1], b"more\n")
    m.kill()
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    m = mounts(store, mnt)
    assert names_in(mnt, "cur") == names_in(mnt, "new") == []
    assert names_in(mnt, "tmp") == ["e:2,S", "p:2,S", "w"]
    assert read(os.path.join(mnt, "tmp", "e:2,S")) == b""
    assert read(os.path.join(mnt, "tmp", "p:2,S")) == b"Subject: p\n\n"
    assert read(os.path.join(mnt, "tmp", "w")) == b"Subject: w\n\nmore\n"
    m.stop()
    assert ls_messages(store, "INBOX") == []
    chk = dboxctl("check", store, check=False)
    assert chk.returncode == 0, chk.stdout.decode()


def view_of(mnt):
    """What the mount shows in cur/ new/ tmp/: per name its size, bytes
    and inode number (each looked up by name), for differential checks."""
    out = {}
    for sub in ("cur", "new", "tmp"):
        for n in names_in(mnt, sub):
            path = os.path.join(mnt, sub, n)
            st = os.stat(path)
            out[sub + "/" + n] = (st.st_size, read(path), st.st_ino)
    return out


def tree_of(top):
    """Every file below top with its bytes and xattrs: what a read-only
    mount must leave as it found it (the spool; not the index's shared
    memory, which any reader of SQLite's WAL writes)."""
    out = {}
    for d, _, files in os.walk(top):
        for n in files:
            p = os.path.join(d, n)
            out[p] = (read(p), sorted((x, os.getxattr(p, x))
                                      for x in os.listxattr(p)))
    return out


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_file_open_in_cur_at_crash_ro_mount(wtmp, mounts, fmt):
    """After a killed daemon a read-only mount repairs nothing but shows
    what the next read-write mount's repair leaves: a file that was
    being written in cur/ or new/ (not closed) in tmp/ (under "NAME.1"
    if tmp/ has NAME), not where it was written; then the read-write
    mount, and a read-only one after it, show the same (names, sizes,
    bytes, inode numbers)."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    with open(os.path.join(mnt, "tmp", "w"), "wb") as f:
        f.write(b"Subject: in tmp\n\n")
    with open(os.path.join(mnt, "tmp", "d"), "wb") as f:
        f.write(payload("d"))
    os.rename(os.path.join(mnt, "tmp", "d"), os.path.join(mnt, "cur", "d:2,"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fds = [os.open(os.path.join(mnt, "cur", "e:2,S"), flags, 0o600)]
    os.write(fds[-1], b"Subject: e\n\n")
    fds.append(os.open(os.path.join(mnt, "new", "w"), flags, 0o600))
    os.write(fds[-1], b"Subject: w\n\npart")
    fds.append(os.open(os.path.join(mnt, "cur", ".rsync.Xy"), flags, 0o600))
    m.kill()
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    spool = os.path.join(store, "dboxfs", "spool")
    before = tree_of(spool)
    m = mounts(store, mnt, "ro")
    ro = view_of(mnt)
    for gone in ("cur/e:2,S", "new/w"):
        assert not os.path.exists(os.path.join(mnt, gone)), gone
    m.stop()
    assert tree_of(spool) == before
    assert sorted(ro) == ["cur/.rsync.Xy", "cur/d:2,", "tmp/e:2,S", "tmp/w",
                          "tmp/w.1"]
    assert ro["tmp/e:2,S"][1] == b"Subject: e\n\n"
    assert ro["tmp/w.1"][1] == b"Subject: w\n\npart"
    m = mounts(store, mnt)
    assert view_of(mnt) == ro
    m.stop()
    m = mounts(store, mnt, "ro")
    assert view_of(mnt) == ro
    m.stop()
    assert dboxctl("check", store).returncode == 0


def wal_frames(store):
    """(salt, frames) of the index's WAL: the salt changes when SQLite
    starts the log over."""
    with open(os.path.join(store, "dboxfs", "index.sqlite-wal"), "rb") as f:
        head = f.read(32)
        size = os.fstat(f.fileno()).st_size
    page = int.from_bytes(head[8:12], "big")
    return head[16:24], (size - 32) // (24 + page)


def test_flag_rename_writes_only_the_pages_it_changes(wtmp, mounts):
    """A flag change within a folder commits the message's row, its name's
    index entry, the folder's change time and the change counter: four
    pages of the WAL, not five (its base's index entry stays as it is);
    renamed onto another message's name it replaces that one."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    dfd = os.open(os.path.join(mnt, "new"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(22):
            with open(os.path.join(mnt, "tmp", "m%d" % i), "wb") as f:
                f.write(payload("m%d" % i))
                os.fsync(f.fileno())
            os.rename(os.path.join(mnt, "tmp", "m%d" % i),
                      os.path.join(mnt, "cur", "m%d:2,S" % i))
        os.fsync(dfd)
    finally:
        os.close(dfd)
    salt, before = wal_frames(store)
    for i in range(20):
        os.rename(os.path.join(mnt, "cur", "m%d:2,S" % i),
                  os.path.join(mnt, "cur", "m%d:2,FS" % i))
    salt_after, after = wal_frames(store)
    assert salt_after == salt
    assert after - before == 4 * 20
    os.rename(os.path.join(mnt, "cur", "m20:2,S"),
              os.path.join(mnt, "cur", "m21:2,S"))
    assert names_in(mnt, "cur") == sorted(
        ["m%d:2,FS" % i for i in range(20)] + ["m21:2,S"])
    assert read(os.path.join(mnt, "cur", "m21:2,S")) == payload("m20")
    m.stop()
    assert sorted(r["base"] for r in ls_messages(store, "INBOX")) == sorted(
        ["m%d" % i for i in range(20)] + ["m21"])


def xattr_reads_while(m, wtmp, fn):
    """The daemon's getxattr calls (strace) while fn() runs."""
    st = Strace(m.proc.pid, os.path.join(wtmp, "strace"),
                "getxattr,lgetxattr,fgetxattr")
    try:
        fn()
    finally:
        calls = st.stop()
    return calls


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="strace not installed")
def test_create_reads_no_mark_of_a_file_it_made(wtmp, mounts):
    """A file created with O_EXCL (every maildir delivery) is the
    CREATE's own new inode: it carries none of the daemon's marks, so
    its binode is made without reading the number of a message renamed
    into tmp/ (user.dboxfs.ino) or a reserved uid (user.dboxfs.uid).
    What reads them per delivery is the commit at the rename, once each
    (before: twice each, the CREATE's lookup too)."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    count = 30

    def deliver(prefix):
        for i in range(count):
            tmp = os.path.join(mnt, "tmp", "%s%d" % (prefix, i))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, payload("%s%d" % (prefix, i)))
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(mnt, "new", "%s%d" % (prefix, i)))
    deliver("w")
    calls = xattr_reads_while(m, wtmp, lambda: deliver("m"))
    ino = [c for c in calls if '"user.dboxfs.ino"' in c and "getxattr" in c]
    uid = [c for c in calls if '"user.dboxfs.uid"' in c and "getxattr" in c]
    assert len(ino) == count, ino[:6]
    assert len(uid) == count, uid[:6]
    assert names_in(mnt, "new") == sorted(
        ["w%d" % i for i in range(count)] + ["m%d" % i for i in range(count)])


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="strace not installed")
def test_getattr_of_tmp_reads_no_mode_mark(wtmp, mounts):
    """Each delivery makes the kernel ask for tmp/'s attributes twice
    (default_permissions, before the create and before the rename: the
    last create or rename invalidated them).  An area directory whose
    own mode is the store root's shows that mode whether or not it is
    marked as kept, so the mark (user.dboxfs.mode) is not read; before,
    it was read at each of them (the area's ctime moves with every
    create and rename, so the remembered state never matched).  A
    chmod'ed tmp/ still shows its kept mode."""
    store = new_store(wtmp, "mdbox")
    os.chmod(store, 0o700)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    count = 30

    def deliver(prefix):
        for i in range(count):
            with open(os.path.join(mnt, "tmp", "%s%d" % (prefix, i)),
                      "xb") as f:
                f.write(payload("%s%d" % (prefix, i)))
            os.rename(os.path.join(mnt, "tmp", "%s%d" % (prefix, i)),
                      os.path.join(mnt, "new", "%s%d" % (prefix, i)))
    deliver("w")
    assert os.stat(os.path.join(mnt, "tmp")).st_mode & 0o7777 == 0o700
    calls = xattr_reads_while(m, wtmp, lambda: deliver("m"))
    marks = [c for c in calls if '"user.dboxfs.mode"' in c]
    assert marks == []
    os.chmod(os.path.join(mnt, "tmp"), 0o750)
    deliver("c")
    assert os.stat(os.path.join(mnt, "tmp")).st_mode & 0o7777 == 0o750
    os.chmod(os.path.join(mnt, "tmp"), 0o700)
    assert os.stat(os.path.join(mnt, "tmp")).st_mode & 0o7777 == 0o700
    assert len(names_in(mnt, "new")) == 3 * count


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="strace not installed")
def test_flag_rename_takes_no_read_transaction_of_its_own(wtmp, mounts):
    """A flag change finds its message inside its update's write
    transaction: per rename, SQLite's locks on the WAL index (fcntl) are
    those of the target name's negative LOOKUP and of the write
    transaction, 8; a read transaction of its own before the update took
    a lock and an unlock more (10 per rename)."""
    n = 200
    src = os.path.join(wtmp, "src")
    make_maildir(src, {"r%d" % i: payload("r%d" % i) for i in range(n)},
                 flags={"r%d" % i: "S" for i in range(n)})
    store = new_store(wtmp, "mdbox")
    dboxctl("import", store, "INBOX", src)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    cur = os.path.join(mnt, "cur")
    for i in range(n):      # the kernel knows the names from now on
        os.rename(os.path.join(cur, "r%d:2,S" % i),
                  os.path.join(cur, "r%d:2,FS" % i))
    out = os.path.join(wtmp, "strace")
    st = Strace(m.proc.pid, out, "fcntl")

    def tids():
        with open(out) as f:
            return {ln.split()[0] for ln in f if "fcntl(" in ln}
    try:
        # the threads that take locks with no request (the follower's
        # check every 250 ms) are left out of the count: how many of
        # their checks fall into the renames depends on the load
        wait_for(lambda: tids(), timeout=30, what="the follower's check")
        background = tids()
        for i in range(n):
            os.rename(os.path.join(cur, "r%d:2,FS" % i),
                      os.path.join(cur, "r%d:2,S" % i))
    finally:
        calls = st.stop()
    locks = [c for c in calls
             if "fcntl(" in c and c.split()[0] not in background]
    assert len(locks) < 9 * n, (len(locks), locks[:20])
    assert names_in(mnt, "cur") == sorted("r%d:2,S" % i for i in range(n))


def deliver_cur(mnt, names):
    for n in names:
        with open(os.path.join(mnt, "tmp", n), "wb") as f:
            f.write(payload(n))
        os.rename(os.path.join(mnt, "tmp", n),
                  os.path.join(mnt, "cur", n + ":2,S"))


def settled_ctime(path):
    """Waits (bounded) until path's ctime is 0.2 s old: the daemon
    remembers a directory's mode mark only by a ctime no later change
    can repeat (the filesystem's clock is coarse)."""
    ctime = os.lstat(path).st_ctime
    wait_for(lambda: time.time() > ctime + 0.2, what="an old ctime")


def test_cur_mode_follows_changes_of_other_processes(wtmp, mounts):
    """GETATTR of cur/ (one per flag rename with default_permissions) takes
    the mode from the spool area's lstat and remembers whether the area
    has a kept mode by its ctime: a mark removed or set by another
    process (another daemon that took the mount over, a person on the
    store) shows at the next GETATTR; a rename in cur/ makes the kernel
    ask again, as in a flag storm."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    deliver_cur(mnt, ["a", "b"])
    cur = os.path.join(mnt, "cur")
    unset = os.stat(os.path.join(mnt, "new")).st_mode & 0o7777
    assert unset not in (0o751, 0o705)
    os.chmod(cur, 0o751)
    area = os.path.dirname(spool_file(store, "cur", "."))
    assert os.getxattr(area, "user.dboxfs.mode")
    flags = iter([":2,FS", ":2,S"] * 4)
    last = [":2,S"]

    def stat_cur():
        """cur/'s mode after a rename in it (the kernel asks again)."""
        nxt = next(flags)
        os.rename(os.path.join(cur, "a" + last[0]),
                  os.path.join(cur, "a" + nxt))
        last[0] = nxt
        return os.stat(cur).st_mode & 0o7777

    settled_ctime(area)
    assert stat_cur() == 0o751
    assert stat_cur() == 0o751            # from what the daemon saw
    os.removexattr(area, "user.dboxfs.mode")
    assert stat_cur() == unset
    settled_ctime(area)
    assert stat_cur() == unset
    os.chmod(area, 0o705)
    os.setxattr(area, "user.dboxfs.mode", b"1")
    assert stat_cur() == 0o705
    m.stop()


def test_cur_mtime_after_flag_renames_follows_another_process(wtmp, mounts):
    """A flag rename's commit leaves its mailbox's row remembered for the
    GETATTR of cur/ that follows (dindex.c): a commit of another process
    (dboxctl import, which moves cur/'s time) shows at the next GETATTR
    all the same, with no commit of the daemon's between."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    deliver_cur(mnt, ["a", "b"])
    cur = os.path.join(mnt, "cur")
    flags = ":2,S"
    for nxt in (":2,FS", ":2,S", ":2,FS"):
        os.rename(os.path.join(cur, "a" + flags), os.path.join(cur, "a" + nxt))
        flags = nxt
        before = os.stat(cur).st_mtime_ns
    src = os.path.join(wtmp, "src")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(src, sub))
    with open(os.path.join(src, "cur", "ext:2,S"), "wb") as f:
        f.write(payload("ext"))
    dboxctl("import", store, "INBOX", src)
    wait_for(lambda: os.stat(cur).st_mtime_ns != before,
             what="cur/'s time after another process's commit")
    assert os.stat(cur).st_mtime_ns > before
    assert "ext:2,S" in names_in(mnt, "cur")
    m.stop()


def test_daemon_keeps_sqlites_lock_on_the_wal_index(wtmp, mounts):
    """The daemon reads the WAL-index header from its own mapping of the
    -shm file (dindex.c): SQLite's shared lock on it (the byte that tells
    another process's first connection that the file is in use, so that
    it does not set it up anew) stays held while mounted, after the
    daemon's own commits and another process's too."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    deliver_cur(mnt, ["a"])
    os.rename(os.path.join(mnt, "cur", "a:2,S"),
              os.path.join(mnt, "cur", "a:2,FS"))
    shm = os.path.join(store, "dboxfs", "index.sqlite-shm")

    def holder():
        """The pid holding a lock that conflicts with a write lock on
        the -shm file's byte 128 (SQLite's UNIX_SHM_DMS), or None."""
        fd = os.open(shm, os.O_RDWR)
        try:
            q = struct.pack("hh4xqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 128,
                            1, 0)
            r = struct.unpack("hh4xqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK,
                                                       q))
        finally:
            # a descriptor of the test's own: no lock of the test's
            os.close(fd)
        return None if r[0] == fcntl.F_UNLCK else r[4]

    assert holder() == m.proc.pid
    dboxctl("ls", store, "INBOX")
    os.rename(os.path.join(mnt, "cur", "a:2,FS"),
              os.path.join(mnt, "cur", "a:2,S"))
    assert holder() == m.proc.pid
    m.stop()


def test_flag_storm_sees_commits_of_another_process(wtmp, mounts):
    """Consecutive requests share one SQLite connection (the last
    commit's page cache): a commit of another process between them (here
    dboxctl import) is seen by the next request all the same."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    names = ["s%d" % i for i in range(20)]
    deliver_cur(mnt, names)
    cur = os.path.join(mnt, "cur")
    flag = ":2,S"
    for r in range(3):
        nxt = ":2,FS" if flag == ":2,S" else ":2,S"
        for n in names:
            os.rename(os.path.join(cur, n + flag), os.path.join(cur, n + nxt))
        flag = nxt
        src = os.path.join(wtmp, "src%d" % r)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(src, sub))
        with open(os.path.join(src, "cur", "ext%d:2,S" % r), "wb") as f:
            f.write(payload("ext%d" % r))
        dboxctl("import", store, "INBOX", src)
        # a name the kernel never looked up: the daemon answers
        assert read(os.path.join(cur, "ext%d:2,S" % r)) == payload("ext%d" % r)
        os.rename(os.path.join(cur, "ext%d:2,S" % r),
                  os.path.join(cur, "ext%d:2,RS" % r))
    assert names_in(mnt, "cur") == sorted(
        [n + flag for n in names] + ["ext%d:2,RS" % r for r in range(3)])
    m.stop()
    assert sorted(r["base"] for r in ls_messages(store, "INBOX")) == sorted(
        names + ["ext%d" % r for r in range(3)])


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_flags_moves_expunge(wtmp, mounts, fmt):
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for d in (".Archive", ".Archive/cur", ".Archive/new", ".Archive/tmp"):
        os.mkdir(os.path.join(mnt, d))
    for i in range(4):
        with open(os.path.join(mnt, "tmp", "m%d" % i), "wb") as f:
            f.write(payload("m%d" % i))
        os.rename(os.path.join(mnt, "tmp", "m%d" % i),
                  os.path.join(mnt, "new", "m%d" % i))
    # new -> cur with flags, flag change, move to another folder, unlink
    os.rename(os.path.join(mnt, "new/m0"), os.path.join(mnt, "cur/m0:2,S"))
    os.rename(os.path.join(mnt, "new/m1"), os.path.join(mnt, "cur/m1:2,"))
    os.rename(os.path.join(mnt, "cur/m1:2,"), os.path.join(mnt, "cur/m1:2,FRS"))
    os.rename(os.path.join(mnt, "new/m2"),
              os.path.join(mnt, ".Archive/cur/m2:2,S"))
    os.unlink(os.path.join(mnt, "new/m3"))
    st = os.stat(os.path.join(mnt, ".Archive/cur/m2:2,S"))
    assert st.st_size == len(payload("m2"))
    os.utime(os.path.join(mnt, "cur/m0:2,S"), (1500000000, 1500000000))
    m.stop()
    for _ in range(2):  # the index, then the mount after a remount
        inbox = {r["base"]: r for r in ls_messages(store, "INBOX")}
        assert set(inbox) == {"m0", "m1"}
        assert inbox["m0"]["info"] == "S"
        assert inbox["m0"]["received"] == 1500000000
        assert inbox["m1"]["info"] == "FRS"
        assert [r["base"] for r in ls_messages(store, "Archive")] == ["m2"]
        m = mounts(store, mnt)
        assert names_in(mnt, "cur") == ["m0:2,S", "m1:2,FRS"]
        assert names_in(mnt, "new") == []
        assert names_in(mnt, ".Archive/cur") == ["m2:2,S"]
        assert read(os.path.join(mnt, ".Archive/cur/m2:2,S")) == payload("m2")
        assert int(os.stat(os.path.join(mnt, "cur/m0:2,S")).st_mtime) == 1500000000
        m.stop()
    assert dboxctl("check", store).returncode == 0


def synced_tmp(mnt, name, data, folder=""):
    """A file written in tmp/ and fsynced: dboxfs prepares its record."""
    path = os.path.join(mnt, folder, "tmp", name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.fsync(fd)
    return path, fd


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_synced_file_changed_before_rename(wtmp, mounts, fmt):
    """What is prepared at fsync is used only for the bytes, date, folder
    and name the file has when it is delivered."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for d in (".Archive", ".Archive/cur", ".Archive/new", ".Archive/tmp"):
        os.mkdir(os.path.join(mnt, d))
    want = {}

    def deliver(path, fd, dst):
        os.close(fd)
        os.rename(path, os.path.join(mnt, dst))

    p, fd = synced_tmp(mnt, "grown", b"Subject: a\n\nfirst\n")
    os.write(fd, b"and more\n")                      # grows after fsync
    deliver(p, fd, "new/grown")
    want["INBOX", "grown"] = (b"Subject: a\n\nfirst\nand more\n", "")
    p, fd = synced_tmp(mnt, "same", b"Subject: s\n\nAAAA\n")
    os.pwrite(fd, b"BBBB", 12)                        # same size, at once
    deliver(p, fd, "new/same")
    want["INBOX", "same"] = (b"Subject: s\n\nBBBB\n", "")
    p, fd = synced_tmp(mnt, "cut", b"Subject: c\n\nlong body\n")
    os.ftruncate(fd, 12)
    deliver(p, fd, "new/cut")
    want["INBOX", "cut"] = (b"Subject: c\n\n", "")
    p, fd = synced_tmp(mnt, "flagged", b"Subject: f\n\nf\n")
    deliver(p, fd, "cur/flagged:2,FS")                # flags at the rename
    want["INBOX", "flagged"] = (b"Subject: f\n\nf\n", "FS")
    p, fd = synced_tmp(mnt, "x1", b"Subject: r\n\nr\n")
    deliver(p, fd, "new/renamed")                     # another name
    want["INBOX", "renamed"] = (b"Subject: r\n\nr\n", "")
    p, fd = synced_tmp(mnt, "dated", b"Subject: d\n\nd\n")
    os.close(fd)
    os.utime(p, (1400000000, 1400000000))             # date after fsync
    os.rename(p, os.path.join(mnt, "new/dated"))
    want["INBOX", "dated"] = (b"Subject: d\n\nd\n", "")
    p, fd = synced_tmp(mnt, "moved", b"Subject: m\n\nm\n")
    deliver(p, fd, ".Archive/new/moved")              # another folder
    want["Archive", "moved"] = (b"Subject: m\n\nm\n", "")
    p, fd = synced_tmp(mnt, "linked", b"Subject: l\n\nl\n")
    os.close(fd)
    os.link(p, os.path.join(mnt, "new/linked"))
    os.unlink(p)
    want["INBOX", "linked"] = (b"Subject: l\n\nl\n", "")
    p, fd = synced_tmp(mnt, "dropped", b"Subject: x\n\nx\n")
    os.close(fd)
    os.unlink(p)                                      # never delivered
    p, fd = synced_tmp(mnt, "kept", b"Subject: k\n\nk\n")
    os.close(fd)                                      # stays in tmp/

    def verify():
        for (box, base), (data, info) in want.items():
            folder = "" if box == "INBOX" else "." + box
            sub = "cur" if info else "new"
            name = base + (":2," + info if info else "")
            assert read(os.path.join(mnt, folder, sub, name)) == data, name
        assert int(os.stat(os.path.join(mnt, "new/dated")).st_mtime) == \
            1400000000
        assert names_in(mnt, "tmp") == ["kept"]
        assert read(os.path.join(mnt, "tmp/kept")) == b"Subject: k\n\nk\n"

    verify()
    m.stop()
    rows = {(b, r["base"]): r for b in ("INBOX", "Archive")
            for r in ls_messages(store, b)}
    assert set(rows) == set(want)
    for key, (data, info) in want.items():
        assert rows[key]["info"] == (info or "new:"), key
        assert rows[key]["size"] == len(data), key
    chk = dboxctl("check", store, check=False)
    assert chk.returncode == 0, chk.stdout.decode()
    m = mounts(store, mnt)
    verify()


def spool_file(store, area, name):
    """The backing file of a name in tmp/ (or pending in cur/, new/)."""
    root = os.path.join(store, "dboxfs", "spool")
    hits = [os.path.join(root, box, area, name) for box in os.listdir(root)
            if os.path.exists(os.path.join(root, box, area, name))]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_leftover_of_committed_delivery_removed(wtmp, mounts, fmt):
    """A daemon killed between a delivery's commit and the unlink of its
    file leaves the file behind; the next mount removes it when it is
    that message (name, mtime, bytes), and keeps anything else."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    saved = {}
    m = mounts(store, mnt)
    for name in ("a", "b"):
        with open(os.path.join(mnt, "tmp", name), "wb") as f:
            f.write(payload(name))
        # a second name for the backing file keeps it past the unlink
        saved[name] = (spool_file(store, "tmp", name),
                       os.path.join(wtmp, "saved-" + name))
        os.link(*saved[name])
        os.rename(os.path.join(mnt, "tmp", name),
                  os.path.join(mnt, "new", name))
    # created in cur/ under its final name: committed at its last close
    with open(os.path.join(mnt, "cur", "c:2,S"), "wb") as f:
        f.write(payload("c"))
        f.flush()
        saved["c"] = (spool_file(store, "cur", "c:2,S"),
                      os.path.join(wtmp, "saved-c"))
        os.link(*saved["c"])
    wait_for(lambda: not os.path.exists(saved["c"][0]),
             what="the commit of c at close")
    m.stop()
    for spool, keep in saved.values():
        os.link(keep, spool)       # as if the unlink had never happened
    # b's leftover is not that message any more: same size and mtime,
    # one byte changed
    st = os.stat(saved["b"][0])
    with open(saved["b"][0], "r+b") as f:
        f.seek(st.st_size - 2)
        f.write(b"#")
    os.utime(saved["b"][0], ns=(st.st_atime_ns, st.st_mtime_ns))
    # a read-only mount removes nothing, but shows the same
    spool = {p: os.path.exists(p) for p, _ in saved.values()}
    m = mounts(store, mnt, "ro")
    assert names_in(mnt, "tmp") == ["b"]
    assert names_in(mnt, "new") == ["a", "b"]
    assert names_in(mnt, "cur") == ["c:2,S"]
    assert not os.path.exists(os.path.join(mnt, "tmp", "a"))
    assert read(os.path.join(mnt, "tmp", "b")) != payload("b")
    m.stop()
    assert {p: os.path.exists(p) for p in spool} == spool
    m = mounts(store, mnt)
    assert names_in(mnt, "tmp") == ["b"]
    assert names_in(mnt, "new") == ["a", "b"]
    assert names_in(mnt, "cur") == ["c:2,S"]
    assert read(os.path.join(mnt, "new", "a")) == payload("a")
    assert read(os.path.join(mnt, "cur", "c:2,S")) == payload("c")
    assert read(os.path.join(mnt, "tmp", "b")) != payload("b")
    assert not os.path.exists(saved["a"][0])
    assert not os.path.exists(saved["c"][0])
    m.stop()
    assert dboxctl("check", store).returncode == 0


def test_closed_file_keeps_its_inode_at_next_mount(wtmp, mounts):
    """A file created in cur/ has its message's inode number from the
    start (a uid reserved at its creation, kept with the file): one that a
    killed daemon left closed but not committed keeps that number when the
    next mount commits it, and as a message it keeps it across remounts."""
    store = new_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    tmpname = os.path.join(mnt, "cur", ".a.XyZ")   # rsync's, stays pending
    with open(tmpname, "wb") as f:
        f.write(payload("a"))
    ino = os.stat(tmpname).st_ino
    m.stop()
    src = spool_file(store, "cur", ".a.XyZ")
    dst = os.path.join(os.path.dirname(src), "a:2,S")
    os.rename(src, dst)
    os.setxattr(dst, "user.dboxfs.closed", str(len(payload("a"))).encode())
    m = mounts(store, mnt)
    path = os.path.join(mnt, "cur", "a:2,S")
    assert names_in(mnt, "cur") == ["a:2,S"]
    assert read(path) == payload("a")
    assert os.stat(path).st_ino == ino
    assert {e.name: e.inode() for e in os.scandir(os.path.dirname(path))} \
        == {"a:2,S": ino}
    m.stop()
    m = mounts(store, mnt)
    assert os.stat(path).st_ino == ino


def test_closed_mark_commits_at_next_mount(wtmp, mounts):
    """What a daemon killed between a close in cur/ or new/ and its commit
    leaves: the file with its closed mark.  The next mount commits it; a
    mark that does not fit the file (its tail lost, as by a power cut, or
    garbage) or none sends the file to tmp/, beside a tmp/ file of the
    same name if there is one."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for sub in ("cur", "new"):
        open(os.path.join(mnt, sub, ".hold"), "wb").close()
    with open(os.path.join(mnt, "tmp", "e"), "wb") as f:
        f.write(b"other")
    m.stop()
    spool = {sub: os.path.dirname(spool_file(store, sub, ".hold"))
             for sub in ("cur", "new")}

    def put(sub, name, data, mark):
        p = os.path.join(spool[sub], name)
        with open(p, "wb") as f:
            f.write(data)
        if mark is not None:
            os.setxattr(p, "user.dboxfs.closed", mark)
    size = lambda n: str(len(payload(n))).encode()
    put("cur", "a:2,S", payload("a"), size("a"))
    put("new", "b", payload("b"), size("b"))
    put("cur", "c:2,S", payload("c")[:10], size("c"))
    put("cur", "d:2,S", payload("d"), b"12x")
    put("new", "e", payload("e"), None)
    m = mounts(store, mnt)
    assert names_in(mnt, "cur") == [".hold", "a:2,S"]
    assert names_in(mnt, "new") == [".hold", "b"]
    assert names_in(mnt, "tmp") == ["c:2,S", "d:2,S", "e", "e.1"]
    assert read(os.path.join(mnt, "cur", "a:2,S")) == payload("a")
    assert read(os.path.join(mnt, "new", "b")) == payload("b")
    assert read(os.path.join(mnt, "tmp", "c:2,S")) == payload("c")[:10]
    assert read(os.path.join(mnt, "tmp", "d:2,S")) == payload("d")
    assert read(os.path.join(mnt, "tmp", "e")) == b"other"
    assert read(os.path.join(mnt, "tmp", "e.1")) == payload("e")
    m.stop()
    assert {(r["base"], r["info"]) for r in ls_messages(store, "INBOX")} == \
        {("a", "S"), ("b", "new:")}
    chk = dboxctl("check", store, check=False)
    assert chk.returncode == 0, chk.stdout.decode()


def test_folders(wtmp, mounts):
    store = new_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    os.mkdir(os.path.join(mnt, ".Lists"))
    assert os.listdir(os.path.join(mnt, ".Lists")) == []
    os.mkdir(os.path.join(mnt, ".Lists/cur"))
    with pytest.raises(FileExistsError):
        os.mkdir(os.path.join(mnt, ".Lists/cur"))
    run(["mkdir", "-p", os.path.join(mnt, ".Lists.linux/cur"),
         os.path.join(mnt, ".Lists.linux/new"),
         os.path.join(mnt, ".Lists.linux/tmp")])
    assert "Lists/linux" in ls_mailboxes(store)
    assert os.stat(os.path.join(mnt, ".Lists.linux")).st_nlink == 5
    for bad in ("...x", ".a\x01b", ".a..b", ".%2Ex"):
        with pytest.raises(OSError) as e:
            os.mkdir(os.path.join(mnt, bad))
        assert e.value.errno == errno.EINVAL, bad
    # maildir++: a rename takes no dot-children along (they are siblings)
    with open(os.path.join(mnt, ".Lists.linux/tmp/x"), "wb") as f:
        f.write(b"Subject: x\n\nx\n")
    os.rename(os.path.join(mnt, ".Lists.linux/tmp/x"),
              os.path.join(mnt, ".Lists.linux/new/x"))
    os.rename(os.path.join(mnt, ".Lists"), os.path.join(mnt, ".Old"))
    boxes = ls_mailboxes(store)
    assert "Old" in boxes and "Lists/linux" in boxes and "Lists" not in boxes
    os.rename(os.path.join(mnt, ".Lists.linux"), os.path.join(mnt, ".Old.linux"))
    boxes = ls_mailboxes(store)
    assert "Old/linux" in boxes and "Lists/linux" not in boxes
    assert os.listdir(os.path.join(mnt, ".Old.linux/new")) == ["x"]
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(mnt, ".Old.linux"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(os.path.join(mnt, ".Old.linux/new/x"))
    for sub in ("cur", "new", "tmp"):
        os.rmdir(os.path.join(mnt, ".Old.linux", sub))
    os.rmdir(os.path.join(mnt, ".Old.linux"))
    assert "Old/linux" not in ls_mailboxes(store)
    m.stop()


def test_folders_fs_layout(wtmp, mounts):
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "layout=fs")
    run(["mkdir", "-p", os.path.join(mnt, "Lists/linux/cur"),
         os.path.join(mnt, "Lists/linux/new"),
         os.path.join(mnt, "Lists/linux/tmp")])
    assert "Lists/linux" in ls_mailboxes(store)
    assert sorted(os.listdir(os.path.join(mnt, "Lists/linux"))) == \
        ["cur", "new", "tmp"]
    os.rename(os.path.join(mnt, "Lists"), os.path.join(mnt, "Feeds"))
    assert "Feeds/linux" in ls_mailboxes(store)


def test_plain_files_beside_messages(wtmp, mounts):
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    p = os.path.join(mnt, "dovecot-uidlist")
    with open(p, "wb") as f:
        f.write(b"3 V1 N2\n")
        f.flush()
        os.fsync(f.fileno())
    with open(p, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        mm = mmap.mmap(f.fileno(), 0)
        mm[0:1] = b"4"
        mm.flush()
        mm.close()
        f.seek(0, 2)
        f.write(b"more\n")
        f.truncate(10)
    assert read(p) == b"4 V1 N2\nmo"
    os.makedirs(os.path.join(mnt, ".notmuch", "xapian"))
    with open(os.path.join(mnt, ".notmuch/xapian/db"), "wb") as f:
        f.write(b"x" * 5000)
    os.rename(os.path.join(mnt, ".notmuch/xapian/db"),
              os.path.join(mnt, ".notmuch/xapian/db2"))
    m.stop()
    m = mounts(store, mnt)
    assert read(p) == b"4 V1 N2\nmo"
    assert os.listdir(os.path.join(mnt, ".notmuch/xapian")) == ["db2"]
    assert "dovecot-uidlist" in os.listdir(mnt)


def test_cp_and_rsync_restore_into_cur(wtmp, mounts):
    """cp writes straight into cur/; rsync writes .name.XXXXXX and renames;
    both become messages, and a second rsync copies nothing."""
    src = make_maildir(os.path.join(wtmp, "backup"),
                       {"1.M1.b": b"Subject: 1\n\n1\n", "2.M2.b": b"Subject: 2\n\n2\n"},
                       flags={"1.M1.b": "S"}, mtimes={"1.M1.b": 1400000000,
                                                      "2.M2.b": 1400000001})
    store = new_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    run(["cp", "-p", os.path.join(src, "cur", "1.M1.b:2,S"),
         os.path.join(mnt, "cur")])
    # modes follow the store, so a restore does not carry them over
    run(["rsync", "-a", "--no-perms", src + "/", mnt + "/"])
    assert sorted(r["base"] for r in ls_messages(store, "INBOX")) == \
        ["1.M1.b", "2.M2.b"]
    assert {r["base"]: r["received"] for r in ls_messages(store, "INBOX")} == \
        {"1.M1.b": 1400000000, "2.M2.b": 1400000001}
    p = run(["rsync", "-a", "--no-perms", "--itemize-changes", src + "/",
             mnt + "/"])
    # no file is sent again; directory times on the mount follow their
    # contents (maildir-view.md section 2), so rsync may try to set them
    changed = [line for line in p.stdout.decode().splitlines()
               if not line.startswith(".d..t")]
    assert changed == []


def test_import_while_mounted_is_seen_within_a_second(wtmp, mounts):
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    before = os.stat(os.path.join(mnt, "cur")).st_mtime_ns
    assert names_in(mnt, "cur") == []
    src = make_maildir(os.path.join(wtmp, "src"), {"9.M9.i": b"Subject: i\n\ni\n"})
    dboxctl("import", store, "INBOX", src)
    wait_for(lambda: names_in(mnt, "cur") == ["9.M9.i:2,"], timeout=1.5,
             what="import to show on the mount")
    wait_for(lambda: os.stat(os.path.join(mnt, "cur")).st_mtime_ns != before,
             timeout=1.5, what="cur/ mtime to move")


@pytest.mark.parametrize("err", ["eio", "enospc"])
def test_store_errors_fail_the_fsync_of_the_directory(wtmp, mounts, err):
    """Without -o sync the rename of a file that was not fsynced syncs
    nothing (its row is unconfirmed): a failing device flush is
    reported by the fsync of the directory, as on ext4."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "fs=randomfail:%s:100%%:sync/posix" % err)
    tmp = os.path.join(mnt, "tmp", "x")
    with open(tmp, "wb") as f:
        f.write(payload("x"))
    os.rename(tmp, os.path.join(mnt, "new", "x"))
    fd = os.open(os.path.join(mnt, "new"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as e:
            os.fsync(fd)
    finally:
        os.close(fd)
    assert e.value.errno == getattr(errno, err.upper())


@pytest.mark.parametrize("err", ["eio", "enospc"])
def test_store_errors_fail_the_rename(wtmp, mounts, err):
    """-o sync: the rename syncs the message's bytes first."""
    store = new_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "fs=randomfail:%s:100%%:sync/posix" % err, "sync")
    tmp = os.path.join(mnt, "tmp", "x")
    with open(tmp, "wb") as f:
        f.write(payload("x"))
    with pytest.raises(OSError) as e:
        os.rename(tmp, os.path.join(mnt, "new", "x"))
    assert e.value.errno == getattr(errno, err.upper())
    assert read(tmp) == payload("x")
    assert names_in(mnt, "new") == []
    assert ls_messages(store, "INBOX") == []


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_linked_tmp_file_kept_after_clean_stop(wtmp, mounts, fmt):
    """A tmp/ file link()ed into new/ and not unlinked is the client's
    (maildir-view.md section 3): a clean stop and a remount keep it,
    readable, also after its message is gone; only a daemon killed
    between the link and the client's unlink leaves a leftover the next
    mount removes (test_crash_safety)."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for name in ("k", "x"):
        with open(os.path.join(mnt, "tmp", name), "wb") as f:
            f.write(payload(name))
    os.link(os.path.join(mnt, "tmp", "k"), os.path.join(mnt, "new", "k"))
    m.stop()
    m = mounts(store, mnt)
    assert names_in(mnt, "tmp") == ["k", "x"]
    assert names_in(mnt, "new") == ["k"]
    # a second link is a second message; the first one can go
    os.link(os.path.join(mnt, "tmp", "k"), os.path.join(mnt, "cur", "k2:2,S"))
    os.unlink(os.path.join(mnt, "new", "k"))
    assert read(os.path.join(mnt, "tmp", "k")) == payload("k")
    assert read(os.path.join(mnt, "cur", "k2:2,S")) == payload("k")
    os.link(os.path.join(mnt, "tmp", "x"), os.path.join(mnt, "new", "x"))
    m.kill()
    wait_for(lambda: not is_mounted(mnt), what="unmount")
    m = mounts(store, mnt)
    # x: killed before its unlink, a leftover; k: kept at the clean stop
    assert names_in(mnt, "tmp") == ["k"]
    assert read(os.path.join(mnt, "new", "x")) == payload("x")
    m.stop()


# ------------------------------------------- a message renamed into tmp/

MOVER = """
import os, sys
os.rename(sys.argv[1], sys.argv[2])
open(sys.argv[3], "w").close()
"""


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_message_renamed_into_tmp_killed(wtmp, mounts, fmt):
    """SIGKILL the daemon while a message is renamed back into tmp/ (its
    bytes are copied out of the store, slowly here): at the next mount
    the bytes are the message, or the tmp/ file, or both; never lost,
    never cut short, and once the rename returned, the tmp/ file alone."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    rng = random.Random(11)
    data = b"Subject: big\n\n" + b"".join(
        b"line %06d of a message that takes a while to copy\n" % i
        for i in range(40000))
    m = mounts(store, mnt)
    for i in range(4):
        with open(os.path.join(mnt, "tmp", "k%d" % i), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", "k%d" % i),
                  os.path.join(mnt, "cur", "k%d:2,S" % i))
    m.stop()
    for i in range(4):
        done = os.path.join(wtmp, "done%d" % i)
        m = mounts(store, mnt, "fs=delay:20ms/posix")
        p = subprocess.Popen(["/usr/bin/python3", "-c", MOVER,
                              os.path.join(mnt, "cur", "k%d:2,S" % i),
                              os.path.join(mnt, "tmp", "k%d" % i), done],
                             stderr=subprocess.PIPE)
        deadline = time.monotonic() + rng.uniform(0, 1.5) * (i + 1) / 2
        wait_for(lambda: time.monotonic() >= deadline or
                 p.poll() is not None, timeout=10, what="the moment to kill")
        m.kill()
        p.wait(timeout=60)
        wait_for(lambda: not is_mounted(mnt), what="unmount")
        m = mounts(store, mnt)
        in_cur = os.path.exists(os.path.join(mnt, "cur", "k%d:2,S" % i))
        in_tmp = os.path.exists(os.path.join(mnt, "tmp", "k%d" % i))
        assert in_cur or in_tmp, i
        if in_cur:
            assert read(os.path.join(mnt, "cur", "k%d:2,S" % i)) == data
        if in_tmp:
            assert read(os.path.join(mnt, "tmp", "k%d" % i)) == data
        if os.path.exists(done):
            assert in_tmp and not in_cur, i
        assert not [n for n in names_in(mnt, "tmp") if n.startswith(".")]
        m.stop()
        assert dboxctl("check", store).returncode == 0


def test_sdbox_file_left_by_a_writer_killed_after_its_expunge(wtmp, mounts):
    """A daemon killed between an expunge's (or a move's) commit and the
    unlink of its u.N leaves the file without a row below the mailbox's
    next uid (seen in test_message_renamed_into_tmp_killed).  The next
    mount after the dead writer removes it, so that dboxctl check is
    clean and Dovecot's rebuild brings back no expunged message."""
    store = new_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for name in ("a", "b"):
        with open(os.path.join(mnt, "tmp", name), "wb") as f:
            f.write(payload(name))
        os.rename(os.path.join(mnt, "tmp", name),
                  os.path.join(mnt, "cur", name + ":2,"))
    mails = os.path.join(store, "mailboxes", "INBOX", "dbox-Mails")
    u1 = read(os.path.join(mails, "u.1"))
    os.unlink(os.path.join(mnt, "cur", "a:2,"))
    wait_for(lambda: not os.path.exists(os.path.join(mails, "u.1")),
             what="u.1 removed")
    m.kill()
    wait_for(lambda: not is_mounted(mnt), what="unmount")
    # as if the kill had come between the commit and the unlink
    with open(os.path.join(mails, "u.1"), "wb") as f:
        f.write(u1)
    m = mounts(store, mnt)
    assert names_in(mnt, "cur") == ["b:2,"]
    m.stop()
    assert not os.path.exists(os.path.join(mails, "u.1"))
    assert os.path.exists(os.path.join(mails, "u.2"))
    r = dboxctl("check", store)
    assert r.returncode == 0, (r.stdout, r.stderr)


def killed_inside_rename_into_tmp(wtmp, mounts, fmt, extra=False):
    """A store as a daemon killed inside two renames of messages into
    tmp/ leaves it: the tmp/ file under its reserved name, with its final
    name in an xattr; "a" after the expunge committed (the message is
    gone), "b" before (the message is still there).  Returns store, mnt,
    tmp/'s spool directory and the messages' inode numbers."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for name in ("a", "b"):
        with open(os.path.join(mnt, "tmp", name), "wb") as f:
            f.write(payload(name))
        os.rename(os.path.join(mnt, "tmp", name),
                  os.path.join(mnt, "cur", name + ":2,"))
    ino = {n: os.stat(os.path.join(mnt, "cur", n + ":2,")).st_ino
           for n in ("a", "b")}
    os.rename(os.path.join(mnt, "cur", "a:2,"), os.path.join(mnt, "tmp", "a"))
    assert os.stat(os.path.join(mnt, "tmp", "a")).st_ino == ino["a"]
    if extra:   # an ordinary tmp/ file and a plain file
        for rel in ("tmp/c", "subscriptions"):
            with open(os.path.join(mnt, rel), "wb") as f:
                f.write(payload(rel))
    m.stop()

    def reserved(n):
        return ".dboxfs-totmp.%d.%d" % ((ino[n] >> 32) & ((1 << 28) - 1),
                                        ino[n] & 0xffffffff)
    # a: renamed, but not yet to its name
    spool = spool_file(store, "tmp", "a")
    tmpdir = os.path.dirname(spool)
    os.rename(spool, os.path.join(tmpdir, reserved("a")))
    os.setxattr(os.path.join(tmpdir, reserved("a")), "user.dboxfs.totmp",
                b"a")
    # b: its bytes written out, the expunge not committed
    with open(os.path.join(tmpdir, reserved("b")), "wb") as f:
        f.write(payload("b"))
    os.setxattr(os.path.join(tmpdir, reserved("b")), "user.dboxfs.ino",
                str(ino["b"]).encode())
    os.setxattr(os.path.join(tmpdir, reserved("b")), "user.dboxfs.totmp",
                b"b")
    return store, mnt, tmpdir, ino


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_message_renamed_into_tmp_sweep(wtmp, mounts, fmt):
    """What a daemon killed inside the rename leaves: before the expunge
    committed the next mount removes the reserved file; after, it gets
    its name, and keeps the message's inode number."""
    store, mnt, tmpdir, ino = killed_inside_rename_into_tmp(wtmp, mounts,
                                                            fmt)
    m = mounts(store, mnt)
    assert names_in(mnt, "tmp") == ["a"]
    assert names_in(mnt, "cur") == ["b:2,"]
    assert read(os.path.join(mnt, "tmp", "a")) == payload("a")
    assert os.stat(os.path.join(mnt, "tmp", "a")).st_ino == ino["a"]
    assert read(os.path.join(mnt, "cur", "b:2,")) == payload("b")
    m.stop()
    assert sorted(os.listdir(tmpdir)) == ["a"]
    assert dboxctl("check", store).returncode == 0


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_message_renamed_into_tmp_ro_mount(wtmp, mounts, fmt):
    """A read-only mount runs no sweep, and writes nothing, but shows
    what the next read-write mount will show: the finished rename (the
    file under its name, with the message's inode number), never the
    reserved name."""
    store, mnt, tmpdir, ino = killed_inside_rename_into_tmp(
        wtmp, mounts, fmt, extra=True)
    before = sorted(os.listdir(tmpdir))
    m = mounts(store, mnt, "ro")
    assert names_in(mnt, "tmp") == ["a", "c"]
    assert names_in(mnt, "cur") == ["b:2,"]
    assert read(os.path.join(mnt, "tmp", "a")) == payload("a")
    assert read(os.path.join(mnt, "tmp", "c")) == payload("tmp/c")
    assert read(os.path.join(mnt, "subscriptions")) == \
        payload("subscriptions")
    st = os.stat(os.path.join(mnt, "tmp", "a"))
    assert st.st_ino == ino["a"] and st.st_size == len(payload("a"))
    for gone in os.listdir(tmpdir):
        if gone.startswith("."):
            with pytest.raises(FileNotFoundError):
                os.stat(os.path.join(mnt, "tmp", gone))
    m.stop()
    assert sorted(os.listdir(tmpdir)) == before
    m = mounts(store, mnt)
    assert names_in(mnt, "tmp") == ["a", "c"]
    assert os.stat(os.path.join(mnt, "tmp", "a")).st_ino == ino["a"]
