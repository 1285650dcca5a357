"""The read-only side of the maildir view on real mounts."""

import errno
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from dboxfs_testlib import (DBOXFS, dboxctl, doveadm_view, dovecot_tree,
                            make_maildir, mounts, needs_dovecot, run,
                            tree_state, wait_for, wtmp)  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")


def folder_path(mnt, layout, mailbox):
    if layout == "fs":
        return os.path.join(mnt, *mailbox.split("/"))
    if mailbox == "INBOX":
        return mnt
    name = "".join("%%%02X" % ord(c) if c in ".%" else c for c in mailbox)
    return os.path.join(mnt, "." + name.replace("/", "."))


def message_files(folder):
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for n in sorted(os.listdir(d)):
            yield sub, n, os.path.join(d, n)


def read(path):
    with open(path, "rb") as f:
        return f.read()


@needs_dovecot
@pytest.mark.parametrize("layout", ["maildir++", "fs"])
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecot_store_through_mount(dovecot_tree, mounts, fmt, layout):
    top, out = dovecot_tree
    root = os.path.join(out, fmt)
    expected = doveadm_view(out, fmt)   # doveadm updates its cache file
    before = tree_state(root)
    mnt = os.path.join(top, "mnt-%s-%s" % (fmt, layout))
    mounts(root, mnt, "layout=" + layout,
           "index=" + os.path.join(top, "idx-%s-%s.sqlite" % (fmt, layout)))
    total = 0
    for box, msgs in expected.items():
        folder = folder_path(mnt, layout, box)
        seen = {}
        for sub, name, path in message_files(folder):
            data = read(path)
            guid = os.getxattr(path, "user.dbox.guid").decode()
            st = os.stat(path)
            assert st.st_size == len(data)
            m = re.search(r",S=(\d+)", name)
            if m:
                assert int(m.group(1)) == st.st_size, name
            assert int(st.st_mtime) == msgs[guid][1], (box, name)
            seen[guid] = data
        assert set(seen) == set(msgs), box
        for guid, (data, _) in msgs.items():
            assert seen[guid] == data, (box, guid)
        total += len(msgs)
    # every regular file is a message, except the keyword mapping files
    found = run(["find", mnt, "-type", "f", "!", "-name",
                 "dovecot-keywords"]).stdout.decode().splitlines()
    assert len(found) == total
    with pytest.raises(OSError) as e:
        open(os.path.join(folder_path(mnt, layout, "INBOX"), "cur", "x"), "w")
    assert e.value.errno == errno.EROFS
    assert tree_state(root) == before


def small_store(wtmp, fmt, n=6, boxes=("INBOX",)):
    msgs = {"17000000%02d.M%d.r,S=%d" % (i, i, len(b"Subject: m%d\n\nbody %d\n" % (i, i))):
            b"Subject: m%d\n\nbody %d\n" % (i, i) for i in range(n)}
    src = make_maildir(os.path.join(wtmp, "src"), msgs,
                       flags={b: "S" for b in list(msgs)[::2]},
                       new=list(msgs)[1:2])
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    for b in boxes:
        dboxctl("import", store, b, src)
    return store, msgs


