"""What the store promises across its life and Dovecot's (issue 10):

- an mdbox message expunged through the mount stays expunged when the store
  is handed to Dovecot (`doveadm force-resync` rebuilds from the m.N files
  and restores every record it finds), also when the daemon was killed;
- `dboxctl check` finds nothing wrong in a healthy Dovecot-written store,
  and opening a store never removes or cuts an m.N that Dovecot wrote;
- a body that merely starts with a compression magic is the message itself,
  before and after `dboxctl reindex`; a really compressed Dovecot store
  still reads after it;
- an index kept outside a Dovecot tree describes that tree only: a tree
  made anew at the same path, or another tree given the same index, is
  indexed anew (names, GUIDs and bytes all from the tree at hand)."""

import fcntl
import gzip
import os
import shutil

import pytest

from dboxfs_testlib import (DBOXFS, Doveadm, dboxctl, have_dovecot,
                            ls_messages, make_maildir, mounts, needs_dovecot,
                            tree_state, wait_for, dovecot_tree,
                            wtmp)  # noqa: F401  (fixtures)


needs_dboxfs = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                  reason="dboxfs not built (no libfuse3)")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def deliver(mnt, name, data):
    tmp = os.path.join(mnt, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(mnt, "new", name))


def message(i, tag="m"):
    return b"Subject: %s %d\nFrom: a@example.org\n\nbody of %s %d\n" % (
        tag.encode(), i, tag.encode(), i)


# ------------------------------------------- item 6: expunge is for good

