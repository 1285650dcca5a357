"""Real maildir software on the mount: deliverers, indexers, flaggers and
a synchroniser, each checked against the store's index afterwards."""

import errno
import functools
import os
import re
import shutil
import sqlite3
import stat

import pytest

from dboxfs_testlib import (DBOXFS, Doveadm, chown_tree, dboxctl,
                            ls_mailboxes, ls_messages, make_maildir, mounts,
                            needs_dovecot, run, store_ids, wait_for,
                            wtmp)  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")


def need(tool):
    """scripts/setup-deps.sh installs every client, so a missing one is a
    broken set-up and fails; DBOXFS_SKIP_MISSING_CLIENTS=1 skips instead
    (for a machine where they cannot be installed)."""
    missing = shutil.which(tool) is None
    if os.environ.get("DBOXFS_SKIP_MISSING_CLIENTS") == "1":
        return pytest.mark.skipif(missing, reason="%s not installed" % tool)

    def wrap(fn):
        @functools.wraps(fn)
        def check(*args, **kwargs):
            assert not missing, \
                "%s not installed: run scripts/setup-deps.sh" % tool
            return fn(*args, **kwargs)
        return check
    return wrap


MSG = b"From: a@example.org\nTo: b@example.org\nSubject: %s\n" \
      b"Message-ID: <%s@example.org>\n\nbody of %s\n"


def msg(i):
    return MSG % (b"m%d" % i, b"m%d" % i, b"m%d" % i)


def mounted_store(wtmp, mounts, fmt="mdbox", *opts):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, *opts)
    return store, mnt


def listing(mnt, sub):
    return sorted(os.listdir(os.path.join(mnt, sub)))


@need("safecat")
def test_safecat_delivers(wtmp, mounts):
    store, mnt = mounted_store(wtmp, mounts)
    for i in range(3):
        run(["safecat", "tmp", "new"], input=msg(i), cwd=mnt)
    assert len(listing(mnt, "new")) == 3
    assert sorted(open(os.path.join(mnt, "new", n), "rb").read()
                  for n in listing(mnt, "new")) == sorted(msg(i) for i in range(3))
    assert len(ls_messages(store, "INBOX")) == 3


@need("maildrop")
def test_maildrop_delivers(wtmp, mounts):
    # maildrop runs setgid mail: the mount must let other ids in
    store, mnt = mounted_store(wtmp, mounts, "mdbox", "allow_other")
    rc = os.path.join(wtmp, "mailfilter")
    with open(rc, "w") as f:
        f.write('to "%s/"\n' % mnt)
    os.chmod(rc, 0o600)
    for i in range(3):
        run(["maildrop", rc], input=msg(i))
    rows = ls_messages(store, "INBOX")
    assert len(rows) == 3 and all(r["info"].startswith("new:") for r in rows)
    assert sorted(open(os.path.join(mnt, "new", n), "rb").read()
                  for n in listing(mnt, "new")) == sorted(msg(i) for i in range(3))


@need("procmail")
def test_procmail_delivers(wtmp, mounts):
    store, mnt = mounted_store(wtmp, mounts, "sdbox", "allow_other")
    os.mkdir(os.path.join(mnt, ".Lists"))
    for d in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".Lists", d))
    rc = os.path.join(wtmp, "procmailrc")
    with open(rc, "w") as f:
        f.write("DEFAULT=%s/\n:0\n* ^Subject: m1\n%s/.Lists/\n" % (mnt, mnt))
    for i in range(3):
        run(["procmail", "-m", rc], input=msg(i))
    assert len(ls_messages(store, "INBOX")) == 2
    assert len(ls_messages(store, "Lists")) == 1
    assert open(os.path.join(mnt, ".Lists/new", listing(mnt, ".Lists/new")[0]),
                "rb").read() == msg(1)


@need("mflag")
def test_mblaze_flags_and_minc(wtmp, mounts):
    store, mnt = mounted_store(wtmp, mounts)
    for i in range(3):
        run(["safecat", "tmp", "new"], input=msg(i), cwd=mnt)
    run(["minc", mnt])                  # new/ -> cur/
    assert listing(mnt, "new") == []
    cur = listing(mnt, "cur")
    assert len(cur) == 3
    run(["mflag", "-S", os.path.join(mnt, "cur", cur[0])])
    run(["mflag", "-F", os.path.join(mnt, "cur", cur[1])])
    rows = {r["base"]: r["info"] for r in ls_messages(store, "INBOX")}
    assert sorted(rows.values()) == ["", "F", "S"]