def snapshot(mnt):
    res = {}
    for d, dirs, files in os.walk(mnt):
        for n in dirs + files:
            p = os.path.join(d, n)
            res[os.path.relpath(p, mnt)] = os.lstat(p).st_ino
    return res


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_names_and_inodes_stable_and_rsync(wtmp, mounts, fmt):
    store, msgs = small_store(wtmp, fmt, boxes=("INBOX", "Lists/linux"))
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    first = snapshot(mnt)
    assert "cur" in first and ".Lists.linux/cur" in first
    assert len([p for p in first if "/cur/" in p or "/new/" in p
                or p.startswith(("cur/", "new/"))]) == 2 * len(msgs)
    # maildir names keep the deliverer's base and show the flags
    names = {os.path.basename(p) for p in first}
    assert any(n.endswith(":2,S") for n in names)
    dest = os.path.join(wtmp, "copy")
    run(["rsync", "-a", mnt + "/", dest + "/"])
    m.stop()
    m = mounts(store, mnt)
    assert snapshot(mnt) == first
    p = run(["rsync", "-a", "--itemize-changes", mnt + "/", dest + "/"])
    assert p.stdout.decode().strip() == ""
    for rel in first:
        full = os.path.join(mnt, rel)
        if os.path.isfile(full) and "dovecot-keywords" not in rel:
            assert read(full) == read(os.path.join(dest, rel))


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_readonly_and_immutable(wtmp, mounts, fmt):
    store, msgs = small_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "ro")
    f = os.path.join(mnt, "cur", sorted(os.listdir(os.path.join(mnt, "cur")))[0])
    for action in (lambda: open(f, "r+b"), lambda: open(f, "ab"),
                   lambda: os.mkdir(os.path.join(mnt, ".New")),
                   lambda: open(os.path.join(mnt, "tmp", "x"), "wb"),
                   lambda: os.unlink(f), lambda: os.truncate(f, 0)):
        with pytest.raises(OSError) as e:
            action()
        assert e.value.errno == errno.EROFS
    m.stop()
    mounts(store, mnt)
    with pytest.raises(OSError) as e:
        open(f, "r+b")
    assert e.value.errno in (errno.EACCES, errno.EPERM)
    assert read(f) in msgs.values()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_xattrs_outside_user_not_supported(wtmp, mounts, fmt):
    """Spec 2: names outside user. answer EOPNOTSUPP on every node, as on
    a filesystem without labels or ACLs (ls -l then asks once per mount
    instead of twice per file); the user.dbox.* names still answer."""
    store, msgs = small_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    cur = os.path.join(mnt, "cur")
    f = os.path.join(cur, sorted(os.listdir(cur))[0])
    for path in (f, cur, mnt):
        for name in ("security.selinux", "system.posix_acl_access",
                     "trusted.x", "user.dbox.none"):
            with pytest.raises(OSError) as e:
                os.getxattr(path, name)
            want = (errno.ENODATA if name.startswith("user.")
                    else errno.EOPNOTSUPP)
            assert e.value.errno == want, (path, name)
        with pytest.raises(OSError) as e:
            os.setxattr(path, "security.selinux", b"x")
        assert e.value.errno == errno.EOPNOTSUPP
    assert int(os.getxattr(f, "user.dbox.uid")) >= 1
    assert "user.dbox.guid" in os.listxattr(f)
    # ls -l sees no ACL or label mark on any entry
    out = run(["ls", "-l", cur]).stdout.decode().splitlines()[1:]
    assert out and all(line.split()[0][-1] not in "+." for line in out)


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_corrupted_file_gives_eio_for_its_messages_only(wtmp, mounts, fmt):
    store, msgs = small_store(wtmp, fmt)
    # break the header magic of uid 4
    if fmt == "sdbox":
        path, off = os.path.join(store, "mailboxes/INBOX/dbox-Mails/u.4"), 16
    else:
        path = os.path.join(store, "storage", "m.1")
        data = read(path)
        off = [m.start() for m in re.finditer(b"\x01\x02N ", data)][3]
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(b"\x00\x00")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    bad = 0
    for sub, name, p in message_files(mnt):
        uid = int(os.getxattr(p, "user.dbox.uid"))
        if uid == 4:
            bad += 1
            for _ in range(2):
                with pytest.raises(OSError) as e:
                    read(p)
                assert e.value.errno == errno.EIO
        else:
            assert read(p) == msgs[name.split(":2,")[0]]
    assert bad == 1
    m.stop()
    log = m.output()
    assert log.count("Corrupted dbox file") == 1, log
    assert path in log and "offset=%d" % off in log


def test_parallel_reads_with_slow_storage(wtmp, mounts):
    n = 64
    msgs = {"%d.M%d.p" % (1700000000 + i, i): b"Subject: %d\n\n" % i + b"x" * 2000
            for i in range(n)}
    src = make_maildir(os.path.join(wtmp, "src"), msgs)
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "sdbox")
    dboxctl("import", store, "INBOX", src)
    dboxctl("import", store, "Other", make_maildir(
        os.path.join(wtmp, "src2"), {"1.M1.o": b"Subject: o\n\no\n"}))
    mnt = os.path.join(wtmp, "mnt")
    files = [os.path.join(mnt, "cur", n + ":2,") for n in sorted(msgs)]
    other = os.path.join(mnt, ".Other", "cur", "1.M1.o:2,")

    def timed_sequential(k):
        t = time.monotonic()
        # backwards: a cold read in uid order is checked ahead in
        # parallel (fileio.c), which is not the one-by-one cost wanted
        for f in reversed(files[:k]):
            read(f)
        return (time.monotonic() - t) / k

    m = mounts(store, mnt, "fs=delay:20ms/posix")
    single = timed_sequential(8)       # cold: each read waits on "disk"
    assert single >= 0.02
    m.stop()
    mounts(store, mnt, "fs=delay:20ms/posix")
    results, stat_time = [], []
    start = threading.Barrier(n + 1)

    def reader(f):
        start.wait()
        results.append(read(f))
    threads = [threading.Thread(target=reader, args=(f,)) for f in files]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    start.wait()
    ts = time.monotonic()
    os.stat(other)          # another folder, while 64 slow reads run
    stat_time.append(time.monotonic() - ts)
    for t in threads:
        t.join(timeout=60)
    parallel = time.monotonic() - t0
    assert len(results) == n
    assert sorted(results) == sorted(msgs.values())
    # generous bounds: far below 64 sequential reads
    assert parallel < n * single / 4, (parallel, single)
    assert stat_time[0] < max(0.5, parallel), (stat_time, parallel)