def twelve_delivered_ten_expunged(wtmp, mounts, *opts, how="unlink"):
    """A fresh mdbox store, mounted: 12 deliveries, the first 10 expunged
    (how: "unlink"; "rename": msg10 renamed onto msg9, which it replaces;
    "deliver": msg10 unlinked and a delivery of its bytes as msg9, which
    it replaces); msg10's and msg11's bytes are left."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, *opts)
    for i in range(12):
        deliver(mnt, "msg%d" % i, message(i))
    for i in range(10 if how == "unlink" else 9):
        os.unlink(os.path.join(mnt, "new", "msg%d" % i))
    if how == "rename":
        os.rename(os.path.join(mnt, "new", "msg10"),
                  os.path.join(mnt, "new", "msg9"))
    elif how == "deliver":
        os.unlink(os.path.join(mnt, "new", "msg10"))
        deliver(mnt, "msg9", message(10))
    return store, mnt, m


@needs_dboxfs
@needs_dovecot
@pytest.mark.parametrize("how", ["unmount", "killed"])
def test_mdbox_expunge_stays_expunged_for_dovecot(wtmp, mounts, how):
    store, mnt, m = twelve_delivered_ten_expunged(wtmp, mounts)
    assert sorted(os.listdir(os.path.join(mnt, "new"))) == ["msg10", "msg11"]
    if how == "killed":
        # the expunges are committed; the daemon dies before any purge,
        # and the next writer to open the store finishes the job
        m.kill()
        chk = dboxctl("check", store, check=False)
        assert chk.returncode == 0, chk.stdout + chk.stderr
    else:
        m.stop()
    da = Doveadm(wtmp, store, "mdbox")
    da.force_resync("INBOX")
    texts = sorted(msg["text"] for msg in da.fetch("text"))
    assert texts == [message(10), message(11)]
    # and our own rebuild from the files agrees
    dboxctl("reindex", store)
    assert len(ls_messages(store, "INBOX")) == 2


def storage_holds(store, data):
    d = os.path.join(store, "storage")
    return any(data in read(os.path.join(d, n))
               for n in os.listdir(d) if n.startswith("m."))


@needs_dboxfs
@needs_dovecot
@pytest.mark.parametrize("durable", ["fsync", "interval"])
def test_mdbox_expunge_durable_then_killed(wtmp, mounts, durable):
    """Once an expunge is durable (fsync of its directory, or the commit
    interval), its bytes are gone from the m.N files: Dovecot, handed the
    store after a kill -9 and before any other open of ours, does not
    bring it back."""
    store, mnt, m = twelve_delivered_ten_expunged(wtmp, mounts)
    if durable == "fsync":
        fd = os.open(os.path.join(mnt, "new"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    else:
        wait_for(lambda: not storage_holds(store, b"body of m 0\n"),
                 what="the commit interval's purge")
    assert not storage_holds(store, b"body of m 9\n")
    m.kill()
    da = Doveadm(wtmp, store, "mdbox")
    da.force_resync("INBOX")
    assert sorted(msg["text"] for msg in da.fetch("text")) == \
        [message(10), message(11)]


@needs_dboxfs
@needs_dovecot
@pytest.mark.parametrize("how", ["unlink", "rename", "deliver"])
def test_mdbox_expunge_with_sync_is_purged_when_it_returns(wtmp, mounts, how):
    """-o sync: every change is durable when its call returns, an expunge
    for Dovecot too: its record's bytes are gone from the m.N files when
    the unlink (or the rename or delivery onto the message) returns, not
    at the commit interval (an hour here).  Dovecot, handed the store
    after a kill -9 right then, does not bring it back."""
    store, mnt, m = twelve_delivered_ten_expunged(
        wtmp, mounts, "sync", "commit=3600", how=how)
    for i in range(10):
        assert not storage_holds(store, b"body of m %d\n" % i), i
    m.kill()
    da = Doveadm(wtmp, store, "mdbox")
    da.force_resync("INBOX")
    assert sorted(msg["text"] for msg in da.fetch("text")) == \
        [message(10), message(11)]


@needs_dboxfs
@needs_dovecot
def test_mdbox_expunge_in_a_busy_file_is_purged_once_free(wtmp, mounts):
    """An m.N that another writer holds (flock, as an appender does) cannot
    be purged at the flush; it is tried again at the next commit interval,
    not only at unmount."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for i in range(3):
        deliver(mnt, "msg%d" % i, message(i))
    m.stop()    # the daemon keeps no append file locked now
    m = mounts(store, mnt)
    files = [os.path.join(store, "storage", n)
             for n in os.listdir(os.path.join(store, "storage"))
             if n.startswith("m.")]
    held = [os.open(p, os.O_RDONLY) for p in files]
    try:
        for fd in held:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(os.path.join(mnt, "new", "msg0"))
        fd = os.open(os.path.join(mnt, "new"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        assert storage_holds(store, b"body of m 0\n")
    finally:
        for fd in held:
            os.close(fd)
    wait_for(lambda: not storage_holds(store, b"body of m 0\n"),
             what="the purge of the freed file")
    m.kill()
    da = Doveadm(wtmp, store, "mdbox")
    da.force_resync("INBOX")
    assert sorted(msg["text"] for msg in da.fetch("text")) == \
        [message(1), message(2)]


# ------------------------------- item 10 (fidelity): a move is for good

def make_folder(mnt, name):
    os.mkdir(os.path.join(mnt, name))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, name, sub))


def dovecot_mailboxes(da):
    """{text: mailbox} as Dovecot sees the store after force-resync."""
    da.force_resync()
    return {m["text"]: m["mailbox"] for m in da.fetch("mailbox text")}