@need("notmuch")
def test_notmuch_new_and_flag_sync(wtmp, mounts):
    store, mnt = mounted_store(wtmp, mounts)
    for i in range(5):
        run(["safecat", "tmp", "new"], input=msg(i), cwd=mnt)
    cfg = os.path.join(wtmp, "notmuch-config")
    with open(cfg, "w") as f:
        f.write("[database]\npath=%s\n[new]\ntags=unread;inbox;\n"
                "[maildir]\nsynchronize_flags=true\n" % mnt)
    env = dict(os.environ, NOTMUCH_CONFIG=cfg)
    p = run(["notmuch", "new"], env=env)
    assert b"5 new messages" in p.stdout or b"Added 5" in p.stdout, p.stdout
    assert run(["notmuch", "count", "tag:unread"], env=env).stdout.strip() == b"5"
    run(["notmuch", "tag", "-unread", "--", "subject:m2"], env=env)
    run(["notmuch", "tag", "+flagged", "--", "subject:m3"], env=env)
    rows = {r["base"]: r["info"] for r in ls_messages(store, "INBOX")}
    assert sorted(rows.values()) == ["F", "S", "new:", "new:", "new:"]
    # notmuch finds the renamed files again
    p = run(["notmuch", "new"], env=env)
    assert run(["notmuch", "count", "--", "*"], env=env).stdout.strip() == b"5"
    assert run(["notmuch", "search", "--output=files", "subject:m2"],
               env=env).stdout.strip().endswith(b":2,S")


@need("mu")
def test_mu_indexes_the_mount(wtmp, mounts):
    store, mnt = mounted_store(wtmp, mounts)
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"%d.M%d.mu" % (i, i): msg(i) for i in range(4)})
    dboxctl("import", store, "INBOX", src)
    home = os.path.join(wtmp, "muhome")
    run(["mu", "init", "--muhome", home, "--maildir", mnt])
    run(["mu", "index", "--muhome", home])
    p = run(["mu", "find", "--muhome", home, "subject:m2", "--fields", "l"])
    path = p.stdout.decode().strip()
    assert path.startswith(mnt) and open(path, "rb").read() == msg(2)


@need("mbsync")
def test_mbsync_into_the_mount(wtmp, mounts):
    store, mnt = mounted_store(wtmp, mounts, "sdbox")
    far = make_maildir(os.path.join(wtmp, "far"),
                       {"%d.M%d.far" % (i, i): msg(i) for i in range(6)},
                       flags={"0.M0.far": "S", "1.M1.far": "FS"})
    rc = os.path.join(wtmp, "mbsyncrc")
    with open(rc, "w") as f:
        f.write("MaildirStore far\nPath %s/\nInbox %s\n\n"
                "MaildirStore near\nPath %s/\nInbox %s\n\n"
                "Channel c\nFar :far:\nNear :near:\nPatterns INBOX\n"
                "Create Near\nSync All\nSyncState *\n"
                % (far, far, mnt, mnt))
    run(["mbsync", "-c", rc, "-a"], env=dict(os.environ, HOME=wtmp))
    rows = ls_messages(store, "INBOX")
    assert len(rows) == 6
    assert sorted(r["info"].replace("new:", "") for r in rows).count("S") >= 1
    # mbsync adds an X-TUID header to find its copies again
    texts = sorted(re.sub(rb"X-TUID: [^\n]*\n", b"",
                          open(os.path.join(d, n), "rb").read())
                   for d in (os.path.join(mnt, "cur"), os.path.join(mnt, "new"))
                   for n in os.listdir(d))
    assert texts == sorted(msg(i) for i in range(6))
    # a second sync changes nothing and fails nothing
    run(["mbsync", "-c", rc, "-a"], env=dict(os.environ, HOME=wtmp))
    assert len(ls_messages(store, "INBOX")) == 6


