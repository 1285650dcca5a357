"""Damage that keeps every size the same is still found (issue 11 items
3b, 5, 6a): a record whose GUID is not the index's is EIO on the mount and
in dboxctl cat, a body whose line count changed is a vsize mismatch in
check, and a damaged SQLite index is refused at mount and rebuilt by
reindex, keeping every message and the flags it can still read."""

import errno
import json
import os
import sqlite3

import pytest

from dboxfs_testlib import (dboxctl, dovecot_tree, ls_messages,  # noqa: F401
                            make_maildir, mounts, needs_dovecot, run, wtmp)
from test_corruption import build, mount_reads, patch, record_of
from test_dovecot_view import doveadm_flags, view_of


def record_bytes(store, fmt, uid):
    path, off = record_of(store, fmt, uid)
    data = open(path, "rb").read()
    if fmt == "sdbox":
        return path, off, data[off:]
    end = data.index(b"\n\n", off + 30 + int(data[off + 13:off + 29], 16) + 4)
    return path, off, data[off:end + 2]


def cat_fails(store, uid):
    p = dboxctl("cat", store, "INBOX", uid, check=False)
    return p.returncode != 0 and b"GUID" in p.stderr


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_record_with_another_guid_is_eio(wtmp, mounts, fmt):
    store, msgs = build(wtmp, fmt)
    path2, off2, rec2 = record_bytes(store, fmt, 2)
    path3, off3, rec3 = record_bytes(store, fmt, 3)
    assert len(rec2) == len(rec3)
    if fmt == "sdbox":
        # two u.N of the same size swapped: both framings are fine
        os.rename(path2, path2 + ".x")
        os.rename(path3, path2)
        os.rename(path2 + ".x", path3)
        bad = {2, 3}
    else:
        # another message's record copied over this one
        patch(path2, off2, rec3)
        bad = {2}
    for r in ls_messages(store, "INBOX"):
        p = dboxctl("cat", store, "INBOX", r["uid"], check=False)
        if r["uid"] in bad:
            assert p.returncode == 1 and p.stdout == b""
            assert b"GUID" in p.stderr and b"offset=" in p.stderr
        else:
            assert p.returncode == 0 and p.stdout == msgs[r["base"]]
    chk = dboxctl("check", store, check=False)
    assert chk.returncode == 1
    out = chk.stdout.decode()
    for uid in bad:
        path, off = record_of(store, fmt, uid)
        assert "%s:%d: GUID " % (path, off) in out, out
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "ro")
    seen = mount_reads(mnt, msgs)
    assert {u for u, v in seen.items() if v == errno.EIO} == bad
    assert sorted(v for u, v in seen.items() if u not in bad) == \
        sorted(msgs[r["base"]] for r in ls_messages(store, "INBOX")
               if r["uid"] not in bad)
    assert m.stop() == 0
    assert "GUID" in m.output()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_check_finds_a_body_whose_line_count_changed(wtmp, fmt):
    store, msgs = build(wtmp, fmt)
    assert dboxctl("check", store).returncode == 0
    path, off = record_of(store, fmt, 4)
    body = b"Subject: m3\n\nbody 3\n"
    where = off + 30 + body.index(b"ody 3")
    patch(path, where, b"\n")         # same size, one line more
    chk = dboxctl("check", store, check=False)
    assert chk.returncode == 1
    lines = chk.stdout.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("%s:%d: vsize mismatch" % (path, off)), lines


FLAGS = ["S", "FS", "RS", "", "DS", "PS"]


def flagged_store(wtmp, fmt, n=300):
    """n messages in INBOX and a folder, each with flags, and their rows
    spread over many pages of the index."""
    msgs = {"17%08d.M%d.c" % (i, i): b"Subject: m%d\n\nbody %d\n" % (i, i)
            for i in range(n)}
    flags = {b: FLAGS[i % len(FLAGS)] for i, b in enumerate(sorted(msgs))}
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    for box in ("INBOX", "Work"):
        src = make_maildir(os.path.join(wtmp, "src-" + box), msgs, flags)
        dboxctl("import", store, box, src)
    return store, msgs, flags


