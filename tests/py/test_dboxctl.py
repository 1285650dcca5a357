"""dboxctl's commands: help, usage errors, maildir and mbox import, export
round trips, reindex keeping state, purge."""

import os

import pytest

from dboxfs_testlib import (DBOXFS, HOSTILE, dboxctl, export_maildir,
                            ls_mailboxes, ls_messages, make_maildir, mounts,
                            wtmp)  # noqa: F401

COMMANDS = ["init", "import", "export", "ls", "cat", "reindex", "check",
            "purge", "stats"]


def test_help_everywhere():
    top = dboxctl("--help").stdout.decode()
    for c in COMMANDS:
        assert c in top
        out = dboxctl(c, "--help").stdout.decode()
        assert out.startswith("Usage: dboxctl " + c), c
    assert dboxctl("--version").stdout.startswith(b"dboxctl ")


@pytest.mark.parametrize("args", [[], ["nosuchcmd"], ["init"],
                                  ["init", "/tmp/x", "--format", "zzz"],
                                  ["ls"], ["cat", "a", "b"], ["import", "a"]])
def test_usage_errors(args):
    p = dboxctl(*args, check=False)
    assert p.returncode == 2, (args, p.stderr)
    assert p.stderr


def test_clear_errors(wtmp):
    p = dboxctl("ls", os.path.join(wtmp, "none"), check=False)
    assert p.returncode == 1 and b"No such file" in p.stderr
    store = os.path.join(wtmp, "s")
    dboxctl("init", store, "--format", "sdbox")
    p = dboxctl("init", store, "--format", "sdbox", check=False)
    assert p.returncode == 1 and b"not empty" in p.stderr
    p = dboxctl("--fs=bogus:1/posix", "ls", store, check=False)
    assert p.returncode == 1 and b"bogus" in p.stderr
    p = dboxctl("cat", store, "INBOX", "7", check=False)
    assert p.returncode == 1 and b"uid 7" in p.stderr
    p = dboxctl("import", store, "a\x01b", store, check=False)
    assert p.returncode == 1 and b"invalid mailbox name" in p.stderr
    p = dboxctl("import", store, "X", "/dev/null", check=False)
    assert p.returncode == 1 and b"mbox" in p.stderr


def test_help_command():
    assert dboxctl("help").stdout == dboxctl("--help").stdout
    for c in COMMANDS:
        assert dboxctl("help", c).stdout == dboxctl(c, "--help").stdout, c
    p = dboxctl("help", "nosuchcmd", check=False)
    assert p.returncode == 2 and b"unknown command nosuchcmd" in p.stderr


def test_bad_input_is_refused_with_a_reason(wtmp):
    """Issue 11 item 12: nothing reports success on input it did not
    take, and every refusal says why."""
    store = os.path.join(wtmp, "s")
    # --opt=value works like --opt value; a missing option is named
    p = dboxctl("init", store, check=False)
    assert p.returncode == 2 and b"--format" in p.stderr
    assert b"Usage" not in p.stderr
    dboxctl("init", store, "--format=mdbox", "--rotate-size=1M")
    # a directory that is not a maildir, a file that is not an mbox
    p = dboxctl("import", store, "Box", "/etc", check=False)
    assert p.returncode == 1, p.stdout
    assert b"not a maildir" in p.stderr and b"imported" not in p.stdout
    notmbox = os.path.join(wtmp, "notmbox")
    with open(notmbox, "w") as f:
        f.write("hello\n")
    p = dboxctl("import", store, "Box", notmbox, check=False)
    assert p.returncode == 1 and b"not an mbox" in p.stderr
    assert list(ls_mailboxes(store)) == ["INBOX"]
    # options after positional arguments are options, never names
    idx = os.path.join(wtmp, "other.sqlite")
    p = dboxctl("ls", store, "--index=" + idx)
    assert os.path.exists(idx)
    p = dboxctl("ls", store, "--bogus", check=False)
    assert p.returncode == 2 and b"unknown option --bogus" in p.stderr
    p = dboxctl("ls", store, "--", "-Dash", check=False)
    assert p.returncode == 1 and b"-Dash" in p.stderr
    # --index never creates missing directories
    p = dboxctl("--index", os.path.join(wtmp, "no", "such", "i.sqlite"),
                "ls", store, check=False)
    assert p.returncode == 1 and b"does not exist" in p.stderr
    assert not os.path.exists(os.path.join(wtmp, "no"))


def test_maildirpp_subfolders_are_named_when_left_out(wtmp):
    body = b"Subject: x\n\nx\n"
    src = make_maildir(os.path.join(wtmp, "Maildir"), {"1.M1.h": body})
    make_maildir(os.path.join(src, ".Sub"), {"2.M2.h": body})
    make_maildir(os.path.join(src, ".Sub.Deeper"), {"3.M3.h": body})
    store = os.path.join(wtmp, "s")
    dboxctl("init", store, "--format", "sdbox")
    p = dboxctl("import", store, "INBOX", src)
    assert b"1 messages imported" in p.stdout
    err = p.stderr.decode()
    assert ".Sub: a Maildir++ subfolder" in err
    assert ".Sub.Deeper: a Maildir++ subfolder" in err


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_maildir_roundtrip(wtmp, fmt):
    msgs = {"%d.M%d.rt" % (1600000000 + i, i): data
            for i, data in enumerate(HOSTILE.values())}
    flags = {b: f for b, f in zip(sorted(msgs), ["S", "FS", "RS", "", "DT",
                                                  "ab", "S", "P"])}
    src = make_maildir(os.path.join(wtmp, "src"), msgs, flags=flags,
                       mtimes={b: 1600000000 + i for i, b in
                               enumerate(sorted(msgs))},
                       new=[sorted(msgs)[0]])
    with open(os.path.join(src, "dovecot-keywords"), "w") as f:
        f.write("0 $Label1\n1 work\n")
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    dboxctl("import", store, "INBOX", src)
    out = export_maildir(store, "INBOX", os.path.join(wtmp, "out"))
    assert set(out) == set(msgs)
    for base, (data, info, in_new, mtime) in out.items():
        assert data == msgs[base]
        assert in_new == (base == sorted(msgs)[0])
        if not in_new:
            assert info == "".join(sorted(flags[base])), base
        assert mtime == 1600000000 + sorted(msgs).index(base)
    kw = open(os.path.join(wtmp, "out", "dovecot-keywords")).read()
    assert "$Label1" in kw and "work" in kw
    assert dboxctl("check", store).returncode == 0


