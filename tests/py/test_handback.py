"""A Dovecot store taken over (-o takeover): what the mount changes in
messages Dovecot knows is handed back to Dovecot's own transaction log, so
that Dovecot, handed the store afterwards, sees exactly what the mount
showed: with no force-resync, after one, and on the next mount."""

import errno
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import threading

import pytest

from dboxfs_testlib import (DBOXFS, Doveadm, chown_tree, dboxctl,
                            make_maildir, mounts,
                            needs_dovecot,
                            store_ids, wait_for, wtmp)  # noqa: F401
from test_dovecot_view import LETTERS, doveadm_flags, view_of, view_polled
from test_takeover import all_names, dovecot_store, index_rows

pytestmark = [needs_dovecot,
              pytest.mark.skipif(not os.path.exists(DBOXFS),
                                 reason="dboxfs not built")]


def guid_of(path):
    return os.getxattr(path, "user.dbox.guid").decode()


def names_by_guid(mnt):
    return {guid_of(os.path.join(mnt, sub, n)): (sub, n)
            for sub, n in all_names(mnt)}


def letters(mnt):
    """{keyword name: maildir letter} of the mount's INBOX."""
    res = {}
    with open(os.path.join(mnt, "dovecot-keywords")) as f:
        for line in f:
            idx, name = line.rstrip("\n").split(" ", 1)
            res[name] = chr(ord("a") + int(idx))
    return res


def set_info(mnt, names, guid, info):
    sub, n = names[guid]
    new = n.split(":2,")[0] + ":2," + "".join(sorted(info))
    os.rename(os.path.join(mnt, sub, n), os.path.join(mnt, "cur", new))


def inbox_guids(da):
    """Dovecot's INBOX: each message's GUID by its uid."""
    return {int(m["uid"]): m["guid"]
            for m in da.fetch("uid guid", "mailbox", "INBOX")}


def make_folder(mnt, folder):
    """A maildir++ folder made through the mount, as a client makes it."""
    for sub in ("", "/cur", "/new", "/tmp"):
        os.mkdir(os.path.join(mnt, folder + sub))


def dovecot_inbox(da):
    chown_tree(da.root, *store_ids())   # what the mount wrote
    return doveadm_flags(da.fetch("uid flags mailbox guid", "mailbox",
                                  "INBOX")).get("INBOX", {})


