"""A Dovecot store taken over (-o takeover): deliveries into a folder made
through the mount, and beside a Dovecot that keeps writing.  Every message
gets a uid >= 1, every new folder a uidvalidity from Dovecot's counter,
every delivery is listed once, and Dovecot (after force-resync) sees the
same messages.  The stores are made by `doveadm import` of a maildir."""

import collections
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from dboxfs_testlib import (DBOXFS, Doveadm, chown_tree, files_state,
                            make_maildir, mounts, needs_dovecot, store_ids,
                            wait_for, wtmp)  # noqa: F401

sys.path.insert(0, os.path.dirname(__file__))
from deliver import payload  # noqa: E402

pytestmark = [needs_dovecot,
              pytest.mark.skipif(not os.path.exists(DBOXFS),
                                 reason="dboxfs not built")]
DELIVER = os.path.join(os.path.dirname(__file__), "deliver.py")
ORIGINAL = {"m%d" % i: b"Subject: m%d\n\nfrom the maildir\n" % i
            for i in range(5)}


def dovecot_store(wtmp, fmt):
    """A store written by Dovecot: doveadm import of a 5-message maildir
    into INBOX.  Returns (root, doveadm)."""
    src = make_maildir(os.path.join(wtmp, "src"), ORIGINAL)
    root = os.path.join(wtmp, fmt)
    os.makedirs(root)
    chown_tree(src, *store_ids())
    da = Doveadm(wtmp, root, fmt)
    da("import", "maildir:" + src, "", "all")
    return root, da


def index_rows(root, sql, *args):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        root, "dboxfs", "index.sqlite"), uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def listed(folder):
    """Every message name of a maildir folder, with its info cut off."""
    return [n.split(":2,")[0] for sub in ("new", "cur")
            for n in os.listdir(os.path.join(folder, sub))]


def deliver(folder, wtmp, writers, count, prefix="w"):
    procs = [subprocess.Popen(["/usr/bin/python3", DELIVER, folder,
                               "%s%d" % (prefix, p), str(count), "rename",
                               os.path.join(wtmp, "ack%d" % p)],
                              stderr=subprocess.PIPE)
             for p in range(writers)]
    try:
        for p in procs:
            assert p.wait(timeout=300) == 0, p.stderr.read()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return ["%s%d.%d" % (prefix, p, i) for p in range(writers)
            for i in range(count)]


def dovecot_view(wtmp, root, fmt, mailbox):
    """{guid: (uid, text)} of a mailbox as doveadm sees it after
    force-resync, as the store's owner."""
    da = Doveadm(wtmp, root, fmt)     # chowns what the mount wrote
    da.force_resync()
    return {m["guid"]: (int(m["uid"]), m["text"])
            for m in da.fetch("uid guid text", "mailbox", mailbox)}


@pytest.mark.parametrize("fmt,writers", [("sdbox", 1), ("mdbox", 1),
                                         ("sdbox", 4), ("mdbox", 4)])
