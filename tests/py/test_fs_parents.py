"""fs layout: a parent that is no mailbox (A of A/B when only A/B is one)
is a directory like any other (issue 10): its inode number is stored (the
entry files/vdirs/A in dboxfs's own area, vdirs.h), so it holds across
its folders' removal and remounts; it stays, empty, after its last folder
and goes with rmdir, entry and all; a read-only mount, which writes
nothing, gives it a number from its name; Dovecot never sees the entries
as mailboxes."""

import errno
import os
import time

import pytest

from dboxfs_testlib import (DBOXFS, Doveadm, dboxctl, files_state,
                            ls_mailboxes, make_maildir, mounts,
                            needs_dovecot, wait_for, wtmp)  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")


def store_with(wtmp, fmt, *boxes):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    empty = make_maildir(os.path.join(wtmp, "empty"), {})
    for box in boxes:
        dboxctl("import", store, box, empty)
    return store


def rmfolder(path):
    for sub in ("cur", "new", "tmp"):
        os.rmdir(os.path.join(path, sub))
    os.rmdir(path)


def outcome(fn, *args):
    try:
        fn(*args)
        return 0
    except OSError as e:
        return e.errno


def entry(store, name):
    return os.path.join(store, "dboxfs", "files", "vdirs", name)


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_parent_kept_by_its_entry(wtmp, mounts, fmt):
    store = store_with(wtmp, fmt, "A/B", "A/C", "A/C/D")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "layout=fs")
    a = os.path.join(mnt, "A")
    ino = os.stat(a).st_ino
    # the entry of the parent is made when the mount shows it
    assert os.stat(entry(store, "A")).st_ino & (2 ** 59 - 1) == \
        ino & (2 ** 59 - 1)
    rmfolder(os.path.join(a, "B"))
    assert os.stat(a).st_ino == ino
    assert outcome(os.rmdir, a) == errno.ENOTEMPTY
    rmfolder(os.path.join(a, "C/D"))
    rmfolder(os.path.join(a, "C"))
    st = os.stat(a)
    assert (st.st_ino, st.st_nlink, os.listdir(a)) == (ino, 2, [])
    m.stop()
    assert sorted(ls_mailboxes(store)) == ["INBOX"]
    m = mounts(store, mnt, "layout=fs")
    assert os.stat(a).st_ino == ino
    assert sorted(os.listdir(mnt)) == ["A", "INBOX"]
    # the maildir++ layout shows mailboxes only: no A there
    m.stop()
    m = mounts(store, mnt)
    assert not any(n.startswith(".") for n in os.listdir(mnt))
    m.stop()
    m = mounts(store, mnt, "layout=fs")
    os.rmdir(a)
    assert not os.path.exists(entry(store, "A"))
    m.stop()
    m = mounts(store, mnt, "layout=fs")
    assert outcome(os.stat, a) == errno.ENOENT


def test_read_only_mount_writes_no_entry(wtmp, mounts):
    """-o ro makes no entry; the parent's number, from its name, is the
    same at the next read-only mount and after its first folder went."""
    store = store_with(wtmp, "sdbox", "P/Q", "P/R")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "layout=fs", "ro")
    ino = os.stat(os.path.join(mnt, "P")).st_ino
    assert sorted(os.listdir(os.path.join(mnt, "P"))) == ["Q", "R"]
    m.stop()
    assert not os.path.exists(entry(store, "P"))
    # P/Q goes through the maildir++ layout, which knows no parents
    m = mounts(store, mnt)
    rmfolder(os.path.join(mnt, ".P.Q"))
    m.stop()
    m = mounts(store, mnt, "layout=fs", "ro")
    assert os.stat(os.path.join(mnt, "P")).st_ino == ino
    m.stop()
    assert not os.path.exists(entry(store, "P"))


@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecot_sees_no_entry(wtmp, mounts, fmt):
    """A Dovecot store taken over: the parents' entries are below
    dboxfs/, which Dovecot never lists; an empty parent kept on the mount
    is no mailbox to Dovecot."""
    root = os.path.join(wtmp, fmt)
    os.makedirs(root)
    da = Doveadm(wtmp, root, fmt)
    da("mailbox", "create", "INBOX")
    da("mailbox", "create", "A/B")
    da("mailbox", "create", "C/D")
    before = set(da("mailbox", "list").stdout.decode().split())
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", "layout=fs")
    ino = os.stat(os.path.join(mnt, "A")).st_ino
    rmfolder(os.path.join(mnt, "A/B"))
    assert os.listdir(os.path.join(mnt, "A")) == []
    assert os.stat(os.path.join(mnt, "A")).st_ino == ino
    assert os.listdir(os.path.join(root, "dboxfs", "files", "vdirs"))
    m.stop()
    da = Doveadm(wtmp, root, fmt)       # chowns what the mount wrote
    after = set(da("mailbox", "list").stdout.decode().split())
    assert "A/B" not in after and {"INBOX", "C/D"} <= after <= before
    assert not any("vdirs" in n or "dboxfs" in n for n in after)
    m = mounts(root, mnt, "takeover", "layout=fs")
    assert os.stat(os.path.join(mnt, "A")).st_ino == ino