def changed_store(wtmp, mounts, fmt):
    """A Dovecot store whose INBOX has keywords and flags of Dovecot's,
    changed through a takeover mount: returns (root, da, mnt, the mount's
    view of INBOX)."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    da("flags", "add", "$Label1 Work", "mailbox", "INBOX", "uid", "1")
    da("flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "2")
    da("flags", "add", "\\Answered Work", "mailbox", "INBOX", "uid", "5")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    kw = letters(mnt)
    set_info(mnt, names, by_uid[1], "F" + kw["$Label1"])   # -Work +F
    set_info(mnt, names, by_uid[2], "")                    # -\Seen
    set_info(mnt, names, by_uid[3], "RS" + kw["Work"])     # +RS +Work
    set_info(mnt, names, by_uid[4], kw["$Label1"] + kw["Work"])
    shown = view_of(mnt, "INBOX")
    names = names_by_guid(mnt)
    # a change of Dovecot's after ours: the follower has read our records
    # back by the time it shows, and changed nothing of ours
    chown_tree(root, *store_ids())
    da("flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", "5")
    wait_for(lambda: "\\Flagged" in (view_polled(mnt, "INBOX") or {}).get(
        by_uid[5], ()),
             timeout=30, what="Dovecot's flag on the mount")
    shown[by_uid[5]].add("\\Flagged")
    assert view_of(mnt, "INBOX") == shown
    now = names_by_guid(mnt)
    del now[by_uid[5]], names[by_uid[5]]
    assert now == names
    m.stop()
    assert "not handed back" not in m.output()
    return root, da, mnt, shown


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_flags_and_keywords_handed_back(wtmp, mounts, fmt):
    """Flags and keywords set and cleared through the mount: doveadm
    shows them without a resync, after force-resync, and the next mount
    shows the same names."""
    root, da, mnt, shown = changed_store(wtmp, mounts, fmt)
    assert dovecot_inbox(da) == shown
    da.force_resync()
    assert dovecot_inbox(da) == shown
    m = mounts(root, mnt, "takeover")
    assert view_of(mnt, "INBOX") == shown
    m.stop()
    assert dovecot_inbox(da) == shown


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_flag_changes_in_a_row_while_listed(wtmp, mounts, fmt):
    """Flag changes through the mount and Dovecot's, one after the other,
    while a client lists the folder all along: each of ours is Dovecot's
    at once, each of Dovecot's shows on the mount, and no listing ever
    shows a message with flags other than its last or next ones (the
    follower reading our own records back changes nothing); a name
    Dovecot's change replaced is gone within a second, also when the
    listing met the new one first.  A message Dovecot renames can be
    gone under the name just listed (ENOENT, as in a maildir): a poll of
    the listing lists again (view_polled); a plain view_of there failed
    in CI's test_flags_and_keywords_handed_back."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    da("flags", "add", "$Label1 Work", "mailbox", "INBOX", "uid", "1")
    da("flags", "add", "\\Answered Work", "mailbox", "INBOX", "uid", "5")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    kw = letters(mnt)
    # each keeps a keyword: the message stays in cur/ all along
    ours = ["F" + kw["Work"], "S" + kw["$Label1"], "RS" + kw["Work"],
            kw["$Label1"] + kw["Work"], "DT" + kw["Work"]]
    states = [view_of(mnt, "INBOX")]   # what each change leads to
    bad, polls = [], [0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            first = len(states)
            try:
                got = view_polled(mnt, "INBOX")
            except OSError as e:
                bad.append(e)
                return
            # the state done before the listing began, or one after
            may = states[max(0, first - 2):len(states)]
            polls[0] += got is not None
            for guid, flags in (got or {}).items():
                if all(s[guid] != flags for s in may):
                    bad.append((guid, flags, [s[guid] for s in may]))
    t = threading.Thread(target=poll)
    t.start()
    try:
        for i in range(24):
            nxt = {g: set(f) for g, f in states[-1].items()}
            if i % 2 == 0:
                info = ours[i // 2 % len(ours)]
                nxt[by_uid[1]] = {LETTERS[c] for c in info if c.isupper()} \
                    | {n for n, c in kw.items() if c in info}
                states.append(nxt)
                set_info(mnt, names_by_guid(mnt), by_uid[1], info)
                assert dovecot_inbox(da) == nxt
            else:
                nxt[by_uid[5]] ^= {"\\Flagged"}
                was = os.path.join(mnt, *names_by_guid(mnt)[by_uid[5]])
                states.append(nxt)
                da("flags", "add" if "\\Flagged" in nxt[by_uid[5]] else
                   "remove", "\\Flagged", "mailbox", "INBOX", "uid", "5")
                wait_for(lambda: view_polled(mnt, "INBOX") == nxt,
                         timeout=30, what="Dovecot's change on the mount")
                # its old name too, though the listing met the new one
                # before the follower checked the kernel's names
                wait_for(lambda: not os.path.lexists(was), timeout=5,
                         what="the name before Dovecot's change gone")
            assert view_of(mnt, "INBOX") == nxt
    finally:
        stop.set()
        t.join()
    assert not bad
    assert polls[0] > 0
    m.stop()
    assert "not handed back" not in m.output()
    assert dovecot_inbox(da) == states[-1]


def info_of(mnt, guid):
    """The flag letters of the mount's name of message guid (None while
    Dovecot renames it: listed again)."""
    try:
        sub, n = names_by_guid(mnt)[guid]
    except (FileNotFoundError, KeyError):
        return None
    return n.split(":2,", 1)[1] if ":2," in n else ""


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_passed_flag_kept_across_dovecots_changes(wtmp, mounts, fmt):
    """The maildir P flag set through the mount: as over a native maildir,
    Dovecot shows no flag for it (its maildir driver ignores P, and keeps
    it in the name when it changes other flags), and the mount keeps it
    across Dovecot's own later flag change of the message and across a
    remount."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    before = dovecot_inbox(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    set_info(mnt, names_by_guid(mnt), by_uid[2], "PS")
    assert info_of(mnt, by_uid[2]) == "PS"
    want = {g: set(f) for g, f in before.items()}
    want[by_uid[2]].add("\\Seen")
    assert dovecot_inbox(da) == want
    da("flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", "2")
    want[by_uid[2]].add("\\Flagged")
    wait_for(lambda: "F" in (info_of(mnt, by_uid[2]) or ""), timeout=30,
             what="Dovecot's flag on the mount")
    assert info_of(mnt, by_uid[2]) == "FPS"
    assert dovecot_inbox(da) == want
    m.stop()
    assert "not handed back" not in m.output()
    m = mounts(root, mnt, "takeover")
    assert info_of(mnt, by_uid[2]) == "FPS"
    # a change of P alone through the mount writes nothing for Dovecot
    set_info(mnt, names_by_guid(mnt), by_uid[2], "FS")
    assert dovecot_inbox(da) == want
    m.stop()
    assert "not handed back" not in m.output()
    da.force_resync()
    assert dovecot_inbox(da) == want


def stored_bytes(root):
    """Every byte of the store's message files."""
    data = b""
    for d, _, files in os.walk(root):
        for n in files:
            if n.startswith(("m.", "u.")):
                with open(os.path.join(d, n), "rb") as f:
                    data += f.read()
    return data


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_expunges_handed_back(wtmp, mounts, fmt):
    """Messages removed through the mount are gone for Dovecot too, with
    no resync, after one and on the next mount; mdbox: the map no longer
    counts them, so doveadm purge frees their bytes."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    for uid in (2, 4):
        os.unlink(os.path.join(mnt, *names[by_uid[uid]]))
    shown = view_of(mnt, "INBOX")
    assert set(shown) == {by_uid[1], by_uid[3], by_uid[5]}
    m.stop()
    assert "not handed back" not in m.output()
    assert dovecot_inbox(da) == shown
    texts = {t["guid"]: t["text"] for t in da.fetch("guid text", "mailbox",
                                                     "INBOX")}
    assert set(texts) == set(shown)
    if fmt == "mdbox":
        gone = b"Subject: m1\n"
        assert gone in stored_bytes(root)
        da("purge")
        assert gone not in stored_bytes(root)
        assert b"Subject: m0\n" in stored_bytes(root)
    da.force_resync()
    assert dovecot_inbox(da) == shown
    m = mounts(root, mnt, "takeover")
    assert view_of(mnt, "INBOX") == shown
    m.stop()


def dovecot_all(da):
    chown_tree(da.root, *store_ids())
    return doveadm_flags(da.fetch("uid flags mailbox guid", "mailbox", "*"))


def mount_all(mnt):
    return {box: view_of(mnt, box) for box in ("INBOX", "Folder")}


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_moves_handed_back(wtmp, mounts, fmt):
    """Messages moved through the mount between two folders Dovecot has
    (with a flag change on the way) are in their new folder for Dovecot,
    once: with no resync, after one, after a purge (mdbox: the map still
    counts them) and on the next mount."""
    root, da = dovecot_store(wtmp, fmt)
    da("mailbox", "create", "Folder")
    da("save", "-m", "Folder", input=b"Subject: f0\n\nin Folder\n")
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    for uid, info in ((1, "F"), (3, ""), (4, "")):
        base = names[by_uid[uid]][1].split(":2,")[0]
        os.rename(os.path.join(mnt, *names[by_uid[uid]]),
                  os.path.join(mnt, ".Folder", "cur", base + ":2," + info))
    # and back at once, before the mount followed its own append
    base = names[by_uid[4]][1].split(":2,")[0]
    os.rename(os.path.join(mnt, ".Folder", "cur", base + ":2,"),
              os.path.join(mnt, "cur", base + ":2,R"))
    f0 = [(sub, n) for sub, n in all_names(os.path.join(mnt, ".Folder"))
          if guid_of(os.path.join(mnt, ".Folder", sub, n)) not in
          (by_uid[1], by_uid[3], by_uid[4])]
    (sub, n), = f0
    os.rename(os.path.join(mnt, ".Folder", sub, n),
              os.path.join(mnt, "cur", n.split(":2,")[0] + ":2,S"))
    shown = mount_all(mnt)
    assert len(shown["INBOX"]) == 4 and len(shown["Folder"]) == 2
    m.stop()
    assert "not handed back" not in m.output()
    assert dovecot_all(da) == shown
    texts = da.fetch("guid text", "mailbox", "*")
    assert len(texts) == 6 and all(t["text"] for t in texts)
    if fmt == "mdbox":
        da("purge")
        assert len(da.fetch("guid text", "mailbox", "*")) == 6
        assert dovecot_all(da) == shown
    da.force_resync()
    assert dovecot_all(da) == shown
    m = mounts(root, mnt, "takeover")
    assert mount_all(mnt) == shown
    m.stop()


def test_sdbox_deliveries_handed_back(wtmp, mounts):
    """sdbox: messages delivered through the mount into a folder Dovecot
    has are in Dovecot's index with their flags, with no resync (their
    u.N files are Dovecot's format already); after one, and on the next
    mount, the same."""
    root, da = dovecot_store(wtmp, "sdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    sent = {}
    for name, dest in (("d1", "new/d1"), ("d2", "cur/d2:2,FS"),
                       ("d3", "cur/d3:2,")):
        data = b"Subject: %s\n\ndelivered through the mount\n" % name.encode()
        with open(os.path.join(mnt, "tmp", name), "wb") as f:
            f.write(data)
        os.rename(os.path.join(mnt, "tmp", name), os.path.join(mnt, dest))
        sent[name] = data
    # changed right after the delivery, before the mount followed its
    # own append
    os.rename(os.path.join(mnt, "new", "d1"), os.path.join(mnt, "cur",
                                                           "d1:2,S"))
    os.rename(os.path.join(mnt, "cur", "d3:2,"), os.path.join(mnt, "cur",
                                                            "d3:2,R"))
    shown = view_of(mnt, "INBOX")
    assert len(shown) == 8
    names = all_names(mnt)
    chown_tree(root, *store_ids())
    da("flags", "add", "\\Draft", "mailbox", "INBOX", "uid", "1")
    wait_for(lambda: len([n for _, n in all_names(mnt) if ":2,D" in n]) == 1,
             timeout=30, what="Dovecot's flag on the mount")
    # only Dovecot's change moved a name: ours stayed as they were
    gone, new = set(names) - set(all_names(mnt)), \
        set(all_names(mnt)) - set(names)
    assert len(gone) == 1 and len(new) == 1 and ":2,D" in new.pop()[1]
    shown = view_of(mnt, "INBOX")
    m.stop()
    assert "not handed back" not in m.output()
    assert dovecot_inbox(da) == shown
    texts = [t["text"] for t in da.fetch("text", "mailbox", "INBOX")]
    assert all(d in texts for d in sent.values())
    da.force_resync()
    assert dovecot_inbox(da) == shown
    m = mounts(root, mnt, "takeover")
    assert view_of(mnt, "INBOX") == shown
    m.stop()


def deliver(mnt, box, name, dest):
    """A message written through the mount into box (maildir++ path, ""
    for INBOX): returns its bytes."""
    data = b"Subject: %s\n\ndelivered through the mount\n" % name.encode()
    with open(os.path.join(mnt, box, "tmp", name), "wb") as f:
        f.write(data)
    os.rename(os.path.join(mnt, box, "tmp", name),
              os.path.join(mnt, box, dest))
    return data


def dovecot_texts(da):
    """{(mailbox, uid): (guid, text)} of every message, as Dovecot
    reads it."""
    chown_tree(da.root, *store_ids())
    return {(t["mailbox"], int(t["uid"])): (t["guid"], t["text"])
            for t in da.fetch("mailbox uid guid text", "mailbox", "*")}


def mount_texts(mnt):
    """{(mailbox, uid): (guid, bytes)} of every message the mount shows."""
    res = {}
    for box, folder in (("INBOX", mnt), ("Folder", os.path.join(mnt,
                                                                ".Folder"))):
        for sub, n in all_names(folder):
            path = os.path.join(folder, sub, n)
            with open(path, "rb") as f:
                res[(box, int(os.getxattr(path, "user.dbox.uid")))] = (
                    os.getxattr(path, "user.dbox.guid").decode(), f.read())
    return res


def test_mdbox_deliveries_handed_back(wtmp, mounts):
    """mdbox: messages delivered through the mount into folders Dovecot
    has are in Dovecot's map and mailbox index with the mount's uids,
    flags and bytes, with no resync; after one, after a purge and on the
    next mount, the same."""
    root, da = dovecot_store(wtmp, "mdbox")
    da("mailbox", "create", "Folder")
    da("save", "-m", "Folder", input=b"Subject: f0\n\nin Folder\n")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    sent = {}
    for box, name, dest in (("", "d1", "new/d1"), ("", "d2", "cur/d2:2,FS"),
                            (".Folder", "d3", "cur/d3:2,"),
                            ("", "d4", "new/d4")):
        sent[name] = deliver(mnt, box, name, dest)
    # changed right after the delivery
    os.rename(os.path.join(mnt, "new", "d1"), os.path.join(mnt, "cur",
                                                           "d1:2,S"))
    shown = mount_all(mnt)
    assert len(shown["INBOX"]) == 8 and len(shown["Folder"]) == 2
    ours = mount_texts(mnt)
    m.stop()
    assert "not handed back" not in m.output()
    assert dovecot_all(da) == shown
    texts = dovecot_texts(da)
    assert texts == ours
    assert all(d in [t for _, t in texts.values()] for d in sent.values())
    da.force_resync()
    assert dovecot_all(da) == shown and dovecot_texts(da) == texts
    da("purge")
    assert dovecot_all(da) == shown and dovecot_texts(da) == texts
    m = mounts(root, mnt, "takeover")
    assert mount_all(mnt) == shown
    m.stop()


def test_mdbox_delivery_onto_unsynced_map_is_left_to_resync(wtmp, mounts):
    """mdbox: a delivery while Dovecot's map log has a change its backend
    has not synced is not handed back (a warning says so; nothing half
    written: Dovecot's INBOX and map stay as they were); the follower's
    tries to hand it back while mounted fail the same way and say so
    once, not at every try; Dovecot's force-resync then finds it with the
    mount's bytes, and the next mount shows what Dovecot shows."""
    root, da = dovecot_store(wtmp, "mdbox")
    before = {m["guid"] for m in da.fetch("guid", "mailbox", "INBOX")}
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    maplog = os.path.join(root, "storage", "dovecot.map.index.log")
    unsynced_map_change(root)
    size = os.path.getsize(maplog)
    data = deliver(mnt, "", "u1", "new/u1")
    shown = view_of(mnt, "INBOX")
    assert len(shown) == 6
    retry = "mailbox INBOX: deliveries not handed back"
    wait_for(lambda: retry in m.output(), timeout=10,
             what="the follower's try")
    # its later tries fail the same way, and say nothing
    data2 = deliver(mnt, "", "u2", "new/u2")
    shown = view_of(mnt, "INBOX")
    assert len(shown) == 7
    m.stop()
    assert m.output().count(retry) == 1
    assert m.output().count("a delivery not handed back") == 1
    assert os.path.getsize(maplog) == size
    assert set(dovecot_inbox(da)) == before
    da.force_resync()
    texts = [t["text"] for t in da.fetch("text", "mailbox", "INBOX")]
    assert data in texts and data2 in texts and len(texts) == 7
    after = dovecot_inbox(da)
    m = mounts(root, mnt, "takeover")
    assert view_of(mnt, "INBOX") == after
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_deliveries_dovecot_had_not_indexed_handed_back(wtmp, mounts, fmt):
    """A delivery into a folder of Dovecot's that was not handed back
    (sdbox: the folder's log was locked for over 10 s; mdbox: Dovecot's
    map log had a change its backend had not synced) is handed back when
    the next takeover mount opens the store; a message
    moved into that folder then, and a delivery, are too (not left to a
    resync): Dovecot shows exactly what the mount showed, with no resync,
    after one, after a purge and on the next mount."""
    root, da = dovecot_store(wtmp, fmt)
    da("mailbox", "create", "Folder")
    da("save", "-m", "Folder", input=b"Subject: f0\n\nin Folder\n")
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    if fmt == "mdbox":
        size = unsynced_map_change(root)
        deliver(mnt, ".Folder", "d1", "cur/d1:2,F")
    else:
        with open(os.path.join(root, "mailboxes", "Folder", "dbox-Mails",
                               "dovecot.index.log"), "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            try:
                deliver(mnt, ".Folder", "d1", "cur/d1:2,F")
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)
    m.stop()
    assert "a delivery not handed back" in m.output()
    if fmt == "mdbox":
        os.truncate(os.path.join(root, "storage", "dovecot.map.index.log"),
                    size)
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    os.rename(os.path.join(mnt, *names[by_uid[1]]),
              os.path.join(mnt, ".Folder", "cur", "moved:2,S"))
    deliver(mnt, ".Folder", "d2", "new/d2")
    shown = mount_all(mnt)
    assert len(shown["INBOX"]) == 4 and len(shown["Folder"]) == 4
    ours = mount_texts(mnt)
    m.stop()
    assert "not handed back" not in m.output()
    for step in ("no resync", "force-resync", "purge")[
            :3 if fmt == "mdbox" else 2]:
        if step == "force-resync":
            clean_resync(da)
        elif step == "purge":
            da("purge")
        assert dovecot_all(da) == shown, step
        assert dovecot_texts(da) == ours, step
    m = mounts(root, mnt, "takeover")
    assert mount_all(mnt) == shown
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_deliveries_not_handed_back_handed_back_while_mounted(wtmp, mounts,
                                                              fmt):
    """A delivery into a folder of Dovecot's that was not handed back
    (sdbox: the folder's log was locked for over 10 s; mdbox: Dovecot's
    map log had a change its backend had not synced), and a message moved
    into that folder after it, are handed back while still mounted once
    the lock is gone (mdbox: the map log is synced): Dovecot lists
    exactly what the mount shows (uids, GUIDs, flags, bytes; the message
    moved is no longer in INBOX), with no resync; a delivery after that
    is handed back at once; force-resync and the next mount keep it
    all."""
    root, da = dovecot_store(wtmp, fmt)
    da("mailbox", "create", "Folder")
    da("save", "-m", "Folder", input=b"Subject: f0\n\nin Folder\n")
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    if fmt == "mdbox":
        size = unsynced_map_change(root)
        deliver(mnt, ".Folder", "d1", "cur/d1:2,F")
        os.rename(os.path.join(mnt, *names[by_uid[1]]),
                  os.path.join(mnt, ".Folder", "cur", "moved:2,S"))
        os.truncate(os.path.join(root, "storage", "dovecot.map.index.log"),
                    size)
    else:
        with open(box_log(root, "Folder"), "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            try:
                deliver(mnt, ".Folder", "d1", "cur/d1:2,F")
                os.rename(os.path.join(mnt, *names[by_uid[1]]),
                          os.path.join(mnt, ".Folder", "cur", "moved:2,S"))
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)
    assert "a delivery not handed back" in m.output()
    shown = mount_all(mnt)
    assert len(shown["INBOX"]) == 4 and len(shown["Folder"]) == 3
    ours = mount_texts(mnt)
    wait_for(lambda: dovecot_all(da) == shown, timeout=30,
             what="Dovecot lists what the mount shows")
    assert dovecot_texts(da) == ours
    assert mount_all(mnt) == shown and mount_texts(mnt) == ours
    deliver(mnt, ".Folder", "d2", "new/d2")
    shown = mount_all(mnt)
    ours = mount_texts(mnt)
    assert dovecot_all(da) == shown and dovecot_texts(da) == ours
    m.stop()
    assert "deliveries Dovecot had not indexed handed back" in m.output()
    clean_resync(da)
    assert dovecot_all(da) == shown and dovecot_texts(da) == ours
    m = mounts(root, mnt, "takeover")
    assert mount_all(mnt) == shown
    m.stop()


def test_dboxctl_purge_leaves_dovecots_map_alone(wtmp, mounts):
    """A taken-over mdbox: messages expunged through the mount are purged
    by Dovecot (whose map points into the m.N files by offset), not by
    dboxctl purge, which says so and changes nothing."""
    root, da = dovecot_store(wtmp, "mdbox")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    os.unlink(os.path.join(mnt, *sorted(names.values())[0]))
    m.stop()
    before = stored_bytes(root)
    res = dboxctl("--takeover", "purge", root, check=False)
    assert res.returncode != 0 and b"doveadm purge" in res.stderr
    assert stored_bytes(root) == before
    assert len(da.fetch("text", "mailbox", "INBOX")) == 4


@pytest.mark.parametrize("fmt", ["sdbox"])
def test_dovecots_log_lock_is_respected(wtmp, mounts, fmt):
    """While a Dovecot process holds the lock of the mailbox's log (an
    fcntl lock on dovecot.index.log, as Dovecot's writers take it), a flag
    change through the mount waits for it; once released, the change is
    in the log after the lock holder's."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    guid = sorted(names)[0]
    log = os.path.join(root, "mailboxes", "INBOX", "dbox-Mails",
                       "dovecot.index.log")
    done = threading.Event()
    with open(log, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        size = os.path.getsize(log)
        t = threading.Thread(target=lambda: (set_info(mnt, names, guid, "F"),
                                             done.set()))
        t.start()
        try:
            assert not done.wait(0.5), "the change did not wait"
            assert os.path.getsize(log) == size
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
            t.join(timeout=20)
    assert done.is_set()
    assert os.path.getsize(log) > size
    m.stop()
    assert "not handed back" not in m.output()
    assert dovecot_inbox(da)[guid] == {"\\Flagged"}


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_move_into_a_new_folder(wtmp, mounts, fmt):
    """A message moved into a folder that Dovecot had no index of (made
    by an older mount: its index files gone) leaves Dovecot's INBOX, so
    that the mount does not show it there again when it follows Dovecot's
    next change, and is in Dovecot's view of the new folder at once (the
    mount gave Dovecot an index of it when it opened the store); it stays
    there after force-resync (mdbox: not back in INBOX, where it was first
    saved), Dovecot's purge and a remount."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    make_folder(mnt, ".New")
    m.stop()
    drop_dovecot_index(root, "New")
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    os.rename(os.path.join(mnt, *names[by_uid[1]]),
              os.path.join(mnt, ".New", "cur", "moved:2,S"))
    set_info(mnt, names, by_uid[2], "F")    # Dovecot's INBOX log changes
    chown_tree(root, *store_ids())
    da("flags", "add", "\\Answered", "mailbox", "INBOX", "uid", "3")
    # (a listing may miss it while it moves from new/ to cur/)
    wait_for(lambda: "\\Answered" in (view_polled(mnt, "INBOX") or {}).get(
        by_uid[3], ()),
             timeout=30, what="Dovecot's flag on the mount")
    assert by_uid[1] not in view_of(mnt, "INBOX")
    assert view_of(mnt, "New") == {by_uid[1]: {"\\Seen"}}
    shown = {box: view_of(mnt, box) for box in ("INBOX", "New")}
    m.stop()
    assert "not handed back" not in m.output()
    assert {box: doveadm_flags_of(da, box) for box in shown} == shown
    clean_resync(da)
    assert {box: doveadm_flags_of(da, box) for box in shown} == shown
    if fmt == "mdbox":
        da("purge")
        assert {box: doveadm_flags_of(da, box) for box in shown} == shown
    m = mounts(root, mnt, "takeover")
    assert by_uid[1] not in view_of(mnt, "INBOX")
    assert view_of(mnt, "New") == {by_uid[1]: {"\\Seen"}}
    with open(os.path.join(mnt, ".New", "cur", "moved:2,S"), "rb") as f:
        assert f.read() == b"Subject: m0\n\nfrom the maildir\n"
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_made_through_the_mount_handed_back(wtmp, mounts, fmt):
    """A folder made through a takeover mount gets Dovecot's index with
    the mount's uidvalidity and GUID: Dovecot lists it, and what goes into
    it (a delivery, a move from INBOX, a flag change) is handed back like
    in any folder of Dovecot's: no resync, after one, and on the next
    mount the same."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    make_folder(mnt, ".New")
    deliver(mnt, ".New", "d1", "new/d1")
    names = names_by_guid(mnt)
    os.rename(os.path.join(mnt, *names[by_uid[1]]),
              os.path.join(mnt, ".New", "cur", "moved:2,S"))
    os.rename(os.path.join(mnt, ".New", "cur", "moved:2,S"),
              os.path.join(mnt, ".New", "cur", "moved:2,FS"))
    shown = {box: view_of(mnt, box) for box in ("INBOX", "New")}
    assert len(shown["New"]) == 2 and len(shown["INBOX"]) == 4
    ours = {}
    for sub, n in all_names(os.path.join(mnt, ".New")):
        path = os.path.join(mnt, ".New", sub, n)
        with open(path, "rb") as f:
            ours[int(os.getxattr(path, "user.dbox.uid"))] = (
                os.getxattr(path, "user.dbox.guid").decode(), f.read())
    m.stop()
    assert "not handed back" not in m.output()
    (guid, uv), = index_rows(root, "SELECT guid, uidvalidity FROM "
                             "mailboxes WHERE name = 'New'")
    chown_tree(root, *store_ids())
    assert "New" in da("mailbox", "list").stdout.decode().split()
    status = da("mailbox", "status", "guid uidvalidity uidnext messages",
                "New").stdout.decode()
    assert "guid=%s" % guid in status and "uidvalidity=%d" % uv in status
    assert "messages=2" in status and "uidnext=3" in status

    def dovecot_view():
        chown_tree(root, *store_ids())
        got = doveadm_flags(da.fetch("uid flags mailbox guid", "mailbox",
                                     "*"))
        return {box: got.get(box, {}) for box in ("INBOX", "New")}
    assert dovecot_view() == shown
    texts = {int(t["uid"]): (t["guid"], t["text"]) for t in
             da.fetch("uid guid text", "mailbox", "New")}
    assert texts == ours
    da.force_resync()
    assert dovecot_view() == shown
    status2 = da("mailbox", "status", "guid uidvalidity uidnext messages",
                 "New").stdout.decode()
    assert status2 == status
    if fmt == "mdbox":
        da("purge")
        assert dovecot_view() == shown
    m = mounts(root, mnt, "takeover")
    assert {box: view_of(mnt, box) for box in ("INBOX", "New")} == shown
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_made_then_filled_at_once_handed_back(wtmp, fmt):
    """What goes into a folder right after it is made is handed back even
    before a follower has looked at the list again (a mount's follower
    checks every 250 ms; under load a delivery right after the mkdir came
    first and was silently not handed back).  dboxctl follows nothing, so
    its import into a new folder shows it every time."""
    root, da = dovecot_store(wtmp, fmt)
    src = make_maildir(os.path.join(wtmp, "fresh-src"), {
        "1700000001.M1P1.h": b"Subject: one\n\nbody one\n",
        "1700000002.M2P1.h": b"Subject: two\n\nbody two\n"})
    r = dboxctl("import", "--takeover", root, "Fresh", src)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert b"not handed back" not in r.stderr
    chown_tree(root, *store_ids())
    status = da("mailbox", "status", "uidnext messages",
                "Fresh").stdout.decode()
    assert "messages=2" in status and "uidnext=3" in status, status
    texts = sorted(m["text"] for m in da.fetch("text", "mailbox", "Fresh"))
    assert texts == sorted([b"Subject: one\n\nbody one\n",
                            b"Subject: two\n\nbody two\n"]), texts


def unsynced_map_change(root):
    """Appends to Dovecot's map log a change its backend has not synced
    (an external HEADER_UPDATE of 4 bytes at offset 80 (0), with no
    tail-offset update after it): returns the log's size before."""
    maplog = os.path.join(root, "storage", "dovecot.map.index.log")
    size = os.path.getsize(maplog)
    with open(maplog, "ab") as f:
        f.write(bytes([0x80, 0x80, 0x80, 0x84]) +
                (0x10000020).to_bytes(4, "little") +
                (80 | 4 << 16).to_bytes(4, "little") + bytes(4))
    return size


def drop_dovecot_index(root, box):
    """Dovecot's index files of box removed (its messages stay)."""
    d = os.path.join(root, "mailboxes", box, "dbox-Mails")
    gone = [n for n in os.listdir(d) if n.startswith("dovecot.index")]
    assert "dovecot.index.log" in gone
    for n in gone:
        os.unlink(os.path.join(d, n))


def older_mount_folder(wtmp, mounts, fmt):
    """A folder Old as an older mount left it: made through a takeover
    mount, a message of INBOX moved in (with \\Seen) and a keyword
    Dovecot set on it, two deliveries (mdbox: not in Dovecot's map, whose
    log had a change its backend had not synced meanwhile), and a folder
    Old2 with one delivery of the same kind, then Dovecot's index files
    of both removed.  Returns (root, da, mnt, INBOX's GUIDs by uid)."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    make_folder(mnt, ".Old")
    names = names_by_guid(mnt)
    os.rename(os.path.join(mnt, *names[by_uid[1]]),
              os.path.join(mnt, ".Old", "cur", "moved:2,S"))
    chown_tree(root, *store_ids())
    da("flags", "add", "$Label1", "mailbox", "Old", "uid", "1")

    def labelled():
        try:    # the name may show before dovecot-keywords names it
            return "$Label1" in (view_polled(mnt, "Old") or {}).get(
                by_uid[1], ())
        except KeyError:
            return False
    wait_for(labelled, timeout=30, what="Dovecot's keyword on the mount")
    size = unsynced_map_change(root) if fmt == "mdbox" else None
    deliver(mnt, ".Old", "d1", "new/d1")
    deliver(mnt, ".Old", "d2", "cur/d2:2,FS")
    make_folder(mnt, ".Old2")
    deliver(mnt, ".Old2", "d4", "cur/d4:2,S")
    assert len(view_of(mnt, "Old")) == 3
    m.stop()
    if size is not None:
        os.truncate(os.path.join(root, "storage", "dovecot.map.index.log"),
                    size)
    drop_dovecot_index(root, "Old")
    drop_dovecot_index(root, "Old2")
    return root, da, mnt, by_uid


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_without_dovecots_index_handed_back(wtmp, mounts, fmt):
    """A folder that Dovecot has no index of (one an older mount left)
    gets Dovecot's index when a takeover mount opens the store, with the
    messages the mount shows in it; what goes into it then (a move from
    INBOX, a delivery) is handed back as into any folder of Dovecot's:
    Dovecot lists exactly the mount's messages (uids, GUIDs, flags,
    keywords, bytes), uidvalidity, GUID and uidnext with no resync;
    force-resync keeps them (mdbox: the message moved in is not back in
    INBOX), and so do a purge and the next mount; the same for a second
    such folder (mdbox: the map written for both at the start)."""
    root, da, mnt, by_uid = older_mount_folder(wtmp, mounts, fmt)
    m = mounts(root, mnt, "takeover")
    names = names_by_guid(mnt)
    os.rename(os.path.join(mnt, *names[by_uid[2]]),
              os.path.join(mnt, ".Old", "cur", "moved2:2,R"))
    deliver(mnt, ".Old", "d3", "cur/d3:2,S")
    shown = {box: view_of(mnt, box) for box in ("INBOX", "Old", "Old2")}
    assert len(shown["Old"]) == 5 and len(shown["INBOX"]) == 3
    assert len(shown["Old2"]) == 1
    assert shown["Old"][by_uid[1]] == {"\\Seen", "$Label1"}
    texts = {box: uid_texts(folder_path(mnt, "maildir++", box))
             for box in shown}
    m.stop()
    assert "not handed back" not in m.output()
    (guid, uv, uidnext), = index_rows(
        root, "SELECT guid, uidvalidity, next_uid FROM mailboxes "
        "WHERE name = 'Old'")
    status = "guid=%s uidvalidity=%d uidnext=%d messages=5" % (
        guid, uv, uidnext)

    def check():
        assert dovecot_list(da) == ["INBOX", "Old", "Old2"]
        assert {box: doveadm_flags_of(da, box) for box in shown} == shown
        assert {box: {u: (g, t) for u, (g, _, t) in
                      dovecot_box(da, box).items()} for box in texts} == texts
        assert sorted(dovecot_status(da, "Old").split()) == \
            sorted(status.split())
    check()
    clean_resync(da)
    check()
    if fmt == "mdbox":
        da("purge")
        check()
    m = mounts(root, mnt, "takeover")
    assert {box: view_of(mnt, box) for box in shown} == shown
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_directory_made_by_hand_handed_back(wtmp, mounts, fmt):
    """A mailbox directory made in the store by another program (sdbox:
    with a u.N file in it) is a folder Dovecot has no index of: the next
    takeover mount gives it one with what the mount shows in it, so that
    Dovecot lists the same, with the mount's uidvalidity and GUID, with
    no resync and after one."""
    root, da = dovecot_store(wtmp, fmt)
    d = os.path.join(root, "mailboxes", "Hand", "dbox-Mails")
    os.makedirs(d)
    if fmt == "sdbox":
        src = os.path.join(root, "mailboxes", "INBOX", "dbox-Mails", "u.1")
        with open(src, "rb") as f, open(os.path.join(d, "u.1"), "wb") as g:
            g.write(f.read())
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    shown = {box: view_of(mnt, box) for box in ("INBOX", "Hand")}
    assert len(shown["Hand"]) == (1 if fmt == "sdbox" else 0)
    m.stop()
    assert "not handed back" not in m.output()
    (guid, uv, uidnext), = index_rows(
        root, "SELECT guid, uidvalidity, next_uid FROM mailboxes "
        "WHERE name = 'Hand'")
    status = "guid=%s uidvalidity=%d uidnext=%d messages=%d" % (
        guid, uv, uidnext, len(shown["Hand"]))
    for step in ("no resync", "force-resync"):
        if step == "force-resync":
            clean_resync(da)
        assert dovecot_list(da) == ["Hand", "INBOX"]
        assert {box: doveadm_flags_of(da, box) for box in shown} == shown
        assert sorted(dovecot_status(da, "Hand").split()) == \
            sorted(status.split()), step


def box_log(root, box):
    return os.path.join(root, "mailboxes", box, "dbox-Mails",
                        "dovecot.index.log")


def mount_status(root, box, messages):
    """What doveadm mailbox status says of box when Dovecot has what the
    mount shows (the mount's uidvalidity, GUID and next uid)."""
    (guid, uv, uidnext), = index_rows(
        root, "SELECT guid, uidvalidity, next_uid FROM mailboxes "
        "WHERE name = ?", box)
    return sorted(("guid=%s uidvalidity=%d uidnext=%d messages=%d" % (
        guid, uv, uidnext, messages)).split())


def after_start(m):
    """What the mount logged once mounted (its start's warnings left
    out)."""
    out = m.output()
    return out[out.index("dboxfs: mounted "):]


def handed_back_while_mounted(root, box, timeout=30):
    """Waits (bounded) for the mount to give box Dovecot's first log; never
    asks Dovecot meanwhile (its own first look would index the folder
    itself)."""
    wait_for(lambda: os.path.exists(box_log(root, box)), timeout=timeout,
             what="Dovecot's index of %s made by the mount" % box)


def test_folder_without_dovecots_index_while_map_locked(wtmp, mounts):
    """mdbox: while a Dovecot process holds the lock of the map's log all
    through the mount's start, the mount waits 2 s for it (its start
    waits meanwhile), then says the folder is not handed back and writes
    nothing (no log of the folder, the map's log as it was) and shows the
    folder as before; once the lock is gone the mount hands it back while
    still mounted (the same view, no second warning), and Dovecot lists
    what the mount shows."""
    root, da, mnt, by_uid = older_mount_folder(wtmp, mounts, "mdbox")
    maplog = os.path.join(root, "storage", "dovecot.map.index.log")
    with open(maplog, "r+b") as f:
        before = f.read()
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            m = mounts(root, mnt, "takeover")
            shown = view_of(mnt, "Old")
            assert "mailbox Old: not handed back" in m.output()
            with open(maplog, "rb") as g:
                assert g.read() == before
            assert not os.path.exists(box_log(root, "Old"))
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)
    assert len(shown) == 3
    handed_back_while_mounted(root, "Old")
    assert view_of(mnt, "Old") == shown
    assert doveadm_flags_of(da, "Old") == shown
    assert doveadm_flags_of(da, "Old2") == view_of(mnt, "Old2")
    m.stop()
    assert "not handed back" not in after_start(m)
    m = mounts(root, mnt, "takeover")
    assert view_of(mnt, "Old") == shown
    m.stop()
    assert "not handed back" not in m.output()
    assert doveadm_flags_of(da, "Old") == shown


def test_folder_dovecot_is_indexing_left_to_it(wtmp, mounts):
    """A folder without an index whose first log Dovecot is making as the
    mount starts (its lock dovecot.index.log.newlock is there) is left to
    Dovecot: the mount says it is not handed back, makes no log and
    leaves Dovecot's lock while it is there; the lock gone, the mount
    hands the folder back while still mounted (the same view, no second
    warning), and Dovecot lists what the mount shows, also after
    force-resync and on the next mount."""
    root, da, mnt, by_uid = older_mount_folder(wtmp, mounts, "sdbox")
    d = os.path.join(root, "mailboxes", "Old", "dbox-Mails")
    lock = os.path.join(d, "dovecot.index.log.newlock")
    with open(lock, "wb") as f:
        f.write(b"%d:dovecot\n" % os.getpid())
    m = mounts(root, mnt, "takeover")
    shown = view_of(mnt, "Old")
    assert "mailbox Old: not handed back" in m.output()
    assert "Dovecot is making the log" in m.output()
    assert os.path.exists(lock)
    assert not os.path.exists(os.path.join(d, "dovecot.index.log"))
    os.unlink(lock)
    handed_back_while_mounted(root, "Old")
    assert view_of(mnt, "Old") == shown
    assert doveadm_flags_of(da, "Old") == shown
    m.stop()
    assert "not handed back" not in after_start(m)
    clean_resync(da)
    assert doveadm_flags_of(da, "Old") == shown
    m = mounts(root, mnt, "takeover")
    assert view_of(mnt, "Old") == shown
    m.stop()
    assert "not handed back" not in m.output()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_made_by_another_program_while_mounted_handed_back(
        wtmp, mounts, fmt):
    """A mailbox directory that another program makes in the store while
    a takeover mount runs (not Dovecot: no index of it follows) shows as
    a folder; what is delivered into it through the mount is handed back
    while mounted: the mount gives it Dovecot's first log with its
    messages, its view unchanged (uids, GUIDs, flags), and Dovecot lists
    exactly what the mount shows, with the mount's uidvalidity, GUID and
    uidnext, with no resync; a delivery after that is handed back at
    once; force-resync and the next mount keep it all."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    os.makedirs(os.path.join(root, "mailboxes", "Hand", "dbox-Mails"))
    folder = os.path.join(mnt, ".Hand")
    wait_for(lambda: os.path.isdir(os.path.join(folder, "new")),
             timeout=10, what="the folder on the mount")
    deliver(mnt, ".Hand", "h1", "new/h1")
    deliver(mnt, ".Hand", "h2", "cur/h2:2,FS")
    before = mount_box(folder)
    assert len(before) == 2
    handed_back_while_mounted(root, "Hand")
    assert mount_box(folder) == before
    deliver(mnt, ".Hand", "h3", "cur/h3:2,R")
    shown = mount_box(folder)
    assert len(shown) == 3
    status = mount_status(root, "Hand", 3)
    assert dovecot_box(da, "Hand") == shown
    assert sorted(dovecot_status(da, "Hand").split()) == status
    assert dovecot_list(da) == ["Hand", "INBOX"]
    m.stop()
    assert "not handed back" not in m.output()
    assert "mailbox Hand: Dovecot's index of it made" in m.output()
    clean_resync(da)
    assert dovecot_box(da, "Hand") == shown
    assert sorted(dovecot_status(da, "Hand").split()) == status
    m = mounts(root, mnt, "takeover")
    assert mount_box(folder) == shown
    m.stop()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folders_made_while_mounted_by_doveadm_and_by_hand(wtmp, mounts,
                                                           fmt):
    """While a takeover mount runs, doveadm mailbox create makes folders
    D1..D3 while another program makes mailbox directories H1..H3 at the
    same time, and a message is delivered into each through the mount as
    soon as it shows: Dovecot ends up with one index of each folder (its
    mailbox status, GUID and uidvalidity, is what the mount shows, every
    doveadm create succeeded), with every message the mount shows, with
    no resync; nothing is lost."""
    root, da = dovecot_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    chown_tree(root, *store_ids())
    made = []

    def create():
        for i in (1, 2, 3):
            made.append(da("mailbox", "create", "D%d" % i, check=False))
    t = threading.Thread(target=create)
    t.start()
    try:
        for i in (1, 2, 3):
            os.makedirs(os.path.join(root, "mailboxes", "H%d" % i,
                                     "dbox-Mails"))
    finally:
        t.join(timeout=120)
    assert not t.is_alive()
    assert [r.returncode for r in made] == [0, 0, 0], [r.stderr
                                                      for r in made]
    boxes = ["D1", "D2", "D3", "H1", "H2", "H3"]
    for box in boxes:
        folder = os.path.join(mnt, "." + box)
        wait_for(lambda: os.path.isdir(os.path.join(folder, "new")),
                 timeout=10, what="%s on the mount" % box)
        deliver(mnt, "." + box, "m-" + box, "cur/m-%s:2,S" % box)
    for box in boxes:
        handed_back_while_mounted(root, box)
    # Dovecot's own indexes, and the deliveries the follower found not
    # in them, read back
    shown = {box: mount_box(os.path.join(mnt, "." + box)) for box in boxes}
    assert all(len(msgs) == 1 for msgs in shown.values()), shown
    status = {box: mount_status(root, box, 1) for box in boxes}

    def dovecot_has_it():
        return all(dovecot_box(da, box) == shown[box] for box in boxes)
    wait_for(dovecot_has_it, timeout=30, what="Dovecot lists the mount's")
    for box in boxes:
        assert sorted(dovecot_status(da, box).split()) == status[box], box
    assert dovecot_list(da) == sorted(boxes + ["INBOX"])
    m.stop()
    assert "not handed back" not in m.output()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_with_damaged_dovecot_index_left_alone(wtmp, mounts, fmt):
    """A folder whose Dovecot index log is damaged (not one Dovecot can
    read) is no folder without an index: the mount leaves Dovecot's files
    of it as they are (Dovecot repairs its own) and still shows the
    folder (sdbox: from its u.N files; mdbox: the store from its files
    alone, as before)."""
    root, da, mnt, by_uid = older_mount_folder(wtmp, mounts, fmt)
    d = os.path.join(root, "mailboxes", "Old", "dbox-Mails")
    with open(os.path.join(d, "dovecot.index.log"), "wb") as f:
        f.write(b"not a log of Dovecot's\n" * 4)
    files = {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)}
    m = mounts(root, mnt, "takeover")
    assert len(view_of(mnt, "Old")) == 3
    m.stop()
    assert "mailbox Old: Dovecot's index of it made" not in m.output()
    assert {n: open(os.path.join(d, n), "rb").read()
            for n in os.listdir(d)} == files


def uid_texts(folder):
    """{uid: (guid, bytes)} of a folder of the mount."""
    res = {}
    for sub, n in all_names(folder):
        path = os.path.join(folder, sub, n)
        with open(path, "rb") as f:
            res[int(os.getxattr(path, "user.dbox.uid"))] = (guid_of(path),
                                                            f.read())
    return res


def doveadm_flags_of(da, box):
    """{guid: flags and keywords} of box as Dovecot has them."""
    chown_tree(da.root, *store_ids())
    return doveadm_flags(da.fetch("uid flags mailbox guid", "mailbox",
                                  box)).get(box, {})


IMAP_FLAG = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered",
             "S": "\\Seen", "T": "\\Deleted"}


def mount_box(folder):
    """{uid: (guid, flags, bytes)} of a folder of the mount (no
    keywords in these tests)."""
    res = {}
    for sub, n in all_names(folder):
        path = os.path.join(folder, sub, n)
        info = n.split(":2,", 1)[1] if ":2," in n else ""
        with open(path, "rb") as f:
            res[int(os.getxattr(path, "user.dbox.uid"))] = (
                guid_of(path), {IMAP_FLAG[c] for c in info}, f.read())
    return res


def dovecot_box(da, box):
    """{uid: (guid, flags, bytes)} of a mailbox, as Dovecot reads it."""
    chown_tree(da.root, *store_ids())
    return {int(t["uid"]): (t["guid"], set(t["flags"].split()) -
                            {"\\Recent"}, t["text"])
            for t in da.fetch("uid guid flags text", "mailbox", box)}


def dovecot_list(da):
    chown_tree(da.root, *store_ids())
    return sorted(da("mailbox", "list").stdout.decode().split())


def dovecot_status(da, box):
    """doveadm mailbox status of box, without the name."""
    chown_tree(da.root, *store_ids())
    out = da("mailbox", "status", "guid uidvalidity uidnext messages",
             box).stdout.decode()
    assert out.startswith(box + " ")
    return out[len(box) + 1:]


def folders_store(wtmp):
    """A Dovecot store (sdbox or mdbox by wtmp's caller) with INBOX and
    the mailboxes A (2 messages, one flagged by Dovecot), A/B (1) and
    Gone (1)."""
    def make(fmt):
        root, da = dovecot_store(wtmp, fmt)
        for box in ("A", "A/B", "Gone"):
            da("mailbox", "create", box)
        da("save", "-m", "A", input=b"Subject: a1\n\nfirst of A\n")
        da("save", "-m", "A", input=b"Subject: a2\n\nsecond of A\n")
        da("save", "-m", "A/B", input=b"Subject: b1\n\nin A/B\n")
        da("save", "-m", "Gone", input=b"Subject: g1\n\nin Gone\n")
        da("flags", "add", "\\Flagged", "mailbox", "A", "uid", "2")
        return root, da
    return make


def check_dovecot_sees(da, shown, status, by_guid=False):
    """Dovecot lists exactly the mailboxes the mount showed (and the
    parent A of A/B, which Dovecot lists and cannot select, as after its
    own delete of A), with their messages (uid, GUID, flags, bytes) and
    the status given."""
    parents = {"A"} - set(shown) if "A/B" in shown else set()
    assert dovecot_list(da) == sorted(set(shown) | parents)
    for box in parents:
        res = da("mailbox", "status", "messages", box, check=False)
        assert res.returncode != 0, res.stdout
    got = {box: dovecot_box(da, box) for box in shown}
    if by_guid:     # a replica numbers them its own way: GUID and bytes
        got = {box: {g: t for g, _, t in msgs.values()}
               for box, msgs in got.items()}
    assert got == shown
    for box, st in status.items():
        assert dovecot_status(da, box) == st


# what force-resync says on any store, also one only Dovecot wrote
RESYNC_SAYS = re.compile(rb"doveadm\(\w+\): Warning: ("
                         rb"\S+ .*: Rebuilding index|"
                         rb"fscking index file .*/dovecot\.map\.index|"
                         rb"mdbox .*: rebuilding indexes)$")


def clean_resync(da):
    """doveadm force-resync, which says nothing beyond what it says on
    a store only Dovecot wrote."""
    chown_tree(da.root, *store_ids())
    res = da.force_resync()
    lines = res.stderr.splitlines()
    assert res.stdout == b"" and lines, res.stderr
    assert all(RESYNC_SAYS.match(line) for line in lines), res.stderr


def folder_path(mnt, layout, box):
    if layout == "fs":
        return os.path.join(mnt, box)
    if box == "INBOX":
        return mnt
    return os.path.join(mnt, "." + box.replace("/", "."))


def rename_and_delete(wtmp, mounts, fmt, layout, before=None):
    """Through a takeover mount in a layout: a flag set in A, Gone's
    message moved to INBOX and Gone removed (rmdir), A renamed to C (the
    fs layout: with A/B below it; maildir++: A alone).  Returns (da,
    {mailbox: mount_box} as the mount showed them, Dovecot's status of C
    as it was of A, the remount).  before(da): called before the
    mount."""
    root, da = folders_store(wtmp)(fmt)
    if before is not None:
        before(da)
    status_a = dovecot_status(da, "A")
    mnt = os.path.join(wtmp, "mnt")
    opts = ["takeover"] + (["layout=fs"] if layout == "fs" else [])
    m = mounts(root, mnt, *opts)
    a = folder_path(mnt, layout, "A")
    (sub, n), = [(s, n) for s, n in all_names(a)
                 if int(os.getxattr(os.path.join(a, s, n),
                                    "user.dbox.uid")) == 1]
    os.rename(os.path.join(a, sub, n),
              os.path.join(a, "cur", n.split(":2,")[0] + ":2,S"))
    gone = folder_path(mnt, layout, "Gone")
    (sub, n), = all_names(gone)
    os.rename(os.path.join(gone, sub, n),
              os.path.join(folder_path(mnt, layout, "INBOX"), "cur", "g1:2,"))
    for sub in ("cur", "new", "tmp"):     # as rm -r does
        os.rmdir(os.path.join(gone, sub))
    os.rmdir(gone)
    os.rename(a, folder_path(mnt, layout, "C"))
    boxes = ["INBOX", "C", "A/B"] if layout == "maildir++" else \
        ["INBOX", "C", "C/B"]
    assert not os.path.exists(gone) and not os.path.exists(a)
    shown = {box: mount_box(folder_path(mnt, layout, box)) for box in boxes}
    assert len(shown["C"]) == 2 and len(shown["INBOX"]) == 6
    m.stop()
    assert "not handed back" not in m.output()
    return da, shown, status_a, lambda: mounts(root, mnt, *opts), mnt


@pytest.mark.parametrize("layout", ["maildir++", "fs"])
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_rename_and_delete_handed_back(wtmp, mounts, fmt, layout):
    """A folder renamed (with its messages) and one deleted (emptied, then
    rmdir) through a takeover mount: Dovecot lists exactly the mailboxes
    the mount showed, the renamed one with its GUID, uidvalidity, uidnext,
    messages, flags and bytes; force-resync changes nothing and says
    nothing; the next mount shows the same."""
    da, shown, status_a, remount, mnt = rename_and_delete(wtmp, mounts,
                                                          fmt, layout)
    status = {"C": status_a}
    assert "messages=2" in status_a and "uidnext=3" in status_a
    check_dovecot_sees(da, shown, status)
    clean_resync(da)
    check_dovecot_sees(da, shown, status)
    if fmt == "mdbox":
        da("purge")
        check_dovecot_sees(da, shown, status)
    m = remount()
    assert {box: mount_box(folder_path(mnt, layout, box))
            for box in shown} == shown
    m.stop()


def draft_shown(folder):
    """uid 1 of folder shows Dovecot's \\Draft (a listing may miss a
    message while Dovecot's change moves it from new/ to cur/)."""
    try:
        return "\\Draft" in mount_box(folder)[1][1]
    except (FileNotFoundError, KeyError):
        return False


@pytest.mark.parametrize("layout", ["maildir++", "fs"])
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_changes_in_a_renamed_folder_handed_back(wtmp, mounts, fmt, layout):
    """After a folder's rename through a takeover mount, what changes in
    it (a flag, a delivery, a move in from INBOX) is handed back to the
    renamed mailbox, Dovecot's own changes in it show on the mount, and a
    folder made anew under the old name is a mailbox of its own; a folder
    made through the mount is renamed or removed for Dovecot too."""
    root, da = folders_store(wtmp)(fmt)
    by_uid = inbox_guids(da)
    mnt = os.path.join(wtmp, "mnt")
    opts = ["takeover"] + (["layout=fs"] if layout == "fs" else [])
    m = mounts(root, mnt, *opts)
    a, c = folder_path(mnt, layout, "A"), folder_path(mnt, layout, "C")
    inbox = folder_path(mnt, layout, "INBOX")
    os.rename(a, c)
    for sub, n in all_names(c):
        if int(os.getxattr(os.path.join(c, sub, n), "user.dbox.uid")) == 2:
            os.rename(os.path.join(c, sub, n),
                      os.path.join(c, "cur", n.split(":2,")[0] + ":2,S"))
    deliver(c, "", "d1", "new/d1")
    names = names_by_guid(inbox)
    os.rename(os.path.join(inbox, *names[by_uid[1]]),
              os.path.join(c, "cur", "moved:2,R"))
    os.mkdir(a)
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(a, sub))
    deliver(a, "", "n1", "new/n1")
    # a folder made through the mount (its index is the mount's), filled,
    # renamed; another made and removed
    for box in ("Made", "Tmp"):
        for sub in ("", "cur", "new", "tmp"):
            os.mkdir(os.path.join(folder_path(mnt, layout, box), sub))
    deliver(folder_path(mnt, layout, "Made"), "", "m1", "cur/m1:2,S")
    os.rename(folder_path(mnt, layout, "Made"),
              folder_path(mnt, layout, "Renamed"))
    for sub in ("cur", "new", "tmp", ""):
        os.rmdir(os.path.join(folder_path(mnt, layout, "Tmp"), sub))
    chown_tree(root, *store_ids())
    da("flags", "add", "\\Draft", "mailbox", "C", "uid", "1")
    wait_for(lambda: draft_shown(c), timeout=30,
             what="Dovecot's flag in C on the mount")
    boxes = ["INBOX", "A", "C", "Gone", "Renamed"] + (
        ["A/B"] if layout == "maildir++" else ["C/B"])
    shown = {box: mount_box(folder_path(mnt, layout, box)) for box in boxes}
    assert len(shown["C"]) == 4 and len(shown["A"]) == 1
    assert len(shown["Renamed"]) == 1
    m.stop()
    assert "not handed back" not in m.output()
    check_dovecot_sees(da, shown, {})
    assert "messages=4 uidnext=5" in dovecot_status(da, "C")
    assert dovecot_status(da, "A").split(" guid=")[1] != \
        dovecot_status(da, "C").split(" guid=")[1]
    clean_resync(da)
    check_dovecot_sees(da, shown, {})
    m = mounts(root, mnt, *opts)
    assert {box: mount_box(folder_path(mnt, layout, box))
            for box in shown} == shown
    m.stop()


def make_replica(wtmp, fmt):
    """(path, doveadm on it, before) of a replica that before(da) makes
    with doveadm backup."""
    path = os.path.join(wtmp, "replica")
    rwork = os.path.join(wtmp, "rwork")
    os.makedirs(path)
    os.makedirs(rwork)
    rda = Doveadm(rwork, path, fmt)

    def before(da):
        da("backup", "%s:%s" % (fmt, path))
        assert dovecot_list(rda) == ["A", "A/B", "Gone", "INBOX"]
    return path, rda, before


@pytest.mark.parametrize("layout", ["maildir++", "fs"])
@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_rename_and_delete_reach_a_replica(wtmp, mounts, fmt, layout):
    """A folder deleted and one renamed through a takeover mount are in
    Dovecot's mailbox log (dovecot.mailbox.log) as Dovecot's own delete
    and rename are: a two-way doveadm sync with a replica made before the
    mount deletes and renames them there too, rather than bringing the
    deleted one back and the old name (as it did before)."""
    replica, rda, before = make_replica(wtmp, fmt)
    da, shown, status_a, _, _ = rename_and_delete(wtmp, mounts, fmt, layout,
                                                  before)
    chown_tree(replica, *store_ids())
    chown_tree(da.root, *store_ids())   # what the mount wrote
    da("sync", "%s:%s" % (fmt, replica))
    check_dovecot_sees(da, shown, {"C": status_a})
    # (by GUID and bytes: a doveadm sync with no state skips a mailbox
    # whose uidnext and highest modseq are the same on both sides, so a
    # flag changed after the backup, also by Dovecot itself, need not
    # reach the replica)
    check_dovecot_sees(rda, {box: {g: t for g, _, t in msgs.values()}
                             for box, msgs in shown.items()}, {}, by_guid=True)
    assert dovecot_status(rda, "C").split(" guid=")[1] == \
        status_a.split(" guid=")[1]


def mailbox_log(da):
    """Dovecot's own reading of its mailbox log: [(kind, GUID or name
    hash)]."""
    path = os.path.join(da.root, "dovecot.mailbox.log")
    if not os.path.exists(path):
        return []
    chown_tree(da.root, *store_ids())
    out = da("dump", path).stdout.decode().splitlines()
    return [tuple(line.split()[1:3]) for line in out if line.startswith("#")]


def name_hash(name):
    return hashlib.sha1(name.encode()).hexdigest()[:32]


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_refused_folder_changes_leave_dovecots_mailbox_log(wtmp, mounts,
                                                           fmt):
    """rmdir of a folder with messages and a rename onto a folder with
    messages fail as on a real maildir and write nothing into Dovecot's
    mailbox log; a delete and a rename that succeed write what Dovecot's
    own do, as `doveadm dump` reads it."""
    root, da = folders_store(wtmp)(fmt)
    guid_gone = dovecot_status(da, "Gone").split(" guid=")[1].strip()
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    (sub, n), = all_names(os.path.join(mnt, ".Gone"))
    for path in (os.path.join(mnt, ".Gone", sub), os.path.join(mnt, ".Gone")):
        with pytest.raises(OSError) as e:
            os.rmdir(path)
        assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(OSError) as e:
        os.rename(os.path.join(mnt, ".A"), os.path.join(mnt, ".Gone"))
    assert e.value.errno in (errno.ENOTEMPTY, errno.EEXIST)
    assert mailbox_log(da) == []
    os.unlink(os.path.join(mnt, ".Gone", sub, n))
    for sub in ("cur", "new", "tmp", ""):
        os.rmdir(os.path.join(mnt, ".Gone", sub))
    os.rename(os.path.join(mnt, ".A"), os.path.join(mnt, ".C"))
    m.stop()
    assert "not handed back" not in m.output()
    assert mailbox_log(da) == [("delete-mailbox", guid_gone),
                               ("delete-dir", name_hash("Gone")),
                               ("rename", name_hash("C"))]
    assert dovecot_list(da) == ["A", "A/B", "C", "INBOX"]


def dovecot_namespace(da, sep, prefix):
    """da's doveadm with Dovecot's namespace separator and prefix set."""
    conf = os.path.join(da.dir, "doveadm.conf")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("  separator = /\n", "  separator = %s\n"
                             "  prefix = %s\n" % (sep, prefix)))


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_folder_changes_hash_dovecots_namespace(wtmp, mounts, fmt):
    """With Dovecot's namespace separator "." and prefix "INBOX." (and the
    mount told so), a nested folder renamed and one deleted through the
    mount write into Dovecot's mailbox log the records Dovecot's own
    rename and delete write on a copy: their names hashed as Dovecot
    shows them (INBOX.A.D), not as the mount does (A/D); a doveadm sync
    with a replica then renames and deletes there too.  A separator
    that is not one printable character is refused at mount time."""
    root, da = folders_store(wtmp)(fmt)
    da("mailbox", "create", "A/E")
    guid_e = dovecot_status(da, "A/E").split(" guid=")[1].strip()
    copy = os.path.join(wtmp, "copy")
    shutil.copytree(root, copy, symlinks=True)
    dovecot_namespace(da, ".", "INBOX.")
    cda = Doveadm(os.path.join(wtmp, "cwork"), copy, fmt)
    dovecot_namespace(cda, ".", "INBOX.")
    cda("mailbox", "rename", "INBOX.A.B", "INBOX.A.D")
    cda("mailbox", "delete", "INBOX.A.E")
    replica = os.path.join(wtmp, "replica")
    os.makedirs(replica)
    rda = Doveadm(os.path.join(wtmp, "rwork"), replica, fmt)
    dovecot_namespace(rda, ".", "INBOX.")
    da("backup", "%s:%s" % (fmt, replica))
    mnt = os.path.join(wtmp, "mnt")
    os.makedirs(mnt)
    for bad in ("", "..", " ", "\u00e9"):
        p = subprocess.run([DBOXFS, root, mnt, "-o", "takeover,layout=fs,"
                            "dovecot_separator=" + bad],
                           capture_output=True, timeout=60)
        assert p.returncode != 0
        assert b"not one printable ASCII character" in p.stderr
        assert not os.path.ismount(mnt)
    m = mounts(root, mnt, "takeover", "layout=fs", "dovecot_separator=.",
               "dovecot_prefix=INBOX.")
    os.rename(os.path.join(mnt, "A", "B"), os.path.join(mnt, "A", "D"))
    for sub in ("cur", "new", "tmp", ""):
        os.rmdir(os.path.join(mnt, "A", "E", sub))
    m.stop()
    assert "not handed back" not in m.output()
    want = [("rename", name_hash("INBOX.A.D")),
            ("delete-mailbox", guid_e),
            ("delete-dir", name_hash("INBOX.A.E"))]
    assert sorted(mailbox_log(cda)) == sorted(want)
    assert mailbox_log(da) == want
    # and a two-way doveadm sync renames and deletes them in a replica
    # made before the mount, rather than bringing A.B and A.E back
    listed = ["INBOX", "INBOX.A", "INBOX.A.D", "INBOX.Gone"]
    assert dovecot_list(da) == listed
    chown_tree(replica, *store_ids())
    da("sync", "%s:%s" % (fmt, replica))
    assert dovecot_list(da) == listed
    assert dovecot_list(rda) == listed