@needs_dovecot
def test_dovecot_maildir_driver_as_the_mail_user(wtmp, mounts):
    """Dovecot's maildir driver on the mount, as the mail user (the store's
    owner), with the daemon as root: it writes dovecot-uidlist and its
    index beside the messages and link()s lock files, so it must open and
    link what it made.  Those files were root's (EACCES on its own
    dovecot-uidlist, EPERM on link); like on a native filesystem they now
    belong to whoever made them."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "sdbox")
    da = Doveadm(wtmp, store, "maildir")    # chowns the store to the user
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "allow_other")
    da.root = mnt                           # mail_location=maildir:MNT
    for i in range(3):
        da("save", "-m", "INBOX", input=msg(i))
    da("mailbox", "create", "Lists")
    da("move", "Lists", "mailbox", "INBOX", "uid", "3")
    da("flags", "add", "\\Seen \\Flagged", "mailbox", "INBOX", "uid", "2")
    got = {(m["mailbox"], m["uid"], m["text"]): m["flags"].split()
           for m in da.fetch("mailbox uid flags text", "mailbox", "*")}
    assert {k: sorted(f for f in v if f != "\\Recent")
            for k, v in got.items()} == {
        ("INBOX", "1", msg(0)): [],
        ("INBOX", "2", msg(1)): ["\\Flagged", "\\Seen"],
        ("Lists", "1", msg(2)): []}
    for name in ("dovecot-uidlist", ".Lists/dovecot-uidlist"):
        st = os.stat(os.path.join(mnt, name))
        assert (st.st_uid, st.st_gid) == store_ids()
    assert len(ls_messages(store, "INBOX")) == 2
    # maildir++ delete: rename to ..DOVECOT-TRASHED, then remove that tree
    da("mailbox", "create", "Gone")
    da("save", "-m", "Gone", input=msg(9))
    da("mailbox", "delete", "Gone")
    assert not os.path.exists(os.path.join(mnt, ".Gone"))
    assert sorted(n for n in os.listdir(mnt) if n.startswith(".")) == \
        [".Lists"]
    assert "Gone" not in ls_mailboxes(store)


@needs_dovecot
def test_dovecot_maildir_driver_flags_and_keywords(wtmp, mounts):
    """The same on an mdbox store dboxctl imported: Dovecot's flag and
    keyword changes, each run opening the files the one before made
    (dovecot-uidlist, dovecot-keywords, its index), are the mount's names,
    and those files the mail user's, also with its own group."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"%d.M%d.h:2,S" % (i, i): msg(i) for i in range(3)})
    dboxctl("import", store, "INBOX", src)
    uid, gid = store_ids()
    chown_tree(store, uid, gid)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "allow_other")
    da = Doveadm(wtmp, mnt, "maildir")
    for args in (("flags", "add", "\\Flagged $Label1", "mailbox", "INBOX",
                  "uid", "1"),
                 ("flags", "add", "\\Answered", "mailbox", "INBOX",
                  "uid", "2"),
                 ("flags", "remove", "$Label1", "mailbox", "INBOX",
                  "uid", "1")):
        p = da(*args)
        assert p.stderr == b"", p.stderr
    made = [n for n in os.listdir(mnt) if n.startswith("dovecot")]
    assert "dovecot-uidlist" in made
    for n in made:
        st = os.lstat(os.path.join(mnt, n))
        assert (n, st.st_uid, st.st_gid) == (n, uid, gid)
    assert listing(mnt, "cur") == ["0.M0.h:2,FS", "1.M1.h:2,RS",
                                   "2.M2.h:2,S"]
    out = da("-f", "flow", "fetch", "uid flags", "mailbox", "INBOX",
             "all").stdout.decode()
    out = out.replace(" \\Recent", "")
    assert out.split("\n")[:3] == ["uid=1 flags=\\Flagged \\Seen",
                                   "uid=2 flags=\\Answered \\Seen",
                                   "uid=3 flags=\\Seen"]


def index_keywords(store):
    """{mailbox name: {idx: keyword}} from the index's keywords table."""
    db = sqlite3.connect(os.path.join(store, "dboxfs", "index.sqlite"))
    try:
        rows = db.execute("SELECT m.name, k.idx, k.name FROM keywords k "
                          "JOIN mailboxes m ON m.id = k.mailbox_id").fetchall()
    finally:
        db.close()
    out = {}
    for box, idx, name in rows:
        out.setdefault(box, {})[idx] = name
    return out


def plain_keywords_files(store):
    """Any dovecot-keywords* left in the plain-file areas."""
    return [os.path.join(d, n)
            for d, _, names in os.walk(os.path.join(store, "dboxfs", "files"))
            for n in names if n.startswith("dovecot-keywords")]


def read_text(path):
    with open(path) as f:
        return f.read()