@needs_dovecot
def test_dovecot_delete_while_unmounted_moves_parent_mtime(wtmp, mounts):
    """doveadm mailbox delete of A/B while nothing is mounted: at the next
    mount B is gone from A, whose mtime moves (to the mount's time)."""
    root = os.path.join(wtmp, "sdbox")
    os.makedirs(root)
    da = Doveadm(wtmp, root, "sdbox")
    for box in ("INBOX", "A/B", "A/C"):
        da("mailbox", "create", box)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", "layout=fs")
    a = os.path.join(mnt, "A")
    before = os.stat(a).st_mtime_ns
    m.stop()
    wait_for(lambda: time.time_ns() - before > 1_100_000_000, timeout=5,
             what="a second to pass")
    da = Doveadm(wtmp, root, "sdbox")       # chowns what the mount wrote
    t0 = time.time_ns()
    da("mailbox", "delete", "A/B")
    m = mounts(root, mnt, "takeover", "layout=fs")
    wait_for(lambda: os.stat(a).st_mtime_ns >= t0, timeout=5,
             what="A's mtime to move")
    assert os.listdir(a) == ["C"]


def test_parent_names_escaped_and_too_long(wtmp, mounts):
    """'%' and '/' in a parent's entry name are escaped, so p%2Fq and p/q
    are two parents; a parent whose entry name would be too long has
    none: it is numbered by its name, and goes with its last folder."""
    long = "%" * 100
    store = store_with(wtmp, "sdbox", "p%2Fq/r", "p/q/r", long + "/s")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "layout=fs")
    assert sorted(os.listdir(mnt)) == sorted(["INBOX", "p%2Fq", "p", long])
    inos = {n: os.stat(os.path.join(mnt, n)).st_ino
            for n in ("p%2Fq", "p", "p/q", long)}
    assert len(set(inos.values())) == 4
    assert sorted(os.listdir(entry(store, ""))) == \
        ["p", "p%252Fq", "p%2Fq"]
    for box in ("p%2Fq/r", "p/q/r", long + "/s"):
        rmfolder(os.path.join(mnt, box))
    # the long one went with its folder: the kernel's cached listing of
    # the root goes when the follower sees it
    wait_for(lambda: sorted(os.listdir(mnt)) == ["INBOX", "p", "p%2Fq"],
             timeout=5, what="the long parent to go")
    assert {n: os.stat(os.path.join(mnt, n)).st_ino
            for n in ("p%2Fq", "p", "p/q")} == \
        {n: inos[n] for n in ("p%2Fq", "p", "p/q")}
    assert outcome(os.rmdir, os.path.join(mnt, "p")) == errno.ENOTEMPTY
    os.rmdir(os.path.join(mnt, "p/q"))
    os.rmdir(os.path.join(mnt, "p"))
    os.rmdir(os.path.join(mnt, "p%2Fq"))
    assert os.listdir(mnt) == ["INBOX"]
    assert os.listdir(entry(store, "")) == []


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_parent_files_become_the_folders_files(wtmp, mounts, fmt):
    """The plain files of a parent that is no mailbox are in its entry: a
    read-only mount shows them; when another program makes the parent a
    mailbox, they are that folder's plain files, as the files of a
    directory that became a maildir; a parent with no entry (its name
    too long for one) refuses them with a clear error."""
    long = "%" * 100      # its entry's name: 300 characters
    store = store_with(wtmp, fmt, "A/B", long + "/s")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "layout=fs")
    a = os.path.join(mnt, "A")
    with open(os.path.join(a, "notes"), "wb") as f:
        f.write(b"kept")
    os.mkdir(os.path.join(a, ".d"))
    with open(os.path.join(a, ".d", "x"), "wb") as f:
        f.write(b"x" * 100)
    assert sorted(os.listdir(a)) == [".d", "B", "notes"]
    assert outcome(open, os.path.join(mnt, long, "f"), "wb") == \
        errno.ENAMETOOLONG
    m.stop()
    m = mounts(store, mnt, "layout=fs", "ro")
    assert sorted(os.listdir(a)) == [".d", "B", "notes"]
    m.stop()
    empty = make_maildir(os.path.join(wtmp, "empty"), {})
    dboxctl("import", store, "A", empty)
    m = mounts(store, mnt, "layout=fs")
    assert sorted(os.listdir(a)) == [".d", "B", "cur", "new", "notes",
                                     "tmp"]
    with open(os.path.join(a, "notes"), "rb") as f:
        assert f.read() == b"kept"
    assert os.path.getsize(os.path.join(a, ".d", "x")) == 100
    assert not os.path.exists(entry(store, "A"))
    m.stop()


