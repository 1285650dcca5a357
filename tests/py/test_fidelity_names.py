"""Names and modes of messages on real mounts, compared with what a native
maildir on the local filesystem does (maildir-view.md section 2 and 4):
renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE, flags on names in new/
(mdeliver, mbsync, Dovecot's maildir driver), chmod and rsync -a."""

import ctypes
import errno
import os
import re
import sqlite3

import pytest

from dboxfs_testlib import (DBOXFS, dboxctl, make_maildir, mounts, run,
                            wtmp)  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    """renameat2(2) through glibc; 0 or the errno."""
    r = _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                        os.fsencode(new), ctypes.c_uint(flags))
    return 0 if r == 0 else ctypes.get_errno()


def new_store(wtmp, fmt):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    return store


def read(path):
    with open(path, "rb") as f:
        return f.read()


def body(name):
    return b"Subject: " + name.encode() + b"\n\nbody of " + name.encode() + b"\n"


def deliver(root, name, target):
    """The maildir protocol: write tmp/name, rename it to target."""
    tmp = os.path.join(root, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(body(name))
    os.rename(tmp, os.path.join(root, target))


def state(root):
    """{sub/name: bytes} of cur/, new/ and tmp/."""
    out = {}
    for sub in ("cur", "new", "tmp"):
        for name in os.listdir(os.path.join(root, sub)):
            out[sub + "/" + name] = read(os.path.join(root, sub, name))
    return out


def native_maildir(wtmp):
    root = os.path.join(wtmp, "native")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub))
    return root


def check_names(root, sub, expected):
    """readdir, lookup and stat agree on exactly these names."""
    d = os.path.join(root, sub)
    entries = {e.name: e.inode() for e in os.scandir(d)}
    assert sorted(entries) == sorted(expected)
    for name, ino in entries.items():
        assert os.stat(os.path.join(d, name)).st_ino == ino
        base = name.partition(":2,")[0]
        for other in (base, base + ":2,", base + ":2,S", base + ":2,FS"):
            if other != name:
                assert not os.path.exists(os.path.join(d, other)), other


# ------------------------------------------------------------------ item 1