@needs_dovecot
@pytest.mark.parametrize("layout", ["maildir++", "fs"])
def test_dovecots_maildir_driver_keywords_reach_the_index(wtmp, mounts,
                                                           layout):
    """Keywords Dovecot's maildir driver adds through the mount (it writes
    dovecot-keywords.lock and renames it onto dovecot-keywords) are the
    mailbox's keyword names in the index: the generated file shows them,
    no plain file hides it, dboxctl export and a second doveadm run see
    them, in INBOX and in a subfolder."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"%d.M%d.h:2,S" % (i, i): msg(i) for i in range(3)})
    dboxctl("import", store, "INBOX", src)
    dboxctl("import", store, "Sub", src)
    uid, gid = store_ids()
    chown_tree(store, uid, gid)
    mnt = os.path.join(wtmp, "mnt")
    opts = ("allow_other",) + (("layout=fs",) if layout == "fs" else ())
    mounts(store, mnt, *opts)
    da = Doveadm(wtmp, mnt, "maildir")
    sub, inbox = os.path.join(mnt, ".Sub"), mnt
    if layout == "fs":
        da.root = mnt + ":LAYOUT=fs:INBOX=" + os.path.join(mnt, "INBOX")
        sub = os.path.join(mnt, "Sub")
        inbox = os.path.join(mnt, "INBOX")
    for args in (("flags", "add", "Foo Bar", "mailbox", "INBOX", "uid", "1"),
                 ("flags", "add", "Baz", "mailbox", "Sub", "uid", "2"),
                 ("flags", "add", "Bar", "mailbox", "INBOX", "uid", "3")):
        p = da(*args)
        assert p.stderr == b"", p.stderr
    assert index_keywords(store) == {"INBOX": {0: "Foo", 1: "Bar"},
                                     "Sub": {0: "Baz"}}
    assert plain_keywords_files(store) == []
    for d, text in ((inbox, "0 Foo\n1 Bar\n"), (sub, "0 Baz\n")):
        wait_for(lambda: read_text(os.path.join(d, "dovecot-keywords")) ==
                 text, what="generated dovecot-keywords in " + d)
    assert listing(inbox, "cur") == ["0.M0.h:2,Sab", "1.M1.h:2,S",
                                     "2.M2.h:2,Sb"]
    assert listing(sub, "cur") == ["0.M0.h:2,S", "1.M1.h:2,Sa",
                                   "2.M2.h:2,S"]
    exp = os.path.join(wtmp, "exp")
    dboxctl("export", store, "INBOX", exp)
    assert read_text(os.path.join(exp, "dovecot-keywords")) == \
        "0 Foo\n1 Bar\n"
    assert sorted(os.listdir(os.path.join(exp, "cur"))) == \
        ["0.M0.h:2,Sab", "1.M1.h:2,S", "2.M2.h:2,Sb"]
    for box, want in (("INBOX", ["uid=1 flags=\\Seen Foo Bar",
                                 "uid=2 flags=\\Seen",
                                 "uid=3 flags=\\Seen Bar"]),
                      ("Sub", ["uid=1 flags=\\Seen",
                               "uid=2 flags=\\Seen Baz",
                               "uid=3 flags=\\Seen"])):
        out = da("-f", "flow", "fetch", "uid flags", "mailbox", box,
                 "all").stdout.decode().replace(" \\Recent", "")
        assert out.split("\n")[:3] == want


def test_mv_onto_dovecot_keywords(wtmp, mounts):
    """A keywords file written by hand and moved onto a folder's
    dovecot-keywords is read as Dovecot's maildir driver reads it (lines
    "<idx> <name>", idx < 26, anything else ignored; a name's second line
    ignored, an index's last line wins, an unterminated last line ignored) and replaces the mailbox's keyword
    names; the letters messages carry then mean those names.  The source
    goes, the generated file stays; a link there does the same, keeping
    its source; opening the generated file for writing stays refused."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"%d.M%d.h:2,S" % (i, i): msg(i) for i in range(2)})
    dboxctl("import", store, "INBOX", src)
    dboxctl("import", store, "Sub", src)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    os.rename(os.path.join(mnt, "cur", "0.M0.h:2,S"),
              os.path.join(mnt, "cur", "0.M0.h:2,Sae"))
    hand = os.path.join(mnt, "kw.new")
    with open(hand, "w") as f:
        f.write("0 Alpha\n1 Beta\ngarbage\n30 Big\nx Yy\n2 \n3 Alpha\n"
                " 5 Sp\n+6 Plus\n7 (bad)\n4 Gamma\r\n1 Beta2\n8 Beta\n9 Zeta")
    kw = os.path.join(mnt, "dovecot-keywords")
    os.rename(hand, kw)
    assert not os.path.exists(hand)
    assert index_keywords(store) == {"INBOX": {0: "Alpha", 1: "Beta2",
                                               4: "Gamma"}}
    assert plain_keywords_files(store) == []
    wait_for(lambda: read_text(kw) == "0 Alpha\n1 Beta2\n4 Gamma\n",
             what="generated dovecot-keywords")
    assert "0.M0.h:2,Sae" in os.listdir(os.path.join(mnt, "cur"))
    exp = os.path.join(wtmp, "exp")
    dboxctl("export", store, "INBOX", exp)
    assert read_text(os.path.join(exp, "dovecot-keywords")) == \
        "0 Alpha\n1 Beta2\n4 Gamma\n"
    assert "0.M0.h:2,Sae" in os.listdir(os.path.join(exp, "cur"))
    # a second file replaces the names altogether; the file's time moves
    # (Dovecot reads the names again only then)
    before = os.stat(kw).st_mtime_ns
    with open(hand, "w") as f:
        f.write("2 Delta\n")
    os.rename(hand, kw)
    assert index_keywords(store) == {"INBOX": {2: "Delta"}}
    wait_for(lambda: read_text(kw) == "2 Delta\n",
             what="replaced dovecot-keywords")
    # the kernel moved the source's node onto the name: the follower
    # drops it, the generated file is the name's again
    wait_for(lambda: os.stat(kw).st_nlink == 1, what="kernel's entry dropped")
    assert stat.S_IMODE(os.stat(kw).st_mode) & 0o222 == 0
    assert os.stat(kw).st_mtime_ns > before
    # a link as the dovecot-keywords of a folder that shows none yet
    sub_kw = os.path.join(mnt, ".Sub", "dovecot-keywords")
    assert not os.path.exists(sub_kw)
    # a directory is no keywords file: refused, kept, nothing changed
    kwdir = os.path.join(mnt, ".Sub", "kwdir")
    os.mkdir(kwdir)
    with pytest.raises(OSError) as e:
        os.rename(kwdir, sub_kw)
    assert e.value.errno in (errno.EISDIR, errno.ENOTDIR)
    assert os.path.isdir(kwdir) and "Sub" not in index_keywords(store)
    with open(hand, "w") as f:
        f.write("0 Linked\n")
    os.link(hand, sub_kw)
    assert os.path.exists(hand)
    assert index_keywords(store)["Sub"] == {0: "Linked"}
    wait_for(lambda: read_text(sub_kw) == "0 Linked\n",
             what="linked dovecot-keywords")
    assert plain_keywords_files(store) == []
    # the generated file itself is not written
    for mode in ("w", "a", "r+"):
        with pytest.raises(PermissionError):
            open(kw, mode)
    with pytest.raises(PermissionError):
        os.truncate(kw, 0)
    assert index_keywords(store)["INBOX"] == {2: "Delta"}