@needs_dboxfs
@needs_dovecot
def test_mdbox_move_stays_moved_for_dovecot(wtmp, mounts):
    """Dovecot's rebuild puts every record none of its indexes knows into
    the mailbox its B key names: the move must rewrite B, or the message
    goes back to where it was delivered."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for i in range(5):
        deliver(mnt, "msg%d" % i, message(i))
    make_folder(mnt, ".Folder")
    make_folder(mnt, ".Lists.linux")
    os.rename(os.path.join(mnt, "new", "msg0"),
              os.path.join(mnt, ".Folder", "cur", "msg0:2,S"))
    os.rename(os.path.join(mnt, "new", "msg1"),
              os.path.join(mnt, ".Lists.linux", "new", "msg1"))
    # there and back: B names INBOX again
    os.rename(os.path.join(mnt, "new", "msg2"),
              os.path.join(mnt, ".Folder", "new", "msg2"))
    os.rename(os.path.join(mnt, ".Folder", "new", "msg2"),
              os.path.join(mnt, "cur", "msg2:2,"))
    # and on: from a folder to another
    os.rename(os.path.join(mnt, "new", "msg3"),
              os.path.join(mnt, ".Folder", "new", "msg3"))
    os.rename(os.path.join(mnt, ".Folder", "new", "msg3"),
              os.path.join(mnt, ".Lists.linux", "cur", "msg3:2,F"))
    # a purge copies the moved records elsewhere: B goes with them
    os.unlink(os.path.join(mnt, "new", "msg4"))
    dboxctl("purge", store)
    m.stop()
    want = {message(0): "Folder", message(1): "Lists/linux",
            message(2): "INBOX", message(3): "Lists/linux"}
    assert dovecot_mailboxes(Doveadm(wtmp, store, "mdbox")) == want
    # our own rebuild from the files agrees
    dboxctl("reindex", store)
    assert len(ls_messages(store, "Folder")) == 1
    assert len(ls_messages(store, "Lists/linux")) == 2
    assert len(ls_messages(store, "INBOX")) == 1


# --------------------------------------- item 9: Dovecot's files are fine

@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_check_dovecot_store_is_clean(dovecot_tree, fmt):
    top, out = dovecot_tree
    root = os.path.join(out, fmt)
    before = tree_state(root)
    idx = os.path.join(top, fmt + "-check-index.sqlite")
    chk = dboxctl("--index", idx, "check", root, check=False)
    assert chk.returncode == 0, chk.stdout.decode() + chk.stderr.decode()
    assert tree_state(root) == before


@needs_dovecot
def test_open_keeps_m_files_dovecot_wrote(wtmp):
    """A store of ours handed to Dovecot, which appends to our m.1 and
    makes an m.N of its own, then opened by dboxctl again: the open (its
    crash recovery) leaves Dovecot's messages alone."""
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"1700000000.M%d.src" % i: message(i) for i in range(2)})
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    dboxctl("import", store, "INBOX", src)
    da = Doveadm(wtmp, store, "mdbox")
    da.force_resync("INBOX")
    da("save", "-m", "INBOX", input=message(1, "appended"))
    da("-o", "mdbox_rotate_size=1", "save", "-m", "INBOX",
       input=message(2, "own-file"))
    files = sorted(f for f in os.listdir(os.path.join(store, "storage"))
                   if f.startswith("m."))
    assert len(files) >= 2, files
    before = {f: os.path.getsize(os.path.join(store, "storage", f))
              for f in files}
    dboxctl("check", store, check=False)   # opens read-write: recovery
    dboxctl("ls", store, "INBOX")
    after = {f: os.path.getsize(os.path.join(store, "storage", f))
             for f in os.listdir(os.path.join(store, "storage"))
             if f.startswith("m.")}
    assert after == before
    texts = sorted(m["text"] for m in da.fetch("text"))
    assert texts == sorted([message(0), message(1), message(1, "appended"),
                            message(2, "own-file")])


# ------------------------------- item 10: compression is never guessed

MAGIC_BODIES = {
    "gz": gzip.compress(b"a delivered gzip file\n" * 50),
    "zstd": b"\x28\xb5\x2f\xfd" + b"not zstd at all\n",
    "lz4": b"Dovecot-LZ4\r*\x9b\xc5\x00\x01\x00\x00" + b"not lz4\n",
    "bz2": b"BZh9" + b"not bzip2\n",
    "xz": b"\xfd7zXZ\x00" + b"not xz\n",
}


@needs_dboxfs
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_magic_bodies_survive_reindex(wtmp, mounts, fmt):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"1700000000.M1.%s" % k: v
                        for k, v in MAGIC_BODIES.items()})
    dboxctl("import", store, "INBOX", src)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    for k, v in MAGIC_BODIES.items():
        deliver(mnt, "mount.%s" % k, v)
    m.stop()
    expected = sorted(list(MAGIC_BODIES.values()) * 2)

    def ours():
        return sorted(dboxctl("cat", store, "INBOX", r["uid"]).stdout
                      for r in ls_messages(store, "INBOX"))
    assert ours() == expected
    dboxctl("reindex", store)
    assert ours() == expected
    m = mounts(store, mnt)
    got = []
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(mnt, sub)):
            got.append(read(os.path.join(mnt, sub, name)))
    assert sorted(got) == expected
    m.stop()


