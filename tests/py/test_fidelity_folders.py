"""Folder names and folder renames on real mounts, compared with what the
same operations do on a native maildir on the local filesystem: in the
maildir++ layout dot-folders are siblings (a rename takes no children
along), in the fs layout a rename moves the subtree; rename onto an
existing folder behaves as rename(2) of directories; names a layout cannot
show (cur/new/tmp in the fs layout, non-canonical %-escapes and names
beyond NAME_MAX in maildir++) are refused and never shown cut."""

import ctypes
import errno
import os
import time

import pytest

from dboxfs_testlib import (DBOXFS, dboxctl, ls_mailboxes, mounts,
                            needs_dovecot, wait_for, wtmp)  # noqa: F401
from test_dovecot_view import live_dovecot  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")

FORMATS = ["sdbox", "mdbox"]
LAYOUTS = ["maildir++", "fs"]
RENAME_NOREPLACE = 1
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def new_store(wtmp, fmt):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    return store


def mount(mounts, wtmp, fmt, layout):
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "layout=" + layout)
    return store, mnt, m


def folder(layout, *parts):
    """Relative path of the folder of mailbox parts in a layout."""
    if layout == "fs":
        return os.path.join(*parts)
    return "." + ".".join(parts)


def rename_noreplace(a, b):
    if _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b),
                       RENAME_NOREPLACE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def outcome(fn, *args):
    """0, or the errno fn raised."""
    try:
        fn(*args)
        return 0
    except OSError as e:
        return e.errno


