"""Folder names and folder renames on real mounts, compared with what the
same operations do on a native maildir on the local filesystem: in the
maildir++ layout dot-folders are siblings (a rename takes no children
along), in the fs layout a rename moves the subtree; rename onto an
existing folder behaves as rename(2) of directories."""

import ctypes
import errno
import os

import pytest

from dboxfs_testlib import (DBOXFS, dboxctl, ls_mailboxes, mounts,
                            wtmp)  # noqa: F401

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