def test_failed_import_hashes_dovecots_namespace(wtmp):
    """dboxctl --takeover given Dovecot's namespace (separator ".", prefix
    "INBOX."): the folder a failed import made and removes is in Dovecot's
    mailbox log by the hash of its name as Dovecot shows it (INBOX.X.Y);
    a separator of two characters is refused before the store is
    touched."""
    root, da = dovecot_store(wtmp, "sdbox")
    src = make_maildir(os.path.join(wtmp, "src"), {
        "1700000001.M1P1.h": b"Subject: one\n\nbody one\n"})
    ns = ["--takeover", "--dovecot-prefix=INBOX."]
    r = dboxctl("import", *ns, "--dovecot-separator=..", root, "X/Y", src,
                check=False)
    assert r.returncode == 1
    assert b"not one printable ASCII character" in r.stderr
    r = dboxctl("--fs=randomfail:eio:100%/posix", "import", *ns,
                "--dovecot-separator=.", root, "X/Y", src, check=False)
    assert r.returncode == 1 and b"Input/output error" in r.stderr
    assert b"not handed back" not in r.stderr
    dovecot_namespace(da, ".", "INBOX.")
    (kind, _), (kind_dir, hash_dir) = mailbox_log(da)
    assert (kind, kind_dir) == ("delete-mailbox", "delete-dir")
    assert hash_dir == name_hash("INBOX.X.Y")
    assert dovecot_list(da) == ["INBOX"]