def maildir(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def deliver(path, name, body=b"Subject: x\n\nx\n"):
    tmp = os.path.join(path, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(body)
    os.rename(tmp, os.path.join(path, "new", name))


def tree(root):
    """Every directory and file below root, relative, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        out += [os.path.normpath(os.path.join(rel, n)) + "/" for n in dirs]
        out += [os.path.normpath(os.path.join(rel, n)) for n in files]
    return sorted(out)


def run_on_both(wtmp, mnt, layout, scenario):
    """Runs scenario(base, layout) -> trace on a native directory and on
    the mount; asserts the traces and the resulting trees are the same."""
    native = os.path.join(wtmp, "native")
    os.mkdir(native)
    if layout == "maildir++":
        maildir(native)     # the mount's root is INBOX
    else:
        maildir(os.path.join(native, "INBOX"))
    want = scenario(native, layout)
    got = scenario(mnt, layout)
    assert got == want
    assert tree(mnt) == tree(native)
    return got


# -------------------------------------------------- 3. rename of folders

def rename_with_child(base, layout):
    p = lambda *parts: os.path.join(base, folder(layout, *parts))  # noqa
    for parts in (("A",), ("A", "Child"), ("A", "Child", "Grand")):
        maildir(p(*parts))
    deliver(p("A", "Child"), "child")
    deliver(p("A", "Child", "Grand"), "grand")
    trace = [outcome(os.rename, p("A", "Child"), p("A", "Renamed")),
             os.path.isdir(p("A", "Child", "Grand")),
             os.path.isdir(p("A", "Renamed", "Grand"))]
    trace.append(outcome(os.rename, p("A", "Child", "Grand"),
                         p("A", "Renamed", "Grand")))
    # below itself: a sibling in maildir++, EINVAL for a directory
    trace.append(outcome(os.rename, p("A"), p("A", "Renamed", "A")))
    return trace


@pytest.mark.parametrize("fmt", FORMATS)
def test_pp_rename_leaves_dot_children(wtmp, mounts, fmt):
    """mv .A.Child .A.Renamed renames that one mailbox; .A.Child.Grand
    stays (a gap in the hierarchy, as Dovecot allows) and its own rename
    works next."""
    store, mnt, m = mount(mounts, wtmp, fmt, "maildir++")
    trace = run_on_both(wtmp, mnt, "maildir++", rename_with_child)
    assert trace == [0, True, False, 0, 0]
    m.stop()
    boxes = ls_mailboxes(store)
    assert sorted(boxes) == ["A/Renamed", "A/Renamed/A", "A/Renamed/Grand",
                             "INBOX"]
    assert boxes["A/Renamed"]["messages"] == 1
    assert boxes["A/Renamed/Grand"]["messages"] == 1
    assert dboxctl("check", store).returncode == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_pp_rename_leaves_gap_in_store(wtmp, mounts, fmt):
    """After the first rename alone the store holds A/Child/Grand below a
    parent that is no mailbox; remount shows it, with its message."""
    store, mnt, m = mount(mounts, wtmp, fmt, "maildir++")
    for parts in (("A", "Child"), ("A", "Child", "Grand")):
        maildir(os.path.join(mnt, folder("maildir++", *parts)))
    deliver(os.path.join(mnt, ".A.Child.Grand"), "grand")
    os.rename(os.path.join(mnt, ".A.Child"), os.path.join(mnt, ".A.New"))
    m.stop()
    assert sorted(ls_mailboxes(store)) == ["A/Child/Grand", "A/New",
                                           "INBOX"]
    assert dboxctl("check", store).returncode == 0
    m = mounts(store, mnt)
    assert sorted(n for n in os.listdir(mnt) if n.startswith(".")) == \
        [".A.Child.Grand", ".A.New"]
    assert os.listdir(os.path.join(mnt, ".A.Child.Grand/new")) == ["grand"]
    m.stop()
    m = mounts(store, mnt, "layout=fs")
    assert sorted(os.listdir(os.path.join(mnt, "A"))) == ["Child", "New"]
    assert os.listdir(os.path.join(mnt, "A/Child/Grand/new")) == ["grand"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fs_rename_moves_subtree(wtmp, mounts, fmt):
    store, mnt, m = mount(mounts, wtmp, fmt, "fs")
    trace = run_on_both(wtmp, mnt, "fs", rename_with_child)
    assert trace == [0, False, True, errno.ENOENT, errno.EINVAL]
    m.stop()
    assert sorted(ls_mailboxes(store)) == ["A", "A/Renamed",
                                           "A/Renamed/Grand", "INBOX"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fs_rename_parent_that_is_no_mailbox(wtmp, mounts, fmt):
    """A store with P/Q but no P (made in maildir++ or by Dovecot): in the
    fs layout P is a directory and moves with its children."""
    store, mnt, m = mount(mounts, wtmp, fmt, "maildir++")
    maildir(os.path.join(mnt, ".P.Q"))
    deliver(os.path.join(mnt, ".P.Q"), "q")
    os.mkdir(os.path.join(mnt, ".Y"))
    m.stop()
    m = mounts(store, mnt, "layout=fs")
    assert outcome(os.rename, os.path.join(mnt, "Y"),
                   os.path.join(mnt, "P")) == errno.ENOTEMPTY
    assert outcome(rename_noreplace, os.path.join(mnt, "Y"),
                   os.path.join(mnt, "P")) == errno.EEXIST
    assert outcome(os.rename, os.path.join(mnt, "P"),
                   os.path.join(mnt, "P/Q/R")) == errno.EINVAL
    os.rename(os.path.join(mnt, "P"), os.path.join(mnt, "Z"))
    assert os.listdir(os.path.join(mnt, "Z/Q/new")) == ["q"]
    assert not os.path.exists(os.path.join(mnt, "P"))
    m.stop()
    assert sorted(ls_mailboxes(store)) == ["INBOX", "Y", "Z/Q"]
    assert dboxctl("check", store).returncode == 0


def rename_onto_existing(base, layout):
    p = lambda *parts: os.path.join(base, folder(layout, *parts))  # noqa
    trace = []
    for n in ("X", "Y", "Z", "W", "T"):
        os.mkdir(p(n))
    os.mkdir(os.path.join(p("Z"), "cur"))
    maildir(p("S"))
    deliver(p("S"), "s")
    trace.append(outcome(os.rename, p("X"), p("Y")))       # empty: replaced
    trace.append(os.path.exists(p("X")))
    trace.append(outcome(os.rename, p("Y"), p("Z")))       # ENOTEMPTY
    trace.append(outcome(rename_noreplace, p("W"), p("Z")))  # EEXIST
    trace.append(outcome(rename_noreplace, p("W"), p("V")))  # 0
    trace.append(outcome(os.rename, p("V"), p("V")))       # itself: 0
    trace.append(outcome(os.rename, p("S"), p("T")))       # with messages
    trace.append(outcome(os.rename, p("T"), p("Q")))
    trace.append(outcome(os.rename, p("Q"), p("Y")))       # empty Y again
    if layout == "fs":
        maildir(p("P", "C"))
        trace.append(outcome(os.rename, p("Y"), p("P")))   # child: ENOTEMPTY
    return trace


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_rename_onto_existing_folder(wtmp, mounts, fmt, layout):
    """As rename(2) of directories: onto an empty folder it replaces it,
    onto a non-empty one ENOTEMPTY; RENAME_NOREPLACE gives EEXIST."""
    store, mnt, m = mount(mounts, wtmp, fmt, layout)
    trace = run_on_both(wtmp, mnt, layout, rename_onto_existing)
    assert trace[:9] == [0, False, errno.ENOTEMPTY, errno.EEXIST, 0, 0, 0,
                         0, 0]
    m.stop()
    boxes = ls_mailboxes(store)
    assert boxes["Y"]["messages"] == 1
    assert "X" not in boxes and "S" not in boxes and "T" not in boxes
    assert dboxctl("check", store).returncode == 0


# ---------------------------------------------- 11a. cur/new/tmp as names

@pytest.mark.parametrize("fmt", FORMATS)
def test_fs_layout_refuses_cur_new_tmp_names(wtmp, mounts, fmt):
    store, mnt, m = mount(mounts, wtmp, fmt, "fs")
    os.mkdir(os.path.join(mnt, "A"))
    os.mkdir(os.path.join(mnt, "X"))
    before = ls_mailboxes(store)
    for sub in ("cur", "new", "tmp"):
        # a mailbox A/cur would be A's cur/; cur at the top would make
        # the root look like a maildir
        assert outcome(os.rename, os.path.join(mnt, "X"),
                       os.path.join(mnt, "A", sub)) == errno.EINVAL
        assert outcome(os.mkdir, os.path.join(mnt, sub)) == errno.EINVAL
        assert outcome(os.rename, os.path.join(mnt, "X"),
                       os.path.join(mnt, sub)) == errno.EINVAL
    assert ls_mailboxes(store) == before
    assert os.listdir(os.path.join(mnt, "A")) == []
    os.mkdir(os.path.join(mnt, "A/cur"))          # A's own cur/
    assert os.listdir(os.path.join(mnt, "A")) == ["cur"]
    assert os.listdir(os.path.join(mnt, "X")) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_fs_layout_hides_stored_cur_mailbox(wtmp, mounts, fmt):
    """A store that has a mailbox B/cur (made in the maildir++ layout,
    where .B.cur is a fine name, or by Dovecot): the fs layout does not
    show it (B's cur/ stays B's cur/) and logs it once."""
    store, mnt, m = mount(mounts, wtmp, fmt, "maildir++")
    maildir(os.path.join(mnt, ".B"))
    deliver(os.path.join(mnt, ".B"), "b")
    maildir(os.path.join(mnt, ".B.cur"))
    deliver(os.path.join(mnt, ".B.cur"), "hidden")
    maildir(os.path.join(mnt, ".new"))
    maildir(os.path.join(mnt, ".C.tmp.D"))
    m.stop()
    assert {"B/cur", "new", "C/tmp/D"} <= set(ls_mailboxes(store))
    m = mounts(store, mnt, "layout=fs")
    for _ in range(2):
        assert sorted(os.listdir(mnt)) == ["B", "INBOX"]
        assert sorted(os.listdir(os.path.join(mnt, "B"))) == \
            ["cur", "new", "tmp"]
        assert os.listdir(os.path.join(mnt, "B/new")) == ["b"]
        assert os.listdir(os.path.join(mnt, "B/cur")) == []
        assert os.stat(os.path.join(mnt, "B")).st_nlink == 5
        assert not os.path.exists(os.path.join(mnt, "C"))
    m.stop()
    log = m.output()
    for name in ("B/cur", "new", "C/tmp/D"):
        assert log.count("mailbox %s is not shown" % name) == 1, log


# -------------------------------------------- 11b. one spelling per name

@pytest.mark.parametrize("fmt", FORMATS)
def test_pp_escapes_have_one_spelling(wtmp, mounts, fmt):
    store, mnt, m = mount(mounts, wtmp, fmt, "maildir++")
    root = lambda n: os.path.join(mnt, n)  # noqa: E731
    # non-canonical or broken escapes: refused, nothing made
    for bad in (".lo%2ecase", ".a%41", ".a%", ".a%2", ".a%2f", ".p%25%"):
        assert outcome(os.mkdir, root(bad)) == errno.EINVAL, bad
    assert sorted(ls_mailboxes(store)) == ["INBOX"]
    # the canonical spelling round-trips through mkdir, readdir, lookup
    os.mkdir(root(".lo%2Ecase"))
    os.mkdir(root(".p%25c"))
    os.mkdir(root(".a%2Eb.c%25%2E"))
    assert sorted(n for n in os.listdir(mnt) if n.startswith(".")) == \
        [".a%2Eb.c%25%2E", ".lo%2Ecase", ".p%25c"]
    for n in os.listdir(mnt):
        if n.startswith("."):
            maildir(root(n))
            assert sorted(os.listdir(root(n))) == ["cur", "new", "tmp"]
    assert not os.path.exists(root(".lo%2ecase"))
    assert {"lo.case", "p%c", "a.b/c%."} <= set(ls_mailboxes(store))
    # rename: the same rule for the new name
    assert outcome(os.rename, root(".lo%2Ecase"), root(".x%2ey")) == \
        errno.EINVAL
    os.rename(root(".lo%2Ecase"), root(".x%2Ey"))
    assert os.path.isdir(root(".x%2Ey/cur"))
    m.stop()
    assert "x.y" in ls_mailboxes(store) and "lo.case" not in \
        ls_mailboxes(store)
    # a name with '.' or '%' made in the fs layout shows escaped
    m = mounts(store, mnt, "layout=fs")
    os.mkdir(os.path.join(mnt, "50%.off"))
    m.stop()
    m = mounts(store, mnt)
    assert os.path.isdir(root(".50%25%2Eoff"))


# ------------------------------------------------------------ 11c. INBOX

@pytest.mark.parametrize("fmt", FORMATS)
def test_fs_layout_inbox_is_not_renamed(wtmp, mounts, fmt):
    store, mnt, m = mount(mounts, wtmp, fmt, "fs")
    deliver(os.path.join(mnt, "INBOX"), "i")
    os.mkdir(os.path.join(mnt, "X"))
    os.mkdir(os.path.join(mnt, "E"))
    before = ls_mailboxes(store)
    inbox = os.path.join(mnt, "INBOX")
    assert outcome(os.rename, inbox, os.path.join(mnt, "Y")) == errno.EPERM
    assert outcome(os.rename, inbox, os.path.join(mnt, "E")) == errno.EPERM
    assert outcome(os.rename, inbox, os.path.join(mnt, "X/In")) == \
        errno.EPERM
    # emptied INBOX is not replaced or removed either
    os.unlink(os.path.join(inbox, "new/i"))
    for sub in ("cur", "new", "tmp"):
        os.rmdir(os.path.join(inbox, sub))
    assert outcome(os.rename, os.path.join(mnt, "X"), inbox) == errno.EPERM
    assert outcome(os.rmdir, inbox) == errno.EPERM
    assert sorted(ls_mailboxes(store)) == sorted(before)
    os.rename(os.path.join(mnt, "X"), os.path.join(mnt, "INBOX/X"))
    assert "INBOX/X" in ls_mailboxes(store)


# ------------------------------------------------- 11d. names too long

@pytest.mark.parametrize("fmt", FORMATS)
def test_pp_names_near_name_max(wtmp, mounts, fmt):
    store, mnt, m = mount(mounts, wtmp, fmt, "maildir++")
    root = lambda n: os.path.join(mnt, n)  # noqa: E731
    longest = "." + "a" * 254
    os.mkdir(root(longest))
    maildir(root(longest))
    assert longest in os.listdir(mnt)
    assert os.listdir(root(longest + "/new")) == []
    escaped = "." + "b" * 251 + "%2E"           # 255 bytes, "bbb…b."
    os.mkdir(root(escaped))
    assert escaped in os.listdir(mnt)
    os.mkdir(root(".S"))
    before = ls_mailboxes(store)
    for bad in ("." + "a" * 255, "." + "b" * 252 + "%2E",
                "." + "c" * 200 + "." + "d" * 200):
        assert outcome(os.mkdir, root(bad)) == errno.ENAMETOOLONG
        assert outcome(os.rename, root(".S"), root(bad)) == \
            errno.ENAMETOOLONG
    assert ls_mailboxes(store) == before
    assert os.path.isdir(root(".S"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_fs_layout_names_near_name_max(wtmp, mounts, fmt):
    store, mnt, m = mount(mounts, wtmp, fmt, "fs")
    os.mkdir(os.path.join(mnt, "a" * 255))
    assert outcome(os.mkdir, os.path.join(mnt, "a" * 256)) == \
        errno.ENAMETOOLONG
    assert outcome(os.rename, os.path.join(mnt, "a" * 255),
                   os.path.join(mnt, "b" * 256)) == errno.ENAMETOOLONG
    assert os.path.isdir(os.path.join(mnt, "a" * 255))


@pytest.mark.parametrize("fmt", FORMATS)
def test_pp_long_names_are_not_cut(wtmp, mounts, fmt):
    """Mailboxes whose maildir++ name would be longer than NAME_MAX (made
    in the fs layout, where every part fits) are not shown cut, so two of
    them never collide on one name; they are logged once."""
    store, mnt, m = mount(mounts, wtmp, fmt, "fs")
    deep = os.path.join(mnt, "x" + "." * 254, "y" + "." * 254)
    for leaf in ("A", "B"):
        os.makedirs(os.path.join(deep, leaf))
    os.mkdir(os.path.join(mnt, "x" * 250))
    os.mkdir(os.path.join(mnt, "ok"))
    m.stop()
    m = mounts(store, mnt)
    for _ in range(2):
        names = [n for n in os.listdir(mnt) if n.startswith(".")]
        assert sorted(names) == [".ok", "." + "x" * 250]
    m.stop()
    log = m.output()
    for leaf in ("A", "B"):
        name = "x" + "." * 254 + "/" + "y" + "." * 254 + "/" + leaf
        assert log.count("mailbox %s is not shown" % name) == 1, log


@pytest.mark.parametrize("ro", [False, True], ids=["rw", "ro"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_folder_made_by_another_program_moves_parent_mtime(wtmp, mounts,
                                                           layout, ro):
    """A folder another program makes while the store is mounted (here
    dboxctl import; Dovecot alike) is a new entry of its parent
    directory, whose mtime moves, as on a local filesystem, so clients
    that poll mtimes notice (maildir-view.md section 6).  Only the
    parent's: the root stays in the fs layout, where the new folder is
    A/N.  A read-only mount writes nothing for it."""
    store = new_store(wtmp, "sdbox")
    empty = os.path.join(wtmp, "empty")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(empty, sub))
    dboxctl("import", store, "A", empty)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "layout=" + layout, *(["ro"] if ro else []))
    if layout == "fs":
        parent, new, other = os.path.join(mnt, "A"), "A/N", mnt
    else:
        parent, new, other = mnt, "N", None
    before = os.stat(parent).st_mtime_ns
    other_before = os.stat(other).st_mtime_ns if other else None
    wait_for(lambda: time.time_ns() - before > 1_100_000_000, timeout=5,
             what="a second to pass")
    ctl = os.listdir(os.path.join(store, "dboxfs"))
    t0 = time.time_ns()
    dboxctl("import", store, new, empty)
    wait_for(lambda: os.stat(parent).st_mtime_ns != before, timeout=5,
             what="the parent's mtime to move")
    t1 = time.time_ns()
    assert t0 - 50_000_000 <= os.stat(parent).st_mtime_ns <= t1
    name = "N" if layout == "fs" else ".N"
    assert name in os.listdir(parent)
    if other:
        assert os.stat(other).st_mtime_ns == other_before
    if ro:
        assert os.listdir(os.path.join(store, "dboxfs")) == ctl


@pytest.mark.parametrize("layout", LAYOUTS)
def test_other_program_right_after_own_change_moves_parent_mtime(
        wtmp, mounts, layout):
    """The follower tells the view's own folder changes by the entry
    they change, not by a while after them: a folder another program
    makes in the same directory right after the mount made one (within
    the 2 s that used to be taken for the view's own) moves the
    directory's mtime too, and the view's own change moves it once."""
    store = new_store(wtmp, "sdbox")
    empty = os.path.join(wtmp, "empty")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(empty, sub))
    dboxctl("import", store, "A", empty)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "layout=" + layout)
    if layout == "fs":
        parent, mine, new = os.path.join(mnt, "A"), "X", "A/N"
    else:
        parent, mine, new = mnt, ".X", "N"
    os.mkdir(os.path.join(parent, mine))
    own = os.stat(parent).st_mtime_ns
    start = time.monotonic()
    dboxctl("import", store, new, empty)
    assert time.monotonic() - start < 2.0, "too slow to tell"
    wait_for(lambda: os.stat(parent).st_mtime_ns > own, timeout=5,
             what="the parent's mtime to move")
    moved = os.stat(parent).st_mtime_ns
    t = time.monotonic()
    wait_for(lambda: time.monotonic() - t > 0.75, timeout=5,
             what="the follower to look again")
    assert os.stat(parent).st_mtime_ns == moved
    assert ("N" if layout == "fs" else ".N") in os.listdir(parent)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_folder_made_while_unmounted_moves_parent_mtime(wtmp, mounts,
                                                        layout):
    """A folder another program makes while nothing is mounted moves its
    parent's mtime at the next mount, as it moved it on disk (to the
    mount's time: the store keeps no time of the change); the mount's own
    changes just before its unmount move nothing at the next."""
    store = new_store(wtmp, "sdbox")
    empty = os.path.join(wtmp, "empty")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(empty, sub))
    dboxctl("import", store, "A", empty)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "layout=" + layout)
    if layout == "fs":
        parent, mine, new, other = os.path.join(mnt, "A"), "X", "A/N", mnt
    else:
        parent, mine, new, other = mnt, ".X", "N", None
    os.mkdir(os.path.join(parent, mine))
    before = os.stat(parent).st_mtime_ns
    other_before = os.stat(other).st_mtime_ns if other else None
    m.stop()
    m = mounts(store, mnt, "layout=" + layout)
    assert os.stat(parent).st_mtime_ns == before
    m.stop()
    wait_for(lambda: time.time_ns() - before > 1_100_000_000, timeout=5,
             what="a second to pass")
    t0 = time.time_ns()
    dboxctl("import", store, new, empty)
    m = mounts(store, mnt, "layout=" + layout)
    wait_for(lambda: os.stat(parent).st_mtime_ns >= t0, timeout=5,
             what="the parent's mtime to move")
    assert ("N" if layout == "fs" else ".N") in os.listdir(parent)
    if other:
        assert os.stat(other).st_mtime_ns == other_before
    moved = os.stat(parent).st_mtime_ns
    m.stop()
    m = mounts(store, mnt, "layout=" + layout)
    assert os.stat(parent).st_mtime_ns == moved


@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecot_folder_moves_root_mtime(live_dovecot, mounts, fmt):
    """A folder a running Dovecot makes or deletes under a read-only
    mount of its tree is an entry of the root that comes or goes: the
    root's mtime moves to that moment, each time (it showed the newest
    folder's creation in whole seconds, and went back at a delete)."""
    stores, dove = live_dovecot
    mnt = os.path.join(stores.top, "mt-" + fmt)
    mounts(stores.root(fmt), mnt,
           "index=" + os.path.join(stores.top, "mt-%s.sqlite" % fmt))
    for what in ("mailbox create", "mailbox delete"):
        before = os.stat(mnt).st_mtime_ns
        wait_for(lambda: time.time_ns() - before > 1_100_000_000,
                 timeout=5, what="a second to pass")
        t0 = time.time_ns()
        dove.doveadm(fmt, what, "Moved")
        wait_for(lambda: os.stat(mnt).st_mtime_ns >= t0 - 50_000_000,
                 timeout=5, what="the root's mtime to move (%s)" % what)
        assert (".Moved" in os.listdir(mnt)) == (what == "mailbox create")