@pytest.mark.parametrize("first", ["lookup", "listing"])
def test_old_plain_dovecot_keywords_is_taken(wtmp, mounts, first):
    """A plain dovecot-keywords an older dboxfs let a rename leave in a
    folder's plain-file area, which hid the generated file and held the
    only copy of the keyword names, is taken as the folder's keyword
    names at its first lookup or listing, and removed."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"0.M0.h:2,S": msg(0)})
    dboxctl("import", store, "INBOX", src)
    area = os.path.join(store, "dboxfs", "files", "1")
    os.makedirs(area, exist_ok=True)
    with open(os.path.join(area, "dovecot-keywords"), "w") as f:
        f.write("0 Old\n3 Kept\n")
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    if first == "listing":
        assert os.listdir(mnt).count("dovecot-keywords") == 1
    assert read_text(os.path.join(mnt, "dovecot-keywords")) == \
        "0 Old\n3 Kept\n"
    assert index_keywords(store) == {"INBOX": {0: "Old", 3: "Kept"}}
    assert plain_keywords_files(store) == []
    assert os.listdir(mnt).count("dovecot-keywords") == 1
    # a folder with no keywords and no plain file shows none
    dboxctl("import", store, "Sub", src)
    assert "dovecot-keywords" not in os.listdir(os.path.join(mnt, ".Sub"))
    assert not os.path.exists(os.path.join(mnt, ".Sub", "dovecot-keywords"))