@pytest.mark.parametrize("sep,prefix", [("/", ""), (".", "INBOX.")])
def test_folder_changes_hash_non_ascii_names(wtmp, mounts, sep, prefix):
    """Folders with non-ASCII names (mUTF-7 on disk, UTF-8 as Dovecot
    shows them and hashes them), names with mUTF-7's "&" and with "%"
    (which the maildir++ view escapes: not Dovecot's name), renamed and
    deleted through the mount, write into Dovecot's mailbox log the
    records Dovecot's own rename and delete write on a copy of the tree,
    with Dovecot's default namespace and with separator "." and prefix
    "INBOX.".  With separator ".", a new name with a "." in a part
    (mkdir, rename, in either layout; dboxctl import) is refused with
    EINVAL, writing nothing: Dovecot would take it as a level of folders
    ("a.b" as b in a) and could not open that mailbox; a folder of such
    a name that is there already still shows and can be renamed away."""
    root, da = dovecot_store(wtmp, "sdbox")
    for box in ("Entw\u00fcrfe", "\u65e5\u672c/\u5b50", "a&b", "&-",
                "\u03a9 \u00e9", "old.one", "50%"):
        da("mailbox", "create", box)
    copy = os.path.join(wtmp, "copy")
    shutil.copytree(root, copy, symlinks=True)
    dovecot_namespace(da, sep, prefix)
    cda = Doveadm(os.path.join(wtmp, "cwork"), copy, "sdbox")
    dovecot_namespace(cda, sep, prefix)

    def v(name):
        return prefix + name.replace("/", sep)
    cda("mailbox", "rename", v("Entw\u00fcrfe"), v("Brouillons \u00e9"))
    cda("mailbox", "rename", v("\u65e5\u672c/\u5b50"),
        v("\u65e5\u672c/\u5b6b"))
    cda("mailbox", "rename", v("&-"), v("&&"))
    cda("mailbox", "rename", v("50%"), v("%25 \u00e9&"))
    cda("mailbox", "delete", v("a&b"))
    cda("mailbox", "delete", v("\u03a9 \u00e9"))
    mnt = os.path.join(wtmp, "mnt")
    ns = ("dovecot_separator=" + sep, "dovecot_prefix=" + prefix)
    m = mounts(root, mnt, "takeover", "layout=fs", *ns)
    os.rename(os.path.join(mnt, "Entw\u00fcrfe"),
              os.path.join(mnt, "Brouillons \u00e9"))
    os.rename(os.path.join(mnt, "\u65e5\u672c", "\u5b50"),
              os.path.join(mnt, "\u65e5\u672c", "\u5b6b"))
    os.rename(os.path.join(mnt, "&-"), os.path.join(mnt, "&&"))
    os.rename(os.path.join(mnt, "50%"), os.path.join(mnt, "%25 \u00e9&"))
    for box in ("a&b", "\u03a9 \u00e9"):
        for sub in ("cur", "new", "tmp", ""):
            os.rmdir(os.path.join(mnt, box, sub))
    bad = sep == "."
    if bad:
        for call, args in ((os.mkdir, ("x.y",)),
                           (os.mkdir, ("\u65e5\u672c/s.t",)),
                           (os.rename, ("&&", "q.r")),
                           (os.rename, ("\u65e5\u672c", "a.\u65e5"))):
            with pytest.raises(OSError) as e:
                call(*[os.path.join(mnt, a) for a in args])
            assert e.value.errno == errno.EINVAL
    else:
        os.mkdir(os.path.join(mnt, "x.y"))
    assert os.path.isdir(os.path.join(mnt, "old.one", "cur"))
    m.stop()
    assert "not handed back" not in m.output()
    theirs = mailbox_log(cda)
    assert len(theirs) == 8
    assert sorted(mailbox_log(da)) == sorted(theirs)
    assert dovecot_list(da) == sorted(dovecot_list(cda) +
                                      ([] if bad else ["x.y"]))
    if not bad:
        return
    m = mounts(root, mnt, "takeover", *ns)
    with pytest.raises(OSError) as e:
        os.mkdir(os.path.join(mnt, ".x%2Ey"))
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        os.rename(os.path.join(mnt, ".&&"), os.path.join(mnt, ".q%2Er"))
    assert e.value.errno == errno.EINVAL
    os.rename(os.path.join(mnt, ".old%2Eone"), os.path.join(mnt, ".old"))
    m.stop()
    src = make_maildir(os.path.join(wtmp, "src"), {
        "1700000001.M1P1.h": b"Subject: one\n\nbody one\n"})
    r = dboxctl("import", "--takeover", "--dovecot-separator=.",
                "--dovecot-prefix=INBOX.", root, "X.Z", src, check=False)
    assert r.returncode == 1
    assert b"hierarchy separator '.'" in r.stderr
    listed = dovecot_list(da)
    assert "INBOX.old" in listed and "INBOX.old.one" not in listed