def index_path(store):
    return os.path.join(store, "dboxfs", "index.sqlite")


def damage_leaf(index, table, min_pages=3, first=False):
    """Flips the page header of one leaf of `table`, in the middle of it
    or (first) its first one, never the file header; returns the number
    of rows it held."""
    db = sqlite3.connect(index)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.execute("SELECT pageno, ncell FROM dbstat WHERE name = ? "
                       "AND pagetype = 'leaf' ORDER BY pageno",
                       (table,)).fetchall()
    psize = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    assert len(pages) >= min_pages, pages
    pageno, ncell = pages[0 if first else len(pages) // 2]
    with open(index, "r+b") as f:
        f.seek((pageno - 1) * psize)
        head = f.read(12)
        f.seek((pageno - 1) * psize)
        f.write(bytes(b ^ 0xFF for b in head))
    return ncell


def state(store):
    return {box: {r["base"]: r for r in ls_messages(store, box)}
            for box in ("INBOX", "Work")}


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_damaged_index_is_refused_and_rebuilt(wtmp, mounts, fmt):
    store, msgs, flags = flagged_store(wtmp, fmt)
    before = state(store)
    lost_max = damage_leaf(index_path(store), "messages")
    # refused: by the mount (with what to do) and by dboxctl
    mnt = os.path.join(wtmp, "mnt")
    with pytest.raises(AssertionError) as e:
        mounts(store, mnt)
    assert "exited" in str(e.value)
    msg = str(e.value)
    assert "is damaged" in msg and "dboxctl reindex %s" % store in msg, msg
    p = dboxctl("ls", store, "INBOX", check=False)
    assert p.returncode == 1 and b"is damaged" in p.stderr
    # rebuilt: the damaged file is kept, every message is there, and the
    # flags of every row still readable are kept
    p = dboxctl("reindex", store)
    assert b"damaged" in p.stderr
    kept = [n for n in os.listdir(os.path.dirname(index_path(store)))
            if n.startswith("index.sqlite.damaged-")]
    assert kept, os.listdir(os.path.dirname(index_path(store)))
    after = state(store)
    wrong = 0
    for box in before:
        assert set(after[box]) == set(before[box])
        for base, r in after[box].items():
            if r["info"] != before[box][base]["info"]:
                wrong += 1
                assert r["info"] == "", r     # lost, never invented
            elif fmt == "sdbox":
                assert r["uid"] == before[box][base]["uid"]
    # the rows of the damaged leaf, and the one in its parent just after
    # it (a lookup of that key reaches it through the damaged leaf)
    assert 0 < wrong <= lost_max + 1
    assert dboxctl("check", store).returncode == 0
    m = mounts(store, mnt)
    assert len(os.listdir(os.path.join(mnt, "cur"))) == len(msgs)
    assert m.stop() == 0


def test_damage_after_a_clean_close_is_found(wtmp, mounts):
    """A clean close stamps the index as checked (index.sqlite-checked),
    so the next open skips the check that reads every page; damage made
    after it, even with the file's size and mtime kept, is still found
    at the next mount (the stamp holds the ctime)."""
    store, msgs, flags = flagged_store(wtmp, "mdbox")
    idx = index_path(store)
    stamp = idx + "-checked"
    mnt = os.path.join(wtmp, "mnt")
    assert os.path.exists(stamp)          # dboxctl import closed it
    m = mounts(store, mnt)
    os.rename(os.path.join(mnt, "cur", sorted(os.listdir(
        os.path.join(mnt, "cur")))[0]), os.path.join(mnt, "cur", "x:2,S"))
    assert m.stop() == 0
    assert os.path.exists(stamp) and not os.path.exists(idx + "-wal")
    m = mounts(store, mnt)                # the untouched file: no check
    assert len(os.listdir(os.path.join(mnt, "cur"))) == len(msgs)
    assert m.stop() == 0
    st = os.stat(idx)
    db = sqlite3.connect("file:%s?immutable=1" % idx, uri=True)
    pages = db.execute("SELECT pageno FROM dbstat WHERE name = 'messages'"
                       " AND pagetype = 'leaf' ORDER BY pageno").fetchall()
    psize = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    assert len(pages) >= 3 and os.stat(idx).st_ctime_ns == st.st_ctime_ns
    with open(idx, "r+b") as f:
        f.seek((pages[len(pages) // 2][0] - 1) * psize)
        head = f.read(12)
        f.seek((pages[len(pages) // 2][0] - 1) * psize)
        f.write(bytes(b ^ 0xFF for b in head))
    os.utime(idx, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(idx)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(AssertionError) as e:
        mounts(store, mnt)
    assert "is damaged" in str(e.value), str(e.value)
    assert os.path.exists(stamp)          # a refused open stamps nothing
    p = dboxctl("ls", store, "INBOX", check=False)
    assert p.returncode == 1 and b"is damaged" in p.stderr
    # what the stamp gives up: damage that leaves the file's times alone
    # (a bad sector) passes the open, and is found by the read it breaks
    st = os.stat(idx)
    with open(stamp, "w") as f:
        f.write("dboxfs-index-checked 1 %d %d %d %d.%09d %d.%09d\n" % (
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns // 10**9,
            st.st_mtime_ns % 10**9, st.st_ctime_ns // 10**9,
            st.st_ctime_ns % 10**9))
    m = mounts(store, mnt)
    errs = []
    for box in ("", ".Work"):
        try:
            for n in os.listdir(os.path.join(mnt, box, "cur")):
                with open(os.path.join(mnt, box, "cur", n), "rb") as f:
                    f.read()
        except OSError as e:
            errs.append(e.errno)
    assert m.stop() == 0
    assert errs and set(errs) == {errno.EIO}, errs   # not wrong rows
    p = dboxctl("check", store, check=False)   # check does not trust it
    assert p.returncode == 1 and b"is damaged" in p.stderr, p.stderr


def test_damaged_index_header_of_the_mailboxes_page(wtmp):
    """Damage where nothing can be read any more: still every message
    comes back from the files."""
    store, msgs, flags = flagged_store(wtmp, "sdbox", n=20)
    with open(index_path(store), "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 200)   # the first page past the file header
    assert dboxctl("ls", store, "INBOX", check=False).returncode == 1
    dboxctl("reindex", store)
    after = state(store)
    assert all(len(after[b]) == len(msgs) for b in after)


@needs_dovecot
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_damaged_index_of_a_dovecot_tree(dovecot_tree, mounts, wtmp, fmt):
    """The index of a tree Dovecot owns is refused when damaged too, and
    reindex takes every flag back from Dovecot's own index, also of the
    messages whose rows were lost."""
    top, out = dovecot_tree
    da = os.path.join(out, "dovecot", "doveadm-store")
    fetch = json.loads(run([da, fmt, "-f", "json", "fetch",
                            "uid flags mailbox guid", "all"]).stdout)
    expected = doveadm_flags(fetch)
    root = os.path.join(out, fmt)
    index = os.path.join(wtmp, "view.sqlite")
    mnt = os.path.join(wtmp, "mnt")
    mounts(root, mnt, "index=" + index).stop()
    damage_leaf(index, "messages", min_pages=1)
    with pytest.raises(AssertionError) as e:
        mounts(root, mnt, "index=" + index)
    assert "is damaged" in str(e.value), str(e.value)
    assert "dboxctl --index=%s reindex %s" % (index, root) in str(e.value)
    p = dboxctl("--index=" + index, "reindex", root)
    assert b"damaged" in p.stderr
    mounts(root, mnt, "index=" + index)
    for box, msgs in expected.items():
        assert view_of(mnt, box) == msgs, box