@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_noreplace_from_new_to_cur_with_flags(wtmp, mounts, fmt):
    """The report: files cp'd into tmp/ and mv'd into new/, then each
    renamed with RENAME_NOREPLACE to cur/B:2,S; coreutils mv does the same
    for a flag change."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    src = os.path.join(wtmp, "src")
    os.mkdir(src)
    names = ["17000000%02d.M%dP1.host" % (i, i) for i in range(15)]
    for n in names:
        with open(os.path.join(src, n), "wb") as f:
            f.write(body(n))
        run(["cp", os.path.join(src, n), os.path.join(mnt, "tmp")])
        run(["mv", os.path.join(mnt, "tmp", n), os.path.join(mnt, "new")])
    assert sorted(os.listdir(os.path.join(mnt, "new"))) == sorted(names)
    for n in names:
        target = os.path.join(mnt, "cur", n + ":2,S")
        assert not os.path.exists(target)
        assert renameat2(os.path.join(mnt, "new", n), target,
                         RENAME_NOREPLACE) == 0, n
    check_names(mnt, "new", [])
    check_names(mnt, "cur", [n + ":2,S" for n in names])
    for n in names[:5]:
        run(["mv", os.path.join(mnt, "cur", n + ":2,S"),
             os.path.join(mnt, "cur", n + ":2,RS")])
    check_names(mnt, "cur", [n + ":2,RS" for n in names[:5]] +
                [n + ":2,S" for n in names[5:]])
    for n in names:
        name = n + (":2,RS" if n in names[:5] else ":2,S")
        assert read(os.path.join(mnt, "cur", name)) == body(n)


def rename_sequence(root):
    """renameat2 calls a maildir client may make; [(call, errno)]."""
    deliver(root, "A", "cur/A:2,S")
    deliver(root, "B", "cur/B:2,F")
    deliver(root, "C", "new/C")
    deliver(root, "D", "new/D")
    p = lambda rel: os.path.join(root, rel)  # noqa: E731
    calls = [
        ("new/C", "cur/C:2,S", RENAME_NOREPLACE),     # onto a missing name
        ("cur/A:2,S", "cur/B:2,F", RENAME_NOREPLACE),  # onto an existing one
        ("cur/A:2,S", "cur/A:2,RS", RENAME_NOREPLACE),  # same message
        ("new/D", "new/D:2,F", RENAME_NOREPLACE),      # flags in new/
        ("cur/nothing:2,", "cur/x:2,", RENAME_NOREPLACE),
        ("cur/A:2,RS", "cur/B:2,F", RENAME_EXCHANGE),  # two messages
        ("cur/A:2,RS", "cur/Z:2,S", RENAME_EXCHANGE),  # missing target
        ("new/D:2,F", "cur/C:2,S", RENAME_EXCHANGE),   # new/ with cur/
        ("cur/C:2,S", "cur/C:2,S", RENAME_EXCHANGE),   # with itself
    ]
    return [(a, b, f, renameat2(p(a), p(b), f)) for a, b, f in calls]


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_renameat2_flags_like_local_fs(wtmp, mounts, fmt):
    native = native_maildir(wtmp)
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    want = rename_sequence(native)
    assert [r[3] for r in want] == [0, errno.EEXIST, 0, 0, errno.ENOENT, 0,
                                    errno.ENOENT, 0, 0]
    assert rename_sequence(mnt) == want
    assert state(mnt) == state(native)
    for sub in ("cur", "new"):
        check_names(mnt, sub, os.listdir(os.path.join(native, sub)))


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_exchange_of_tmp_file_and_message(wtmp, mounts, fmt):
    """A local filesystem swaps the two files; a message's bytes are in
    the store and a tmp/ file's beside it, so the mount answers EXDEV and
    changes nothing."""
    native = native_maildir(wtmp)
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    os.mkdir(os.path.join(mnt, ".Other"))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".Other", sub))
    for root in (native, mnt):
        deliver(root, "A", "cur/A:2,S")
        with open(os.path.join(root, "tmp", "T"), "wb") as f:
            f.write(b"being written\n")
    assert renameat2(os.path.join(native, "tmp/T"),
                     os.path.join(native, "cur/A:2,S"), RENAME_EXCHANGE) == 0
    assert read(os.path.join(native, "cur/A:2,S")) == b"being written\n"
    before = state(mnt)
    assert renameat2(os.path.join(mnt, "tmp/T"), os.path.join(mnt, "cur/A:2,S"),
                     RENAME_EXCHANGE) == errno.EXDEV
    assert renameat2(os.path.join(mnt, "cur/A:2,S"), os.path.join(mnt, "tmp/T"),
                     RENAME_EXCHANGE) == errno.EXDEV
    # messages of two mailboxes: no store operation moves both at once
    deliver(os.path.join(mnt, ".Other"), "O", "cur/O:2,")
    assert renameat2(os.path.join(mnt, "cur/A:2,S"),
                     os.path.join(mnt, ".Other/cur/O:2,"),
                     RENAME_EXCHANGE) == errno.EXDEV
    assert state(mnt) == before
    # names, not bases, are unique: as on a local filesystem O:2, and
    # O:2,S are two files side by side; NOREPLACE onto O:2, is refused
    assert renameat2(os.path.join(mnt, "cur/A:2,S"),
                     os.path.join(mnt, ".Other/cur/O:2,"),
                     RENAME_NOREPLACE) == errno.EEXIST
    assert renameat2(os.path.join(mnt, "cur/A:2,S"),
                     os.path.join(mnt, ".Other/cur/O:2,S"),
                     RENAME_NOREPLACE) == 0
    assert sorted(os.listdir(os.path.join(mnt, ".Other/cur"))) == \
        ["O:2,", "O:2,S"]
    assert read(os.path.join(mnt, ".Other/cur/O:2,S")) == body("A")
    # two files of tmp/ trade places as on any filesystem
    with open(os.path.join(mnt, "tmp", "U"), "wb") as f:
        f.write(b"other\n")
    assert renameat2(os.path.join(mnt, "tmp/T"), os.path.join(mnt, "tmp/U"),
                     RENAME_EXCHANGE) == 0
    assert read(os.path.join(mnt, "tmp/T")) == b"other\n"
    assert read(os.path.join(mnt, "tmp/U")) == b"being written\n"
    m.stop()
    assert dboxctl("check", store).returncode == 0


# ------------------------------------------------------------------ item 2

def flags_in_new(wtmp, mnt):
    """Deliveries that put flags on names in new/; returns the names."""
    names = []
    for flags in ([], ["-X", "FS"]):
        p = run(["mdeliver", "-v"] + flags + [mnt], input=body("mdeliver"))
        path = p.stdout.decode().strip()
        assert os.path.dirname(path) == os.path.join(mnt, "new")
        names.append(os.path.basename(path))
    assert names[0].endswith(":2,") and names[1].endswith(":2,FS")
    # mbsync stores pulled messages in new/ with their flags
    mbsync = "1700000000.R17.host,U=111:2,R"
    deliver(mnt, "pull", "new/" + mbsync)
    names.append(mbsync)
    # Dovecot's maildir driver flags a message while it is in new/
    deliver(mnt, "X", "new/X")
    os.rename(os.path.join(mnt, "new/X"), os.path.join(mnt, "new/X:2,F"))
    names.append("X:2,F")
    deliver(mnt, "Y", "new/Y:2,S")
    os.rename(os.path.join(mnt, "new/Y:2,S"), os.path.join(mnt, "new/Y"))
    names.append("Y")
    return names


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_flags_on_names_in_new_are_kept(wtmp, mounts, fmt):
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    names = flags_in_new(wtmp, mnt)
    check_names(mnt, "new", names)
    check_names(mnt, "cur", [])
    inos = {n: os.stat(os.path.join(mnt, "new", n)).st_ino for n in names}
    assert read(os.path.join(mnt, "new/X:2,F")) == body("X")
    m.stop()
    assert dboxctl("check", store).returncode == 0
    dboxctl("reindex", store)
    m = mounts(store, mnt)
    check_names(mnt, "new", names)
    assert {n: os.stat(os.path.join(mnt, "new", n)).st_ino
            for n in names} == inos
    # and out of new/ as usual, the flags going with the name
    os.rename(os.path.join(mnt, "new/X:2,F"), os.path.join(mnt, "cur/X:2,FS"))
    check_names(mnt, "cur", ["X:2,FS"])
    m.stop()
    # dboxctl export writes the same names, and import takes them back
    names.remove("X:2,F")
    out = os.path.join(wtmp, "export")
    dboxctl("export", store, "INBOX", out)
    assert sorted(os.listdir(os.path.join(out, "new"))) == sorted(names)
    store2 = os.path.join(wtmp, "store2")
    dboxctl("init", store2, "--format", fmt)
    dboxctl("import", store2, "INBOX", out)
    mounts(store2, mnt)
    check_names(mnt, "new", names)
    check_names(mnt, "cur", ["X:2,FS"])


def downgrade_index_to_2(db):
    """The index as dboxfs before schema version 3 left it: bases unique
    per mailbox, no name column."""
    db.execute("DROP TABLE IF EXISTS unconfirmed")
    db.execute("DROP INDEX messages_by_name")
    db.execute("ALTER TABLE messages DROP COLUMN name")
    db.execute("DROP INDEX messages_by_base")
    db.execute("CREATE UNIQUE INDEX messages_by_base ON "
               "messages(mailbox_id, base)")
    db.execute("PRAGMA user_version=2")


def downgrade_index(store, version=1):
    """The index as dboxfs before schema version `version` + 1 left it."""
    db = sqlite3.connect(os.path.join(store, "dboxfs", "index.sqlite"))
    downgrade_index_to_2(db)
    if version == 2:
        db.commit()
        db.close()
        return
    db.execute("ALTER TABLE messages DROP COLUMN new_info")
    db.execute("ALTER TABLE messages DROP COLUMN mode")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()


def index_schema(store):
    db = sqlite3.connect(os.path.join(store, "dboxfs", "index.sqlite"))
    version = db.execute("PRAGMA user_version").fetchone()[0]
    cols = [r[1] for r in db.execute("PRAGMA table_info(messages)")]
    db.close()
    return version, cols


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_index_of_schema_1_migrates(wtmp, mounts, fmt):
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    deliver(mnt, "A", "new/A")
    deliver(mnt, "B", "cur/B:2,S")
    m.stop()
    downgrade_index(store)
    assert index_schema(store)[0] == 1
    m = mounts(store, mnt)
    version, cols = index_schema(store)
    assert version == 5 and cols[-2:] == ["new_info", "mode"]
    check_names(mnt, "new", ["A"])
    check_names(mnt, "cur", ["B:2,S"])
    assert os.stat(os.path.join(mnt, "new/A")).st_mode & 0o7777 == \
        os.stat(store).st_mode & 0o666
    os.rename(os.path.join(mnt, "new/A"), os.path.join(mnt, "new/A:2,F"))
    os.chmod(os.path.join(mnt, "cur/B:2,S"), 0o640)
    m.stop()
    m = mounts(store, mnt)
    check_names(mnt, "new", ["A:2,F"])
    assert os.stat(os.path.join(mnt, "cur/B:2,S")).st_mode == 0o100640
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_index_of_schema_2_migrates(wtmp, mounts, fmt):
    """Version 3 makes names, not bases, unique: an index of version 2
    keeps its messages, and afterwards a second message with the base of
    another one (other flags, or in new/) can be delivered."""
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    deliver(mnt, "A", "new/A")
    deliver(mnt, "B", "cur/B:2,S")
    m.stop()
    downgrade_index(store, 2)
    assert index_schema(store)[0] == 2
    m = mounts(store, mnt)
    assert index_schema(store)[0] == 5
    check_names(mnt, "new", ["A"])
    check_names(mnt, "cur", ["B:2,S"])
    deliver(mnt, "A2", "cur/A:2,")
    deliver(mnt, "B2", "cur/B:2,F")
    deliver(mnt, "B3", "new/B")
    m.stop()
    m = mounts(store, mnt)
    want = {"new/A": "A", "new/B": "B3", "cur/A:2,": "A2", "cur/B:2,S": "B",
            "cur/B:2,F": "B2"}
    assert sorted("new/" + n for n in os.listdir(os.path.join(mnt, "new"))) \
        + sorted("cur/" + n for n in os.listdir(os.path.join(mnt, "cur"))) \
        == sorted(k for k in want if k.startswith("new/")) + \
        sorted(k for k in want if k.startswith("cur/"))
    inos = set()
    for path, name in want.items():
        assert read(os.path.join(mnt, path)) == body(name)
        inos.add(os.stat(os.path.join(mnt, path)).st_ino)
    assert len(inos) == len(want)
    m.stop()
    assert dboxctl("check", store).returncode == 0


# ------------------------------------------------------------------ item 4

MODES = {"1.M1.b": 0o600, "2.M2.b": 0o644, "3.M3.b": 0o640, "4.M4.b": 0o444}


def backup_maildir(wtmp):
    msgs = {b: body(b) for b in MODES}
    src = make_maildir(os.path.join(wtmp, "backup"), msgs,
                       flags={"1.M1.b": "S", "2.M2.b": "RS"},
                       mtimes={b: 1400000000 + i for i, b in enumerate(MODES)},
                       new=("4.M4.b",))
    paths = {}
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(src, sub)):
            base = name.partition(":2,")[0]
            os.chmod(os.path.join(src, sub, name), MODES[base])
            paths[sub + "/" + name] = MODES[base]
    return src, paths


def file_changes(itemized):
    """rsync --itemize-changes lines about files (directory times on the
    mount follow their contents: rsync may try to set them each time)."""
    return [line for line in itemized.splitlines()
            if re.match(r"^[<>ch.*][f]", line)]


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_rsync_a_twice_copies_nothing_and_modes_persist(wtmp, mounts, fmt):
    src, paths = backup_maildir(wtmp)
    store = new_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    p = run(["rsync", "-a", "--itemize-changes", src + "/", mnt + "/"])
    assert len(file_changes(p.stdout.decode())) == len(paths)
    for rel, mode in paths.items():
        assert os.stat(os.path.join(mnt, rel)).st_mode == 0o100000 | mode, rel
    p = run(["rsync", "-a", "--itemize-changes", "--stats", src + "/",
             mnt + "/"])
    out = p.stdout.decode()
    assert file_changes(out) == []
    assert "Number of regular files transferred: 0" in out
    # chmod shows at once (the kernel caches what setattr answers)
    msg = os.path.join(mnt, "cur", "1.M1.b:2,S")
    os.chmod(msg, 0o604)
    assert os.stat(msg).st_mode == 0o100604
    fd = os.open(msg, os.O_RDONLY)
    assert os.fstat(fd).st_mode == 0o100604
    os.close(fd)
    paths["cur/1.M1.b:2,S"] = 0o604
    m.stop()
    dboxctl("reindex", store)
    m = mounts(store, mnt)
    for rel, mode in paths.items():
        assert os.stat(os.path.join(mnt, rel)).st_mode == 0o100000 | mode, rel
    # a flag change keeps the mode
    os.rename(os.path.join(mnt, "cur/3.M3.b:2,"),
              os.path.join(mnt, "cur/3.M3.b:2,S"))
    assert os.stat(os.path.join(mnt, "cur/3.M3.b:2,S")).st_mode == 0o100640
    m.stop()
    assert dboxctl("check", store).returncode == 0