def test_daemon_survives_abuse(wtmp, mounts):
    store, msgs = small_store(wtmp, "mdbox")
    big = make_maildir(os.path.join(wtmp, "big"),
                       {"2.M2.big": b"Subject: big\n\n" + b"y" * (8 << 20)})
    dboxctl("import", store, "INBOX", big)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "fs=delay:2ms/posix")
    bigf = os.path.join(mnt, "cur", "2.M2.big:2,")
    # a reader killed mid-read
    p = subprocess.Popen(["dd", "if=" + bigf, "of=/dev/null", "bs=4k"],
                         stderr=subprocess.DEVNULL)

    def dd_reading():
        with open("/proc/%d/io" % p.pid) as io:
            return int(io.read().split("rchar: ")[1].split()[0]) > 65536
    wait_for(dd_reading, what="dd to be reading")
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert len(read(bigf)) == os.stat(bigf).st_size
    # 10,000 lookups of names that do not exist
    for i in range(10000):
        with pytest.raises(FileNotFoundError):
            os.stat(os.path.join(mnt, "cur", "nope-%d:2,S" % i))
    assert sorted(os.listdir(os.path.join(mnt, "cur")))
    # unmount with open files: fusermount3 refuses (busy), a lazy unmount
    # detaches at once and the daemon exits cleanly after the last close
    f = open(bigf, "rb")
    f.read(10)
    assert run(["fusermount3", "-u", mnt], check=False).returncode != 0
    run(["fusermount3", "-uz", mnt])
    assert f.read(10) == b"ig\n\nyyyyyy"  # the open file still reads
    f.close()
    assert m.proc.wait(timeout=30) == 0, m.output()


def test_lazy_unmounts_end_cleanly(wtmp, mounts):
    """The last close after a lazy unmount queues the file's RELEASE as the
    connection is shut down; a read of the device that took that request
    gets ECONNABORTED, not ENODEV (fs/fuse/dev.c).  It is an unmount all
    the same: the daemon exits 0.  The race is narrow (about 1 cycle in
    200 here before the fix), so the cycle is repeated."""
    store, msgs = small_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    for i in range(150):
        m = mounts(store, mnt)
        with open(os.path.join(mnt, "cur", os.listdir(
                os.path.join(mnt, "cur"))[0]), "rb") as f:
            f.read(5)
            run(["fusermount3", "-uz", mnt])
        assert m.proc.wait(timeout=30) == 0, "cycle %d: %s" % (i, m.output())


def test_help_version_and_bad_options(wtmp):
    out = run([DBOXFS, "--help"]).stdout.decode()
    assert "layout=maildir++|fs" in out and "fs=CONFIG" in out
    assert b"\ndboxfs " in b"\n" + run([DBOXFS, "--version"]).stdout
    store, _ = small_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    os.makedirs(mnt)
    for opt, what in (("layout=weird", b"layout"), ("fs=bogus/posix", b"bogus")):
        p = run([DBOXFS, store, mnt, "-f", "-o", opt], check=False)
        assert p.returncode != 0 and what in p.stderr
        assert not os.path.ismount(mnt)
    p = run([DBOXFS, os.path.join(wtmp, "nostore"), mnt], check=False)
    assert p.returncode != 0 and b"nostore" in p.stderr


def test_sigterm_unmounts_cleanly(wtmp, mounts):
    store, msgs = small_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    assert len(os.listdir(os.path.join(mnt, "cur"))) > 0
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(timeout=30) == 0, m.output()
    wait_for(lambda: not os.path.ismount(mnt), what="unmount")


def test_mount_fuse3_and_umount(wtmp):
    """What an /etc/fstab line does: mount(8) runs mount.fuse3, which
    starts the daemon in the background; umount(8) ends it.  (The
    "prog#source" form names the binary from the build tree; an installed
    dboxfs is found as type fuse.dboxfs.)"""
    store, msgs = small_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    os.makedirs(mnt)
    run(["mount", "-t", "fuse", "%s#%s" % (DBOXFS, store), mnt, "-o",
         "defaults"], timeout=60)
    try:
        assert os.path.ismount(mnt)
        name = sorted(os.listdir(os.path.join(mnt, "cur")))[0]
        assert read(os.path.join(mnt, "cur", name)) in msgs.values()
        pids = [int(p) for p in run(["pgrep", "-f", "^%s %s" % (DBOXFS, store)],
                                    check=False).stdout.split()]
        assert len(pids) == 1
    finally:
        run(["umount", mnt], check=False)
    wait_for(lambda: not os.path.exists("/proc/%d" % pids[0]) or
             open("/proc/%d/stat" % pids[0]).read().split()[2] == "Z",
             timeout=30, what="daemon exit")
    assert not os.path.ismount(mnt)
