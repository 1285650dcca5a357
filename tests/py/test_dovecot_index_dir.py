"""A Dovecot tree whose mail_location has INDEX=DIR (Dovecot's index files
outside the tree) mounted read-only with -o dovecot_index=DIR: flags,
keywords and folders equal what doveadm reports, and Dovecot's later
changes show on the mount.  A takeover mount with it is refused."""

import os
import subprocess

import pytest

from dboxfs_testlib import (DBOXCTL, DBOXFS, Doveadm, mounts, needs_dovecot,  # noqa: F401
                            wait_for, wtmp)
from test_dovecot_view import LETTERS, doveadm_flags, folder_of, view_of

pytestmark = [needs_dovecot,
              pytest.mark.skipif(not os.path.exists(DBOXFS),
                                 reason="dboxfs not built")]


class IndexDoveadm(Doveadm):
    """doveadm on a store whose mail_location is ROOT:INDEX=IDX."""

    def __init__(self, workdir, root, fmt, index_dir):
        super().__init__(workdir, root, fmt)
        os.makedirs(index_dir)
        os.chown(index_dir, self.uid, self.gid)
        # Doveadm builds mail_location as FMT:ROOT
        self.root = "%s:INDEX=%s" % (root, index_dir)


def message(n):
    return ("From: a@example.org\nSubject: m%d\nMessage-ID: <m%d@x>\n\n"
            "body %d\n" % (n, n, n)).encode()


def make_store(top, fmt):
    """A store with flags, keywords and (by a move) messages in other
    folders than they were saved to, all set by doveadm."""
    root = os.path.join(top, fmt)
    idx = os.path.join(top, "idx-" + fmt)
    os.makedirs(root)
    da = IndexDoveadm(os.path.join(top, "da"), root, fmt, idx)
    da("mailbox", "create", "Sub/Deep", "Other")
    for n in range(1, 5):
        da("save", "-m", "INBOX", input=message(n))
    for n in range(5, 7):
        da("save", "-m", "Other", input=message(n))
    da("flags", "add", "\\Seen $Label1", "mailbox", "INBOX", "uid", "1:2")
    da("flags", "add", "\\Flagged Junk", "mailbox", "INBOX", "uid", "2")
    da("flags", "add", "\\Answered $Label2", "mailbox", "Other", "uid", "1")
    da("move", "Sub/Deep", "mailbox", "INBOX", "uid", "3")
    da("move", "INBOX", "mailbox", "Other", "uid", "2")
    # the index files are where INDEX= says, none in the tree
    for d, _, files in os.walk(root):
        assert not [f for f in files if f.startswith("dovecot.") and
                    "index" in f], d
    assert os.path.exists(os.path.join(idx, "mailboxes", "INBOX",
                                       "dovecot.index.log"))
    return root, idx, da


def expected(da):
    return doveadm_flags(da.fetch("uid flags mailbox guid", "all"))


def assert_view(mnt, want):
    for box, msgs in want.items():
        assert view_of(mnt, box) == msgs, box
    # no message in a folder Dovecot does not have it in
    shown = sum(len(os.listdir(os.path.join(d, s)))
                for d in [mnt] + [os.path.join(mnt, e) for e in os.listdir(mnt)
                                  if e.startswith(".")]
                for s in ("cur", "new") if os.path.isdir(os.path.join(d, s)))
    assert shown == sum(len(m) for m in want.values())


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_index_dir_flags_keywords_folders_as_doveadm(wtmp, mounts, fmt):
    root, idx, da = make_store(wtmp, fmt)
    want = expected(da)
    # what the test is about: flags, keywords and moved messages
    assert want["INBOX"] and any("$Label1" in f for f in want["INBOX"].values())
    assert len(want["Sub/Deep"]) == 1 and len(want["Other"]) == 1
    mnt = os.path.join(wtmp, "mnt")
    mounts(root, mnt, "ro", "dovecot_index=" + idx,
           "index=" + os.path.join(wtmp, "v.sqlite"))
    assert_view(mnt, want)


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_index_dir_follows_dovecots_changes(wtmp, mounts, fmt):
    """Dovecot writes its logs in DIR: the mount follows them there."""
    root, idx, da = make_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    mounts(root, mnt, "ro", "dovecot_index=" + idx,
           "index=" + os.path.join(wtmp, "v.sqlite"))
    # only Dovecot's log in DIR changes (nothing in the tree)
    da("flags", "add", "\\Draft $Later", "mailbox", "INBOX", "uid", "4")
    want = expected(da)

    def same():
        try:
            return all(view_of(mnt, b) == m for b, m in want.items())
        except FileNotFoundError:
            return False
    wait_for(same, timeout=10, what="Dovecot's changes on the mount")
    assert_view(mnt, want)


def test_index_dir_refused_with_takeover(wtmp, mounts):
    root, idx, _ = make_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    os.makedirs(mnt)
    p = subprocess.run([DBOXFS, root, mnt, "-f", "-o", "takeover",
                        "-o", "dovecot_index=" + idx,
                        "-o", "index=" + os.path.join(wtmp, "t.sqlite")],
                       capture_output=True, timeout=60)
    assert p.returncode != 0
    assert b"read-only" in p.stderr, p.stderr
    # nothing written into the tree
    assert not os.path.exists(os.path.join(root, "dboxfs"))


@pytest.mark.parametrize("bad", ["missing", "file"])
def test_index_dir_bad_path(wtmp, mounts, bad):
    root, idx, _ = make_store(wtmp, "sdbox")
    path = os.path.join(wtmp, "nowhere")
    if bad == "file":
        path = os.path.join(wtmp, "afile")
        open(path, "w").close()
    mnt = os.path.join(wtmp, "mnt")
    os.makedirs(mnt)
    p = subprocess.run([DBOXFS, root, mnt, "-f", "-o", "ro",
                        "-o", "dovecot_index=" + path,
                        "-o", "index=" + os.path.join(wtmp, "b.sqlite")],
                       capture_output=True, timeout=60)
    assert p.returncode != 0
    assert b"Dovecot index directory" in p.stderr, p.stderr


def test_without_the_option_as_before(wtmp, mounts):
    """Without dovecot_index an INDEX= tree shows its messages from the
    dbox files alone (no flags), as before."""
    root, idx, da = make_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    mounts(root, mnt, "ro", "index=" + os.path.join(wtmp, "n.sqlite"))
    inbox = view_of(mnt, "INBOX")
    assert inbox and all(f == set() for f in inbox.values())
    assert os.path.isdir(folder_of(mnt, "Sub/Deep"))


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dboxctl_dovecot_index(wtmp, fmt):
    """dboxctl --dovecot-index=DIR ls: the flags letters doveadm has."""
    root, idx, da = make_store(wtmp, fmt)
    want = expected(da)
    out = subprocess.run([DBOXCTL, "--dovecot-index=" + idx,
                          "--index=" + os.path.join(wtmp, "c.sqlite"),
                          "ls", root, "INBOX"], capture_output=True,
                         check=True, timeout=60).stdout.decode()
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(want["INBOX"])
    # ls: uid, flags letters, size, ..., guid
    shown = {r[4]: r[1] for r in rows}
    for guid, flags in want["INBOX"].items():
        letters = {c for c in shown[guid] if c.isupper()}
        assert letters == {k for k, v in LETTERS.items() if v in flags}, guid
        assert ("a" in shown[guid]) == ("$Label1" in flags), guid