class BrokencharDoveadm(Doveadm):
    """doveadm with BROKENCHAR=~ in its mail_location."""

    def __call__(self, *args, **kw):
        root = self.root
        self.root = root + ":BROKENCHAR=~"
        try:
            return super().__call__(*args, **kw)
        finally:
            self.root = root


def test_folder_changes_hash_dovecots_brokenchar(wtmp, mounts):
    """Dovecot with BROKENCHAR=~ (mail_location) shows "~" and its
    separator "." inside a name escaped ("t~7eu", "v~2ew"): with
    dovecot_brokenchar=~ given, folders with such names renamed and
    deleted through the mount write into Dovecot's mailbox log the
    records Dovecot's own rename and delete write on a copy of the
    tree, and a name with "." in it is one Dovecot can have then (not
    refused).  A BROKENCHAR that is not one printable character other
    than "&" and the separator is refused at mount time."""
    root, da = dovecot_store(wtmp, "sdbox")
    for box in ("t~u", "v.w", "Entw\u00fcrfe~"):
        da("mailbox", "create", box)
    copy = os.path.join(wtmp, "copy")
    shutil.copytree(root, copy, symlinks=True)
    da = BrokencharDoveadm(wtmp, root, "sdbox")
    dovecot_namespace(da, ".", "INBOX.")
    cda = BrokencharDoveadm(os.path.join(wtmp, "cwork"), copy, "sdbox")
    dovecot_namespace(cda, ".", "INBOX.")
    assert dovecot_list(cda) == ["INBOX", "INBOX.Entw\u00fcrfe~7e",
                                 "INBOX.t~7eu", "INBOX.v~2ew"]
    cda("mailbox", "rename", "INBOX.t~7eu", "INBOX.n~7em~2eo")
    cda("mailbox", "rename", "INBOX.Entw\u00fcrfe~7e", "INBOX.\u00e9~2e~7e")
    cda("mailbox", "delete", "INBOX.v~2ew")
    mnt = os.path.join(wtmp, "mnt")
    os.makedirs(mnt)
    ns = ["takeover", "layout=fs", "dovecot_separator=.",
          "dovecot_prefix=INBOX."]
    for bad in ("", "~~", "&", ".", "\u00e9"):
        p = subprocess.run([DBOXFS, root, mnt, "-o", ",".join(
            ns + ["dovecot_brokenchar=" + bad])], capture_output=True,
            timeout=60)
        assert p.returncode != 0
        assert b"BROKENCHAR" in p.stderr
        assert not os.path.ismount(mnt)
    m = mounts(root, mnt, *ns, "dovecot_brokenchar=~")
    os.rename(os.path.join(mnt, "t~u"), os.path.join(mnt, "n~m.o"))
    os.rename(os.path.join(mnt, "Entw\u00fcrfe~"),
              os.path.join(mnt, "\u00e9.~"))
    for sub in ("cur", "new", "tmp", ""):
        os.rmdir(os.path.join(mnt, "v.w", sub))
    os.mkdir(os.path.join(mnt, "p.q"))
    m.stop()
    assert "not handed back" not in m.output()
    theirs = mailbox_log(cda)
    assert len(theirs) == 4
    assert sorted(mailbox_log(da)) == sorted(theirs)
    assert dovecot_list(da) == sorted(dovecot_list(cda) + ["INBOX.p~2eq"])


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_keyword_names_moved_onto_dovecot_keywords_handed_back(wtmp, mounts,
                                                              fmt):
    """Keyword names a file moved onto dovecot-keywords gives the folder
    (as Dovecot's maildir driver does it) reach Dovecot with the messages
    that carry their letters: doveadm shows them by name."""
    root, da = dovecot_store(wtmp, fmt)
    by_uid = inbox_guids(da)
    da("flags", "add", "Work", "mailbox", "INBOX", "uid", "1")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(root, mnt, "takeover")
    kw = letters(mnt)
    assert kw == {"Work": "a"}
    hand = os.path.join(mnt, "dovecot-keywords.lock")
    with open(hand, "w") as f:
        f.write("0 Work\n1 Fresh\n2 Other\n")
    os.rename(hand, os.path.join(mnt, "dovecot-keywords"))
    wait_for(lambda: letters(mnt) == {"Work": "a", "Fresh": "b",
                                      "Other": "c"},
             what="the new names on the mount")
    names = names_by_guid(mnt)
    set_info(mnt, names, by_uid[2], "Sb")
    set_info(mnt, names, by_uid[3], "bc")
    shown = view_of(mnt, "INBOX")
    assert shown[by_uid[2]] == {"\\Seen", "Fresh"}
    assert shown[by_uid[3]] == {"Fresh", "Other"}
    m.stop()
    assert "not handed back" not in m.output()
    got = dovecot_inbox(da)
    assert got[by_uid[2]] == {"\\Seen", "Fresh"}
    assert got[by_uid[3]] == {"Fresh", "Other"}
    assert "Work" in got[by_uid[1]]