def test_parent_mode_kept(wtmp, mounts):
    """chmod of a parent is kept in its entry, across a remount and a
    rename of the parent; a read-only mount shows it and changes none."""
    store = store_with(wtmp, "sdbox", "A/B")
    mnt = os.path.join(wtmp, "mnt")
    a, c = os.path.join(mnt, "A"), os.path.join(mnt, "C")
    m = mounts(store, mnt, "layout=fs")
    shown = os.stat(a).st_mode
    os.chmod(a, 0o750)
    assert os.stat(a).st_mode == 0o40750 != shown
    m.stop()
    m = mounts(store, mnt, "layout=fs")
    assert os.stat(a).st_mode == 0o40750
    os.rename(a, c)
    assert os.stat(c).st_mode == 0o40750
    m.stop()
    m = mounts(store, mnt, "layout=fs", "ro")
    assert os.stat(c).st_mode == 0o40750
    for d in (c, os.path.join(c, "B"), os.path.join(c, "B", "cur"), mnt):
        assert outcome(os.chmod, d, 0o755) == errno.EROFS
    assert os.stat(c).st_mode == 0o40750
    m.stop()
    # another program makes the parent a mailbox: the folder keeps it
    dboxctl("import", store, "C", make_maildir(os.path.join(wtmp, "e"), {}))
    m = mounts(store, mnt, "layout=fs")
    assert os.stat(c).st_mode == 0o40750
    assert os.path.isdir(os.path.join(c, "cur"))
    m.stop()


def tree_state(root):
    """Every path below root with its type, mode, size, mtime and bytes."""
    return files_state(root)


@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_read_only_mount_shows_takeovers_parents(wtmp, mounts, fmt):
    """A Dovecot tree taken over: the empty parent A (and its plain file)
    the takeover mount kept is shown by a read-only mount of the same
    tree as the takeover mount showed it (mode, times, the file), with
    a number that holds within that mount, and the tree is left byte
    for byte as it was."""
    root = os.path.join(wtmp, fmt)
    os.makedirs(root)
    da = Doveadm(wtmp, root, fmt)
    da("mailbox", "create", "INBOX")
    da("mailbox", "create", "A/B")
    mnt = os.path.join(wtmp, "mnt")
    a = os.path.join(mnt, "A")
    m = mounts(root, mnt, "takeover", "layout=fs")
    rmfolder(os.path.join(a, "B"))
    with open(os.path.join(a, "notes"), "wb") as f:
        f.write(b"kept")
    os.utime(os.path.join(a, "notes"), ns=(10 ** 18, 10 ** 18 + 7))
    os.utime(a, ns=(2 * 10 ** 18, 2 * 10 ** 18 + 9))
    taken = os.stat(a)
    note = os.stat(os.path.join(a, "notes"))
    m.stop()
    before = tree_state(root)
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(wtmp, "cache"))
    m = mounts(root, mnt, "layout=fs", "ro", env=env)
    assert sorted(os.listdir(mnt)) == ["A", "INBOX"]
    st = os.stat(a)
    assert (st.st_mode, st.st_mtime_ns, st.st_nlink) == \
        (taken.st_mode, taken.st_mtime_ns, 2)
    assert os.listdir(a) == ["notes"]
    with open(os.path.join(a, "notes"), "rb") as f:
        assert f.read() == b"kept"
    nst = os.stat(os.path.join(a, "notes"))
    assert (nst.st_mode, nst.st_size, nst.st_mtime_ns) == \
        (note.st_mode, note.st_size, note.st_mtime_ns)
    assert outcome(os.mkdir, os.path.join(a, "x")) == errno.EROFS
    assert os.stat(a).st_ino == st.st_ino
    m.stop()
    assert tree_state(root) == before