@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_compressed_dovecot_store_reads_after_reindex(wtmp, fmt):
    root = os.path.join(wtmp, fmt)
    os.mkdir(root)
    da = Doveadm(wtmp, root, fmt)
    texts = []
    for i, alg in enumerate(["gz", "zstd", "lz4", "bz2"]):
        texts.append(message(i, alg) * 40)
        da("-o", "mail_plugins=zlib", "-o", "plugin/zlib_save=" + alg,
           "save", "-m", "INBOX", input=texts[-1])
    # a plain one whose body starts like gzip, saved without the plugin
    texts.append(MAGIC_BODIES["gz"])
    da("save", "-m", "INBOX", input=texts[-1])
    idx = ["--index", os.path.join(wtmp, "index.sqlite")]

    def ours():
        return sorted(dboxctl(*idx, "cat", root, "INBOX", r["uid"]).stdout
                      for r in ls_messages(root, "INBOX", *idx))
    assert ours() == sorted(texts)
    dboxctl(*idx, "reindex", root)
    assert ours() == sorted(texts)


# ------------------------- item 12: an outside index is tied to its tree

def dovecot_store(wtmp, root, tag, count):
    os.makedirs(root)
    da = Doveadm(wtmp, root, "sdbox")
    for i in range(count):
        da("save", "-m", "INBOX", input=message(i, tag))
    return {m["guid"]: m["text"] for m in da.fetch("guid text",
                                                    "mailbox", "INBOX")}


def mount_view(mnt):
    """{guid: (name, bytes)} of INBOX on a mount."""
    view = {}
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(mnt, sub)):
            p = os.path.join(mnt, sub, name)
            guid = os.getxattr(p, "user.dbox.guid").decode()
            view[guid] = (name.split(":2,")[0], read(p))
    return view


@needs_dboxfs
@needs_dovecot
def test_dovecot_store_made_anew_at_same_path(wtmp, mounts):
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(wtmp, "cache"))
    root = os.path.join(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    first = dovecot_store(wtmp, root, "old", 3)
    m = mounts(root, mnt, env=env)
    old_view = mount_view(mnt)
    assert {g: d for g, (_, d) in old_view.items()} == first
    m.stop()
    shutil.rmtree(root)
    second = dovecot_store(wtmp, root, "new", 3)
    m = mounts(root, mnt, env=env)
    view = mount_view(mnt)
    m.stop()
    assert {g: d for g, (_, d) in view.items()} == second
    # names of the old store's messages are not reused for the new ones
    assert not {n for n, _ in view.values()} & {n for n, _ in
                                                 old_view.values()}


@needs_dovecot
def test_outside_index_given_another_tree(wtmp):
    """-o index= (dboxctl --index) naming the index of another tree, or a
    copy of the tree at another path: indexed anew from the tree at hand."""
    a = dovecot_store(wtmp, os.path.join(wtmp, "a"), "tree-a", 2)
    b = dovecot_store(wtmp, os.path.join(wtmp, "b"), "tree-b", 2)
    idx = ["--index", os.path.join(wtmp, "shared-index.sqlite")]

    def guids(root):
        return {r["guid"]: dboxctl(*idx, "cat", root, "INBOX",
                                   r["uid"]).stdout
                for r in ls_messages(root, "INBOX", *idx)}
    assert guids(os.path.join(wtmp, "a")) == a
    assert guids(os.path.join(wtmp, "b")) == b
    copy = os.path.join(wtmp, "copy-of-a")
    shutil.copytree(os.path.join(wtmp, "a"), copy, symlinks=True)
    assert guids(copy) == a
    assert guids(os.path.join(wtmp, "b")) == b
