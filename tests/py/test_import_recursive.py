"""dboxctl import --recursive (issue 14): a Maildir++ tree or a directory
of mbox files into the matching mailboxes, one transaction per mailbox or,
with --atomic, one for the whole tree."""

import os

import pytest

from dboxfs_testlib import (dboxctl, ls_mailboxes, ls_messages,
                            make_maildir, wtmp)  # noqa: F401

# Maildir++ folder -> (mailbox below INBOX, messages)
TREE = {
    "": ("INBOX", {"1.a.host": b"Subject: inbox\n\nin inbox\n",
                   "2.b.host": b"Subject: two\n\n" + b"x" * 5000 + b"\n"}),
    ".Sub": ("Sub", {"3.c.host": b"Subject: sub\n\nin Sub\n"}),
    ".Sub.Deeper": ("Sub/Deeper", {"4.d.host": b"Subject: d\n\ndeep\n",
                                   "5.e.host": b"Subject: e\n\r\nCRLF\r\n"}),
    ".Lists.linux": ("Lists/linux", {"6.f.host": b"Subject: l\n\nlkml\n"}),
    # modified UTF-7, as Dovecot names Maildir++ folders on disk
    ".Caf&AOk-": ("Caf\u00e9", {"7.g.host": b"Subject: c\n\ncafe\n"}),
}

MBOX1 = (b"From a@b Thu Nov 24 18:22:48 2022\nSubject: one\n\nbody\n\n"
         b"From c@d Fri Nov 25 10:00:00 2022\nSubject: two\n\nlast\n\n")
MBOX2 = b"From e@f Sat Nov 26 10:00:00 2022\nSubject: three\n\nx\n\n"


def make_tree(root):
    for folder, (_, msgs) in TREE.items():
        make_maildir(os.path.join(root, folder) if folder else root, msgs)
    return root


def contents(store, mailbox):
    return sorted(dboxctl("cat", store, mailbox, str(r["uid"])).stdout
                  for r in ls_messages(store, mailbox))


def new_store(wtmp, fmt):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    return store


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
@pytest.mark.parametrize("atomic", [False, True])
def test_maildirpp_tree(wtmp, fmt, atomic):
    src = make_tree(os.path.join(wtmp, "md"))
    store = new_store(wtmp, fmt)
    extra = ["--atomic"] if atomic else []
    p = dboxctl("import", "--recursive", *extra, store, "INBOX", src)
    assert b"7 messages imported into 5 mailboxes" in p.stdout
    assert b"Maildir++ subfolder" not in p.stderr
    boxes = ls_mailboxes(store)
    assert sorted(boxes) == sorted(m for m, _ in TREE.values())
    for mailbox, msgs in TREE.values():
        assert boxes[mailbox]["messages"] == len(msgs), mailbox
        assert contents(store, mailbox) == sorted(msgs.values()), mailbox
    # below another mailbox the tree keeps its root's name
    dboxctl("import", store, "--recursive", "Old", src)
    for mailbox, msgs in TREE.values():
        name = "Old" if mailbox == "INBOX" else "Old/" + mailbox
        assert contents(store, name) == sorted(msgs.values()), name


def test_without_recursive_subfolders_still_named(wtmp):
    src = make_tree(os.path.join(wtmp, "md"))
    store = new_store(wtmp, "mdbox")
    p = dboxctl("import", store, "INBOX", src)
    assert b".Sub.Deeper: a Maildir++ subfolder" in p.stderr
    assert sorted(ls_mailboxes(store)) == ["INBOX"]


def make_mbox_dir(root, bad=False):
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(root, "a-first"), "wb") as f:
        f.write(MBOX1)
    with open(os.path.join(root, "sub", "b-second"), "wb") as f:
        f.write(MBOX2)
    if bad:
        # sorted after the good ones: fails partway
        with open(os.path.join(root, "z-bad"), "wb") as f:
            f.write(b"not an mbox\n")
    return root


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_mbox_directory(wtmp, fmt):
    src = make_mbox_dir(os.path.join(wtmp, "mb"))
    store = new_store(wtmp, fmt)
    p = dboxctl("import", "--recursive", store, "Mail", src)
    assert b"3 messages imported into 2 mailboxes" in p.stdout
    assert ls_mailboxes(store)["Mail/a-first"]["messages"] == 2
    assert contents(store, "Mail/sub/b-second") == [MBOX2[MBOX2.index(
        b"\n") + 1:-1]]


def test_failure_partway(wtmp):
    src = make_mbox_dir(os.path.join(wtmp, "mb"), bad=True)
    store = new_store(wtmp, "mdbox")
    before = ls_mailboxes(store)
    p = dboxctl("import", "--recursive", "--atomic", store, "Mail", src,
                check=False)
    assert p.returncode == 1
    assert b"z-bad: not an mbox file" in p.stderr
    assert ls_mailboxes(store) == before
    p = dboxctl("import", "--recursive", store, "Mail", src, check=False)
    assert p.returncode == 1
    assert b"z-bad: not an mbox file" in p.stderr
    assert (b"2 of 3 mailboxes imported before the failure: Mail/a-first, "
            b"Mail/sub/b-second") in p.stderr
    boxes = ls_mailboxes(store)
    assert sorted(boxes) == sorted(before) + ["Mail/a-first",
                                              "Mail/sub/b-second"]
    assert boxes["Mail/a-first"]["messages"] == 2


def test_option_errors(wtmp):
    store = new_store(wtmp, "mdbox")
    src = make_mbox_dir(os.path.join(wtmp, "mb"))
    p = dboxctl("import", "--atomic", store, "Mail", src, check=False)
    assert p.returncode == 2 and b"--atomic needs --recursive" in p.stderr
    p = dboxctl("import", "--recurse", store, "Mail", src, check=False)
    assert p.returncode == 2
    assert sorted(ls_mailboxes(store)) == ["INBOX"]


def test_bad_trees_refused_before_the_store(wtmp):
    store = new_store(wtmp, "mdbox")
    loop = make_mbox_dir(os.path.join(wtmp, "loop"))
    os.symlink("..", os.path.join(loop, "sub", "up"))
    p = dboxctl("import", "--recursive", store, "Mail", loop, check=False)
    assert p.returncode == 1 and b"nested too deep" in p.stderr
    fifo = make_mbox_dir(os.path.join(wtmp, "fifo"))
    os.mkfifo(os.path.join(fifo, "pipe"))
    p = dboxctl("import", "--recursive", store, "Mail", fifo, check=False)
    assert p.returncode == 1
    assert b"pipe: neither a directory nor an mbox file" in p.stderr
    assert sorted(ls_mailboxes(store)) == ["INBOX"]