def test_deliveries_into_a_new_folder(wtmp, mounts, fmt, writers):
    root, _ = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    folder = os.path.join(mnt, ".Deliver")
    os.mkdir(folder)
    for sub in ("tmp", "new", "cur"):
        os.mkdir(os.path.join(folder, sub))
    names = deliver(folder, wtmp, writers, 500 // writers)
    assert len(names) == 500

    # every delivery listed exactly once
    seen = collections.Counter(listed(folder))
    assert sorted(seen) == sorted(names)
    assert max(seen.values()) == 1
    for n in names[::50]:
        with open(os.path.join(folder, "new", n), "rb") as f:
            assert f.read() == payload(n)

    # uids >= 1, one each; a uidvalidity of its own, from Dovecot's counter
    boxes = dict((name, (bid, uv, nxt)) for bid, name, uv, nxt in index_rows(
        root, "SELECT id, name, uidvalidity, next_uid FROM mailboxes"))
    bid, uv, nxt = boxes["Deliver"]
    inbox_uv = boxes["INBOX"][1]
    uids = [u for (u,) in index_rows(
        root, "SELECT uid FROM messages WHERE mailbox_id = ?", bid)]
    assert len(uids) == 500 and len(set(uids)) == 500
    assert min(uids) >= 1 and nxt > max(uids)
    assert uv != 0 and uv != inbox_uv
    with open(os.path.join(root, "dovecot-uidvalidity")) as f:
        assert int(f.read(8), 16) >= uv
    guid_uid = dict(index_rows(
        root, "SELECT guid, uid FROM messages WHERE mailbox_id = ?", bid))
    m.stop()

    # Dovecot sees exactly these 500, with their bytes and distinct uids
    view = dovecot_view(wtmp, root, fmt, "Deliver")
    assert sorted(t for _, t in view.values()) == \
        sorted(payload(n) for n in names)
    dove_uids = [u for u, _ in view.values()]
    assert min(dove_uids) >= 1 and len(set(dove_uids)) == 500
    assert set(view) == set(guid_uid)
    if fmt == "sdbox":
        # u.N: the uid is the file's name
        assert {g: u for g, (u, _) in view.items()} == guid_uid

    # mounted again: Dovecot's index of the folder now rules; same names
    m = mounts(root, mnt, "takeover")
    seen = collections.Counter(listed(folder))
    assert sorted(seen) == sorted(names) and max(seen.values()) == 1
    subprocess.run(["rm", "-r", folder], check=True, timeout=120)
    assert not os.path.exists(folder)
    m.stop()


def texts_of(folder):
    """{name without info: bytes} of a maildir folder."""
    res = {}
    for sub in ("new", "cur"):
        for n in os.listdir(os.path.join(folder, sub)):
            with open(os.path.join(folder, sub, n), "rb") as f:
                res[n.split(":2,")[0]] = f.read()
    return res


def texts_polled(folder):
    """texts_of for a poll while Dovecot changes the folder: a message
    renamed between our listing and our read of the name is gone under
    the listed name (ENOENT, as in any maildir another program renames
    in): nothing yet, poll again."""
    try:
        return texts_of(folder)
    except FileNotFoundError:
        return {}


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecot_writes_beside_deliveries(wtmp, mounts, fmt):
    """Deliveries through the mount into INBOX, then Dovecot changes INBOX
    while mounted (a flag, then a save): the follower shows Dovecot's
    changes and keeps ours, and later deliveries get fresh uids.  Dovecot
    knows nothing of ours and reuses their uids: mdbox gives the uid to its
    own message, sdbox refuses and rebuilds its index."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    mounts(root, mnt, "takeover")
    ours = deliver(mnt, wtmp, 1, 3)
    assert len(listed(mnt)) == len(ORIGINAL) + 3
    chown_tree(root, *store_ids())
    da("flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "1")
    wait_for(lambda: any(n.endswith(":2,S") for n in os.listdir(
        os.path.join(mnt, "cur"))), timeout=5, what="Dovecot's flag")
    assert set(ours) <= set(listed(mnt))
    # after Dovecot's change: more deliveries, uids not reused
    ours += deliver(mnt, wtmp, 1, 5, prefix="x")
    assert len(listed(mnt)) == len(ORIGINAL) + len(ours)

    text = b"Subject: from dovecot\n\nsaved beside the mount\n"
    chown_tree(root, *store_ids())
    if da("save", "-m", "INBOX", input=text, check=False).returncode != 0:
        assert fmt == "sdbox"      # "u.6 already exists, rebuilding index"
        da("save", "-m", "INBOX", input=text)
    wait_for(lambda: text in texts_polled(mnt).values(), timeout=5,
             what="Dovecot's message on the mount")
    shown = texts_of(mnt)
    assert len(shown) == len(ORIGINAL) + len(ours) + 1
    for n in ours:
        assert shown[n] == payload(n)
    box = index_rows(root, "SELECT id FROM mailboxes WHERE name = 'INBOX'")
    uids = [u for (u,) in index_rows(
        root, "SELECT uid FROM messages WHERE mailbox_id = ?", box[0][0])]
    assert min(uids) >= 1 and len(set(uids)) == len(shown)


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_index_with_uid_0_is_repaired(wtmp, mounts, fmt):
    """The index an earlier version left: the new folder with uidvalidity
    0 and next_uid 0, one message with uid 0 (sdbox: in u.0) that the
    folder did not list and that made rm -r fail.  Mounted again, it gets
    a uidvalidity and its message a uid, and the folder lists all."""
    root, _ = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    folder = os.path.join(mnt, ".Deliver")
    os.mkdir(folder)
    for sub in ("tmp", "new", "cur"):
        os.mkdir(os.path.join(folder, sub))
    names = deliver(folder, wtmp, 1, 3)
    m.stop()
    db = sqlite3.connect(os.path.join(root, "dboxfs", "index.sqlite"))
    with db:
        (bid,), = db.execute("SELECT id FROM mailboxes WHERE name = "
                             "'Deliver'").fetchall()
        db.execute("UPDATE mailboxes SET uidvalidity = 0, next_uid = 0 "
                   "WHERE id = ?", (bid,))
        db.execute("UPDATE messages SET uid = 0 WHERE mailbox_id = ? AND "
                   "uid = 1", (bid,))
    db.close()
    d = os.path.join(root, "mailboxes", "Deliver", "dbox-Mails")
    # an earlier version made no index of Dovecot's for the folder
    for n in os.listdir(d):
        if n.startswith("dovecot.index"):
            os.unlink(os.path.join(d, n))
    if fmt == "sdbox":
        os.rename(os.path.join(d, "u.1"), os.path.join(d, "u.0"))

    m = mounts(root, mnt, "takeover")
    assert sorted(listed(folder)) == sorted(names)
    for n in names:
        with open(os.path.join(folder, "new", n), "rb") as f:
            assert f.read() == payload(n)
    (uv,), = index_rows(root, "SELECT uidvalidity FROM mailboxes WHERE "
                        "id = ?", bid)
    uids = [u for (u,) in index_rows(
        root, "SELECT uid FROM messages WHERE mailbox_id = ?", bid)]
    assert uv != 0 and min(uids) >= 1 and len(set(uids)) == 3
    more = deliver(folder, wtmp, 1, 2, prefix="x")
    assert sorted(listed(folder)) == sorted(names + more)
    subprocess.run(["rm", "-r", folder], check=True, timeout=60)
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecot_indexes_a_folder_made_through_the_mount(wtmp, mounts, fmt):
    """Dovecot looks at a folder made through the mount (doveadm mailbox
    status makes its index: empty, another uidvalidity): the deliveries
    through the mount stay on it, before and after a save of Dovecot's
    into the folder and a remount, and a resync shows all to Dovecot."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    folder = os.path.join(mnt, ".D")
    os.mkdir(folder)
    for sub in ("tmp", "new", "cur"):
        os.mkdir(os.path.join(folder, sub))
    ours = deliver(folder, wtmp, 1, 3)
    chown_tree(root, *store_ids())
    out = da("mailbox", "status", "uidvalidity", "D").stdout.decode()
    uv = int(out.split("uidvalidity=")[1].split()[0])

    def our_uv():
        return index_rows(root, "SELECT uidvalidity FROM mailboxes WHERE "
                          "name = 'D'")[0][0]
    wait_for(lambda: our_uv() == uv, timeout=5, what="the follower")
    assert sorted(listed(folder)) == sorted(ours)
    ours += deliver(folder, wtmp, 1, 2, prefix="x")
    assert sorted(listed(folder)) == sorted(ours)

    text = b"Subject: from dovecot\n\ninto the folder of the mount\n"
    chown_tree(root, *store_ids())
    if da("save", "-m", "D", input=text, check=False).returncode != 0:
        assert fmt == "sdbox"      # "u.1 already exists, rebuilding index"
        da("save", "-m", "D", input=text)
    wait_for(lambda: text in texts_polled(folder).values(), timeout=5,
             what="Dovecot's message on the mount")
    shown = texts_of(folder)
    assert len(shown) == len(ours) + 1
    assert all(shown[n] == payload(n) for n in ours)
    m.stop()

    m = mounts(root, mnt, "takeover")
    assert texts_of(folder) == shown
    m.stop()
    view = dovecot_view(wtmp, root, fmt, "D")
    assert sorted(t for _, t in view.values()) == \
        sorted([payload(n) for n in ours] + [text])


def all_names(folder):
    return [(sub, n) for sub in ("new", "cur")
            for n in os.listdir(os.path.join(folder, sub))]


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecot_flag_change_onto_another_name(wtmp, mounts, fmt):
    """Two messages delivered through the mount under one BASE (cur/dup:2,S
    and cur/dup:2,F: two files of a maildir), then Dovecot gives them the
    same flags (its force-resync drops ours where Dovecot was not told of
    the deliveries; a flag change of its own does it where it was, sdbox):
    both names would be cur/dup:2,.  The follower gives the one it changes a base of its own
    (no message is hidden: Dovecot has both) and goes on following."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    texts = {}
    for flag in "SF":
        data = b"Subject: dup %s\n\nsame base\n" % flag.encode()
        with open(os.path.join(mnt, "tmp", "dup" + flag), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", "dup" + flag),
                  os.path.join(mnt, "cur", "dup:2," + flag))
        texts[flag] = data
    chown_tree(root, *store_ids())
    da.force_resync("INBOX")
    da("flags", "remove", "\\Seen \\Flagged", "mailbox", "INBOX", "all")
    want = sorted(list(ORIGINAL.values()) + list(texts.values()))

    def shown():
        names = all_names(mnt)
        data = []
        for sub, n in names:
            with open(os.path.join(mnt, sub, n), "rb") as f:
                data.append(f.read())
        return names, sorted(data)
    try:
        wait_for(lambda: not any(n.endswith((":2,S", ":2,F"))
                                 for _, n in all_names(mnt)), timeout=5,
                 what="Dovecot's flags (none) on the mount")
    except AssertionError:
        raise AssertionError((all_names(mnt), m.output()))
    names, data = shown()
    assert data == want, m.output()
    assert len(set(names)) == len(names)
    # the follower is not stuck on it: Dovecot's next change shows
    chown_tree(root, *store_ids())
    da("flags", "add", "\\Flagged", "mailbox", "INBOX", "all")
    wait_for(lambda: all(n.endswith(":2,F") for _, n in all_names(mnt)),
             timeout=5, what="Dovecot's flag on every message")
    assert shown()[1] == want


def dovecot_state(da):
    """{text: (mailbox, flags)} of every message as doveadm sees it."""
    return {m["text"]: (m["mailbox"], " ".join(sorted(m["flags"].split())))
            for m in da.fetch("mailbox flags text", "mailbox", "*")}


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_takeover_changes_handed_back_to_dovecot(wtmp, mounts, fmt):
    """What the mount changed in messages Dovecot knew goes into Dovecot's
    log (test_handback.py), a move into a folder made through the mount
    as well (the mount made Dovecot's index of it).  The documented way to hand back everything: copy the
    maildirs out of the mount while it is mounted, unmount, and let
    Dovecot make its store identical to the copy (doveadm backup -R
    maildir:COPY)."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    by_text = {}
    for sub, n in all_names(mnt):
        with open(os.path.join(mnt, sub, n), "rb") as f:
            by_text[f.read()] = (sub, n)
    texts = sorted(by_text)
    os.mkdir(os.path.join(mnt, ".Folder"))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".Folder", sub))
    sub, n = by_text[texts[0]]
    os.rename(os.path.join(mnt, sub, n), os.path.join(mnt, "cur", n + ":2,S"))
    sub, n = by_text[texts[1]]
    os.rename(os.path.join(mnt, sub, n),
              os.path.join(mnt, ".Folder", "cur", n + ":2,F"))
    sub, n = by_text[texts[2]]
    os.unlink(os.path.join(mnt, sub, n))
    copy = os.path.join(wtmp, "copy")
    shutil.copytree(mnt, copy)
    m.stop()
    chown_tree(wtmp, *store_ids())
    # without it: the flag, the expunge and the move into the folder the
    # mount made (Dovecot has its index) hold
    da.force_resync()
    got = dovecot_state(da)
    assert got[texts[0]] == ("INBOX", "\\Recent \\Seen")
    assert texts[2] not in got
    assert got[texts[1]][0] == "Folder"
    da("backup", "-R", "maildir:" + copy)
    got = {t: (b, f.replace("\\Recent", "").strip())
           for t, (b, f) in dovecot_state(da).items()}
    assert got == {texts[0]: ("INBOX", "\\Seen"),
                   texts[1]: ("Folder", "\\Flagged"),
                   texts[3]: ("INBOX", ""), texts[4]: ("INBOX", "")}