def test_mbox_import(wtmp):
    mbox = os.path.join(wtmp, "in.mbox")
    with open(mbox, "wb") as f:
        f.write(b"From a@b Thu Nov 24 18:22:48 2022\n"
                b"Subject: one\nStatus: RO\nX-Status: AF\n\n"
                b"body\n>From the start\n>>From deeper\n\n"
                b"From c@d Fri Nov 25 10:00:00 2022\n"
                b"Subject: two\n\nlast\n\n")
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    assert b"2 messages" in dboxctl("import", store, "Archive", mbox).stdout
    rows = ls_messages(store, "Archive")
    assert [r["received"] for r in rows] == [1669314168, 1669370400]
    assert rows[0]["info"] == "FRS"
    one = dboxctl("cat", store, "Archive", rows[0]["uid"]).stdout
    assert one == (b"Subject: one\nStatus: RO\nX-Status: AF\n\n"
                   b"body\nFrom the start\n>From deeper\n")
    two = dboxctl("cat", store, "Archive", rows[1]["uid"]).stdout
    assert two == b"Subject: two\n\nlast\n"


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_reindex_keeps_flags_names_and_uids(wtmp, fmt):
    msgs = {"%d.M%d.ri" % (i, i): b"Subject: %d\n\n%d\n" % (i, i)
            for i in range(5)}
    src = make_maildir(os.path.join(wtmp, "src"), msgs,
                       flags={b: "S" for b in msgs})
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    dboxctl("import", store, "Box", src)
    before = ls_messages(store, "Box")
    boxes = ls_mailboxes(store)
    assert b"5 messages" in dboxctl("reindex", store).stdout
    assert ls_messages(store, "Box") == before
    assert ls_mailboxes(store) == boxes
    # without any index at all: bytes, names (kept in the files), GUIDs
    for n in os.listdir(os.path.join(store, "dboxfs")):
        if n.startswith("index.sqlite"):
            os.unlink(os.path.join(store, "dboxfs", n))
    after = ls_messages(store, "Box")
    assert sorted((r["base"], r["guid"], r["size"], r["received"])
                  for r in after) == sorted(
        (r["base"], r["guid"], r["size"], r["received"]) for r in before)
    for r in after:
        assert dboxctl("cat", store, "Box", r["uid"]).stdout == msgs[r["base"]]


def test_purge_reclaims_and_keeps_the_rest(wtmp, mounts):
    if not os.path.exists(DBOXFS):
        pytest.skip("dboxfs not built")
    msgs = {"%d.M%d.p" % (i, i): (b"Subject: %d\n\n" % i) + b"z" * 3000
            for i in range(10)}
    src = make_maildir(os.path.join(wtmp, "src"), msgs)
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    dboxctl("import", store, "INBOX", src)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    names = sorted(os.listdir(os.path.join(mnt, "cur")))
    for n in names[::2]:
        os.unlink(os.path.join(mnt, "cur", n))
    keep = names[1::2]
    f = open(os.path.join(mnt, "cur", keep[-1]), "rb")   # open during purge
    size = os.path.getsize(os.path.join(store, "storage", "m.1"))
    p = dboxctl("purge", store)
    assert int(p.stdout.split()[0]) > 5 * 3000
    storage = os.listdir(os.path.join(store, "storage"))
    assert sum(os.path.getsize(os.path.join(store, "storage", x))
               for x in storage) < size
    assert f.read() == msgs[keep[-1].split(":2,")[0]]
    f.close()
    for n in keep:
        with open(os.path.join(mnt, "cur", n), "rb") as g:
            assert g.read() == msgs[n.split(":2,")[0]]
    assert dboxctl("check", store).returncode == 0


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_import_keeps_each_maildir_name_once(wtmp, fmt):
    """A maildir name already in the mailbox, in new/ and cur/ of one
    source, or in two sources, is kept by its first message only; the
    others get names of their own, and nothing is lost."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    old = make_maildir(os.path.join(wtmp, "old"), {"taken": b"S: 0\n\n0\n"})
    dboxctl("import", store, "Box", old)
    a = make_maildir(os.path.join(wtmp, "a"),
                     {"taken": b"S: 1\n\n1\n", "twice": b"S: 2\n\n2\n",
                      "own": b"S: 3\n\n3\n"}, mtimes={"twice": 1000})
    with open(os.path.join(a, "new", "twice"), "wb") as f:
        f.write(b"S: 4\n\n4\n")
    b = make_maildir(os.path.join(wtmp, "b"), {"own": b"S: 5\n\n5\n"})
    dboxctl("import", store, "Box", a, b)
    got = export_maildir(store, "Box", os.path.join(wtmp, "out"))
    assert sorted(v[0] for v in got.values()) == \
        [b"S: %d\n\n%d\n" % (i, i) for i in range(6)]
    assert got["taken"][0] == b"S: 0\n\n0\n"
    assert got["twice"][0] == b"S: 2\n\n2\n"  # cur/ first, and older
    assert got["own"][0] == b"S: 3\n\n3\n"