def plain_state(mnt, folder):
    """Every plain file and directory of a folder of the mount (all but
    its cur/ new/ tmp/ and the folders below it), with type, mode, size,
    mtime, inode number and bytes."""
    def skip(d, n):
        return n in ("cur", "new", "tmp") or \
            os.path.isdir(os.path.join(d, n, "cur"))
    return files_state(os.path.join(mnt, folder), skip, ino=True)


def tree_bytes(root):
    """Every path below root with its mode, size, mtime and bytes."""
    state = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            data = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    data = f.read()
            state[os.path.relpath(p, root)] = (st.st_mode, st.st_size,
                                               st.st_mtime_ns, data)
    return state


@pytest.mark.parametrize("fmt,layout", [("sdbox", "maildir++"),
                                        ("mdbox", "fs")])
def test_read_only_mount_shows_takeovers_plain_files(wtmp, mounts, fmt,
                                                     layout):
    """The plain files clients kept in the folders of a takeover mount
    (a state file, a dotfile with its own mode, a directory of them) are
    shown by a read-only mount of the same tree exactly as the takeover
    mount showed them: in the root (INBOX), in folders Dovecot had, in a
    folder made through the mount, in one renamed through the mount and
    in one Dovecot renamed after the takeover mount (the same mailbox:
    its GUID; not the one Dovecot made of its old name) and in one
    another program made while mounted (no GUID Dovecot has: by its
    name); the tree is left byte for byte as it was."""
    root, da = dovecot_store(wtmp, fmt)
    for box in ("A", "B/C", "Old", "Moved"):
        da("mailbox", "create", box)
    fs = layout == "fs"

    def folder(name):
        return name if fs else "" if name == "INBOX" else \
            "." + name.replace("/", ".")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", "layout=" + layout)
    os.mkdir(os.path.join(mnt, folder("Made")))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, folder("Made"), sub))
    # made by another program while mounted: no Dovecot index until the
    # next takeover mount's start, so no GUID Dovecot shares
    os.makedirs(os.path.join(root, "mailboxes", "Late", "dbox-Mails"))
    wait_for(lambda: os.path.isdir(os.path.join(mnt, folder("Late"), "cur")),
             what="the folder Late on the mount")
    boxes = ("INBOX", "A", "B/C", "Old", "Made", "Moved", "Late")
    for i, box in enumerate(boxes):
        top = os.path.join(mnt, folder(box))
        with open(os.path.join(top, ".mbsyncstate"), "wb") as f:
            f.write(b"state of %s\n" % box.encode())
        with open(os.path.join(top, ".uidvalidity"), "wb") as f:
            f.write(b"%d\n" % (1000 + i))
        os.chmod(os.path.join(top, ".uidvalidity"), 0o640)
        # (in the maildir++ root a ".name" directory is a folder)
        d = "notmuch" if folder(box) == "" else ".notmuch"
        os.mkdir(os.path.join(top, d))
        with open(os.path.join(top, d, "db"), "wb") as f:
            f.write(bytes(range(256)) * (i + 1))
        os.utime(os.path.join(top, ".mbsyncstate"),
                 ns=(10 ** 18 + i, 10 ** 18 + 7 * i))
    os.rename(os.path.join(mnt, folder("Old")),
              os.path.join(mnt, folder("New")))
    if fs:      # the fs layout's root is no folder: its own files
        with open(os.path.join(mnt, ".rootstate"), "wb") as f:
            f.write(b"root\n")
    taken = {box: plain_state(mnt, folder(box))
             for box in boxes if box != "Old"}
    taken["New"] = plain_state(mnt, folder("New"))
    # a folder's time is that of its plain files' directory
    times = {box: os.stat(os.path.join(mnt, folder(box))).st_mtime_ns
             for box in taken if folder(box) != ""}
    if fs:
        taken[".rootstate"] = os.stat(os.path.join(mnt, ".rootstate"))
    m.stop()
    # Dovecot renames one and makes another of its old name, which is
    # another mailbox, with none of the files
    da = Doveadm(wtmp, root, fmt)
    da("mailbox", "rename", "Moved", "Elsewhere")
    da("mailbox", "create", "Moved")
    taken["Elsewhere"] = taken.pop("Moved")
    taken["Moved"] = {}
    before = tree_bytes(root)
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(wtmp, "cache"))
    m = mounts(root, mnt, "ro", "layout=" + layout, env=env)
    shown = {box: plain_state(mnt, folder(box)) for box in taken
             if box != ".rootstate"}
    if fs:
        st = os.stat(os.path.join(mnt, ".rootstate"))
        was = taken.pop(".rootstate")
        assert (st.st_mode, st.st_size, st.st_mtime_ns) == \
            (was.st_mode, was.st_size, was.st_mtime_ns)
    assert shown == taken
    times["Elsewhere"] = times.pop("Moved")
    assert {box: os.stat(os.path.join(mnt, folder(box))).st_mtime_ns
            for box in times} == times
    m.stop()
    assert tree_bytes(root) == before


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_takeover_flags_on_names_in_new_stay(wtmp, mounts, fmt):
    """issue 10 item 2 on a taken-over store: a message Dovecot knew, in
    new/, renamed within new/ with flags (Dovecot's own maildir driver on
    the mount does it) stays in new/ under that name.  The mount handed the
    flag to Dovecot's index and then took Dovecot's state back, in which a
    flagged message is in cur/: the name moved to cur/ under the client,
    whose next rename (Dovecot adding a keyword) then found nothing."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    new = sorted(os.listdir(os.path.join(mnt, "new")))
    assert len(new) == 5
    x = new[0]
    os.rename(os.path.join(mnt, "new", x), os.path.join(mnt, "new", x + ":2,S"))
    want = sorted([x + ":2,S"] + new[1:])
    assert sorted(os.listdir(os.path.join(mnt, "new"))) == want
    assert os.listdir(os.path.join(mnt, "cur")) == []
    m.stop()
    m = mounts(root, mnt, "takeover")
    assert sorted(os.listdir(os.path.join(mnt, "new"))) == want
    assert os.listdir(os.path.join(mnt, "cur")) == []
    # and Dovecot has the flag
    m.stop()
    chown_tree(wtmp, *store_ids())
    flags = [mm["flags"] for mm in da.fetch("flags", "mailbox", "INBOX")]
    assert sum("\\Seen" in f.split() for f in flags) == 1


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_takeover_keywords_by_dovecots_maildir_driver_kept(wtmp, mounts, fmt):
    """Dovecot's maildir driver (doveadm as the mail user) on a taken-over
    store adds a keyword to a message Dovecot's dbox knew: it renames
    new/X to new/X:2,a first and writes the letter's name into
    dovecot-keywords after, so the name reaches the index only then; it
    must reach Dovecot's own index too (the letter was dropped from the
    name at once, later at the next mount, whose start takes Dovecot's
    keywords)."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover", "allow_other")
    md = Doveadm(os.path.join(wtmp, "md"), root, "maildir")
    md.root = mnt
    md("flags", "add", "$Label1", "mailbox", "INBOX", "uid", "1")

    def lettered():
        return [n for sub, n in all_names(mnt) if n.endswith(",a")]
    assert len(lettered()) == 1, all_names(mnt)
    m.stop()
    out = da("-f", "flow", "fetch", "uid flags", "mailbox", "INBOX",
             "uid", "1").stdout.decode()
    assert "$Label1" in out.split(), out
    mounts(root, mnt, "takeover", "allow_other")
    assert len(lettered()) == 1, all_names(mnt)
