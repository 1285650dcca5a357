"""Messages Dovecot saved with mail_attachment_dir (single-instance
attachments, the X metadata key): the record holds the message without its
large MIME parts, which live in files under the attachment directory
(base64 parts decoded).  dboxfs (-o attachment_dir=PATH) and dboxctl
(--attachment-dir=PATH) must give back exactly what `doveadm fetch text`
gives; without the directory, or with an attachment file missing or cut,
EIO for that message only, never fewer or other bytes."""

import base64
import errno
import json
import mmap
import os
import random
import re
import shutil
import tempfile

import pytest

from dboxfs_testlib import (Doveadm, chown_tree, dboxctl, mounts,
                            needs_dovecot, store_ids, wtmp)  # noqa: F401

pytestmark = needs_dovecot
# format, and Dovecot's zlib_save (the record compressed, the attachments
# not)
STORES = {"sdbox": ("sdbox", None), "mdbox": ("mdbox", None),
          "sdbox-gz": ("sdbox", "gz"), "mdbox-zstd": ("mdbox", "zstd")}
MIN_SIZE = "1k"   # mail_attachment_min_size: small test messages suffice


def b64_lines(data, width, nl):
    s = base64.b64encode(data).decode()
    return nl.join(s[i:i + width] for i in range(0, len(s), width))


def mime(nl, parts, subject):
    head = ["From: a@example.org", "To: b@example.org", "Subject: " + subject,
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="BB"', "", "preamble",
            ""]
    body = []
    for ctype, cte, payload in parts:
        body += ["--BB", "Content-Type: " + ctype,
                 "Content-Transfer-Encoding: " + cte, "", payload]
    body += ["--BB--", ""]
    return nl.join(head + body).encode("latin-1")


def messages():
    """(doveadm save options, message) of every case."""
    rng = random.Random(7)

    def rnd(n):
        return bytes(rng.getrandbits(8) for _ in range(n))
    binary = rnd(4000).replace(b"\n", b"x").replace(b"\r", b"y")
    big = ("application/octet-stream", "base64",
           b64_lines(rnd(200000), 76, "\r\n"))
    return [
        # CRLF input, saved as LF (Dovecot's default): B76
        ((), mime("\r\n", [("text/plain", "7bit", "hello"), big],
                  "crlf input 76")),
        # mail_save_crlf=yes: dbox saves LF all the same (so Dovecot 2.3
        # never writes the C flag for dbox; test-extref covers it)
        (("-o", "mail_save_crlf=yes"),
         mime("\r\n", [("text/plain", "7bit", "hello"), big], "crlf 76")),
        # two attachments with different line lengths
        ((), mime("\n", [("text/plain", "7bit", "hi"),
                         ("image/png", "base64", b64_lines(rnd(3000), 64,
                                                           "\n")),
                         ("application/pdf", "base64",
                          b64_lines(rnd(5701), 72, "\n"))], "lf two")),
        # a binary part stored as is, and one below the minimum size that
        # stays in the record
        ((), mime("\n", [("application/octet-stream", "binary",
                          binary.decode("latin-1")),
                         ("text/plain", "base64", b64_lines(rnd(300), 76,
                                                            "\n"))],
                  "binary and small")),
        # whole last line (57 * 40 bytes: no padding, no short line)
        ((), mime("\n", [("application/zip", "base64",
                          b64_lines(rnd(57 * 40), 76, "\n"))], "full lines")),
        # a message without attachments
        ((), b"From: a@example.org\nSubject: plain\n\nno attachment here\n"),
    ]


class AttStore:
    def __init__(self, top, name):
        self.top, self.name = top, name
        self.fmt, self.comp = STORES[name]
        self.root = os.path.join(top, name)
        self.att = os.path.join(top, name + "-att")
        self.index = os.path.join(top, name + "-index.sqlite")
        self.texts = {}      # uid -> doveadm fetch text

    def opts(self):
        o = ["-o", "mail_attachment_dir=" + self.att,
             "-o", "mail_attachment_min_size=" + MIN_SIZE]
        if self.comp:
            o += ["-o", "mail_plugins=zlib",
                  "-o", "plugin/zlib_save=" + self.comp]
        return o

    def ctl(self, *args, att=True, check=True):
        glob = ["--index=" + self.index]
        if att:
            glob.append("--attachment-dir=" + self.att)
        return dboxctl(*glob, *args, check=check)

    def external_uids(self):
        return [u for u, t in self.texts.items() if b"no attachment" not in t]


def build(top, name):
    s = AttStore(top, name)
    os.makedirs(s.root)
    os.makedirs(s.att)
    chown_tree(top, *store_ids())
    da = Doveadm(os.path.join(top, "da-" + name), s.root, s.fmt)
    for extra, msg in messages():
        da(*s.opts(), *extra, "save", "-m", "INBOX", input=msg)
    for uid in range(1, len(messages()) + 1):
        s.texts[uid] = fetch_text(da, s, uid)
    return s


def fetch_text(da, s, uid):
    """`doveadm fetch text` of one message, byte-exact: the pager format
    prints it raw after "text:\n" (JSON would re-code binary bytes).  It
    needs the attachment settings to read the message back."""
    out = da(*s.opts(), "-f", "pager", "fetch", "text", "mailbox", "INBOX",
             "uid", str(uid)).stdout
    assert out.startswith(b"text:\n")
    return out[len(b"text:\n"):]


@pytest.fixture(scope="module")
def att_stores():
    top = tempfile.mkdtemp(prefix="dboxfs-att.", dir="/tmp")
    os.chmod(top, 0o755)
    try:
        yield {name: build(top, name) for name in STORES}
    finally:
        shutil.rmtree(top, ignore_errors=True)


def copy_store(s, dest_top):
    """A private copy (store, attachment directory) to damage."""
    c = AttStore(dest_top, s.name)
    shutil.copytree(s.root, c.root, symlinks=True)
    shutil.copytree(s.att, c.att, symlinks=True)
    c.texts = dict(s.texts)
    return c


def read_all(mnt):
    """{file name: (st_size, bytes or errno)} of the mount's cur/ and
    new/."""
    got = {}
    for sub in ("cur", "new"):
        for n in os.listdir(os.path.join(mnt, sub)):
            p = os.path.join(mnt, sub, n)
            size = os.stat(p).st_size
            try:
                with open(p, "rb") as f:
                    got[n] = (size, f.read())
            except OSError as e:
                got[n] = (size, e.errno)
    return got


def stop_clean(m):
    """Unmounts; the daemon must exit 0 with no sanitizer report (under
    build-asan)."""
    rc = m.stop()
    out = m.output()
    assert rc == 0 and "Sanitizer" not in out and \
        "runtime error" not in out, out


def uid_of(mnt, name):
    for sub in ("cur", "new"):
        p = os.path.join(mnt, sub, name)
        if os.path.exists(p):
            return int(os.getxattr(p, "user.dbox.uid"))
    raise AssertionError(name)


@pytest.mark.parametrize("name", STORES)
def test_mount_serves_whole_messages(att_stores, mounts, name, tmp_path):
    s = att_stores[name]
    mnt = str(tmp_path / "mnt")
    m = mounts(s.root, mnt, "index=" + s.index, "attachment_dir=" + s.att)
    got = read_all(mnt)
    assert len(got) == len(s.texts)
    for name, (size, data) in got.items():
        want = s.texts[uid_of(mnt, name)]
        assert size == len(want), name
        assert data == want, name
    # ranges that start and end inside base64 lines and line ends
    rng = random.Random(3)
    for name in got:
        want = s.texts[uid_of(mnt, name)]
        p = os.path.join(mnt, "cur", name)
        if not os.path.exists(p):
            p = os.path.join(mnt, "new", name)
        fd = os.open(p, os.O_RDONLY)
        try:
            for _ in range(40):
                off = rng.randrange(len(want))
                n = rng.randrange(1, 5000)
                assert os.pread(fd, n, off) == want[off:off + n]
        finally:
            os.close(fd)
    stop_clean(m)


@pytest.mark.parametrize("name", STORES)
def test_cold_reads_come_from_pushed_pages(att_stores, wtmp, mounts, name):
    """A cold open on a read-write mount (a copy of the store taken over:
    a Dovecot tree alone is mounted read-only, which has no opens) puts
    the message's bytes into the kernel's page cache (fusefs/pagepush.c)
    as a READ would serve them, the record decompressed and its external
    attachments put back: a message up to 128 KiB (PAGEPUSH_MAX) then
    sends no READ at all, a larger one only for what follows its first
    128 KiB, and the bytes are Dovecot's, by read(2) and mmap(2)."""
    s = copy_store(att_stores[name], wtmp)
    chown_tree(wtmp, *store_ids())
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(s.root, mnt, "debug", "index=" + s.index,
               "attachment_dir=" + s.att, "takeover")
    got = read_all(mnt)
    assert len(got) == len(s.texts)
    small = set()
    for n, (size, data) in got.items():
        assert data == s.texts[uid_of(mnt, n)], n
        for sub in ("cur", "new"):
            p = os.path.join(mnt, sub, n)
            if os.path.exists(p) and size <= 128 * 1024:
                small.add(os.stat(p).st_ino)
            if os.path.exists(p):
                fd = os.open(p, os.O_RDONLY)
                try:
                    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mm:
                        assert mm[:] == data, n
                finally:
                    os.close(fd)
    assert len(small) >= 4
    read = set(int(i) for i in re.findall(
        r"opcode: READ \(\d+\), nodeid: (\d+)", m.output()))
    assert not small & read, "READs of messages pushed whole"
    stop_clean(m)


@pytest.mark.parametrize("name", STORES)
def test_mount_without_attachment_dir_is_eio(att_stores, mounts, name,
                                             tmp_path):
    s = att_stores[name]
    mnt = str(tmp_path / "mnt")
    m = mounts(s.root, mnt, "index=" + str(tmp_path / "i.sqlite"))
    got = read_all(mnt)
    external = set(s.external_uids())
    for name, (size, data) in got.items():
        uid = uid_of(mnt, name)
        assert size == len(s.texts[uid])
        if uid in external:
            assert data == errno.EIO, name
        else:
            assert data == s.texts[uid]
    log = [ln for ln in m.output().splitlines()
           if "no attachment directory" in ln]
    # one line per message, naming what is missing
    assert len(log) == len(external), m.output()
    assert all("external attachments" in ln for ln in log)
    stop_clean(m)


@pytest.mark.parametrize("name", STORES)
def test_dboxctl_cat_export_check(att_stores, name, tmp_path):
    s = att_stores[name]
    # what Dovecot made of the cases: two widths, a part stored as is
    # (uid 6 has none)
    assert [o for o, _ in record_x(s, 1)] == ["B76"]
    assert [o for o, _ in record_x(s, 2)] == ["B76"]
    assert [o for o, _ in record_x(s, 3)] == ["B64", "B72"]
    assert [o for o, _ in record_x(s, 4)] == ["-"]
    for uid, want in s.texts.items():
        assert s.ctl("cat", s.root, "INBOX", uid).stdout == want
    dest = str(tmp_path / "export")
    s.ctl("export", s.root, "INBOX", dest)
    exported = []
    for sub in ("cur", "new"):
        for n in os.listdir(os.path.join(dest, sub)):
            with open(os.path.join(dest, sub, n), "rb") as f:
                exported.append(f.read())
    assert sorted(exported) == sorted(s.texts.values())
    assert check_lines(s) == []
    # without the directory: no bytes at all, and a reason
    for uid in s.external_uids():
        p = s.ctl("cat", s.root, "INBOX", uid, att=False, check=False)
        assert p.returncode == 1 and p.stdout == b""
        assert b"no attachment directory" in p.stderr
    lines = check_lines(s, att=False)
    assert len(lines) == len(s.external_uids())
    assert all("no attachment directory" in ln for ln in lines)


def check_lines(s, att=True):
    """dboxctl check's problems, less one it reports on every mdbox tree
    Dovecot made (its m.N are "not in the index": a separate issue)."""
    p = s.ctl("check", s.root, att=att, check=False)
    lines = [ln for ln in p.stdout.decode().splitlines()
             if not ln.endswith("removed at the next open)")]
    assert p.returncode == (1 if p.stdout else 0)
    return lines


def attachment_files(s, uid):
    """The attachment files of one message (found by the contents Dovecot
    stored: exactly those named in its record's X line)."""
    files = []
    for d, _, names in os.walk(s.att):
        if os.path.basename(d) == "hashes":
            continue
        files += [os.path.join(d, n) for n in names]
    rec = record_x(s, uid)
    return [f for f in files
            if any(os.path.relpath(f, s.att).startswith(p) for _, p in rec)]


def record_x(s, uid):
    """(options, path) of each item in the X metadata line of message uid (sdbox: its u.N; mdbox:
    m.1, which holds every message here in uid order)."""
    if s.fmt == "sdbox":
        path = os.path.join(s.root, "mailboxes", "INBOX", "dbox-Mails",
                            "u.%d" % uid)
    else:
        path = os.path.join(s.root, "storage", "m.1")
    with open(path, "rb") as f:
        records = f.read().split(b"\n\x01\x03\n")[1:]
    meta = records[0 if s.fmt == "sdbox" else uid - 1].split(b"\n\n")[0]
    x = [ln for ln in meta.split(b"\n") if ln.startswith(b"X")][0]
    words = x[1:].decode().split(" ")
    return [(words[i + 2], words[i + 3]) for i in range(0, len(words), 4)]


def rewrite(path, data):
    """New contents under the same name, leaving the SIS links in hashes/
    (same inode) alone."""
    os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("name", STORES)
def test_missing_short_or_changed_attachment(att_stores, mounts, name,
                                             tmp_path):
    top = str(tmp_path / "copy")
    os.makedirs(top)
    os.chmod(str(tmp_path), 0o755)
    s = copy_store(att_stores[name], top)
    # uid 3: one of its two attachments removed
    files = attachment_files(s, 3)
    assert len(files) == 2
    os.unlink(files[1])
    # uid 1: one byte short, which the base64 padding hides from the size
    # (the digest in the name tells); uid 5: 100 bytes short
    f1, = attachment_files(s, 1)
    rewrite(f1, open(f1, "rb").read()[:-1])
    f5, = attachment_files(s, 5)
    rewrite(f5, open(f5, "rb").read()[:-100])
    # uid 4: its binary part changed in place, same size
    f4, = attachment_files(s, 4)
    data = bytearray(open(f4, "rb").read())
    data[1000] ^= 1
    rewrite(f4, bytes(data))
    bad = {3: "is missing", 1: "does not hold what its name says",
           5: "which make", 4: "does not hold what its name says"}
    mnt = str(tmp_path / "mnt")
    m = mounts(s.root, mnt, "index=" + s.index, "attachment_dir=" + s.att)
    got = read_all(mnt)
    for name, (size, data) in got.items():
        uid = uid_of(mnt, name)
        assert size == len(s.texts[uid])
        if uid in bad:
            assert data == errno.EIO, name
        else:
            assert data == s.texts[uid], name
    out = m.output()
    for uid, what in bad.items():
        assert any("uid %d:" % uid in ln and what in ln
                   for ln in out.splitlines()), (uid, out)
    stop_clean(m)
    lines = check_lines(s)
    assert len(lines) == len(bad), lines
    for uid, what in bad.items():
        assert any("uid %d:" % uid in ln and what in ln for ln in lines)
        p = s.ctl("cat", s.root, "INBOX", uid, check=False)
        assert p.returncode == 1 and p.stdout == b""
        assert what.encode() in p.stderr


def test_bad_attachment_dir_is_refused_at_start(att_stores, mounts, tmp_path):
    """A wrong path is one clear error when the store is opened, not EIO on
    every message later."""
    s = att_stores["sdbox"]
    afile = str(tmp_path / "a-file")
    open(afile, "w").close()
    for bad, why in (("/nonexistent-att", "No such file"),
                     (afile, "not a directory")):
        with pytest.raises(AssertionError, match="attachment directory"):
            mounts(s.root, str(tmp_path / "mnt"), "index=" + s.index,
                   "attachment_dir=" + bad)
        p = dboxctl("--index=" + s.index, "--attachment-dir=" + bad, "cat",
                    s.root, "INBOX", 1, check=False)
        assert p.returncode == 1 and p.stdout == b""
        assert ("attachment directory %s: %s" % (bad, why)).encode() in \
            p.stderr, p.stderr


@pytest.mark.parametrize("name", STORES)
def test_moved_in_takeover_reads_whole(att_stores, mounts, name, wtmp):
    """A taken-over store: messages moved to another folder through the
    mount read back exactly as before (sdbox: the file gets the other
    mailbox's name and uid, and so must its attachment files, whose names
    carry both), and so does Dovecot, handed the store (sdbox)."""
    s = copy_store(att_stores[name], wtmp)
    chown_tree(wtmp, *store_ids())
    da = Doveadm(os.path.join(wtmp, "da"), s.root, s.fmt)
    da(*s.opts(), "mailbox", "create", "Moved")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(s.root, mnt, "index=" + s.index, "attachment_dir=" + s.att,
               "takeover")
    want = {}
    for sub in ("cur", "new"):
        for n in os.listdir(os.path.join(mnt, sub)):
            want[n.split(":2,")[0]] = s.texts[uid_of(mnt, n)]
            os.rename(os.path.join(mnt, sub, n),
                      os.path.join(mnt, ".Moved", "cur",
                                   n.split(":2,")[0] + ":2,S"))
    got = read_all(os.path.join(mnt, ".Moved"))
    assert {n.split(":2,")[0]: v for n, v in got.items()} == \
        {n: (len(t), t) for n, t in want.items()}, m.output()
    stop_clean(m)
    if s.fmt == "mdbox":
        return  # Dovecot's own index still has them in INBOX (README)
    chown_tree(wtmp, *store_ids())
    da(*s.opts(), "force-resync", "*")
    uids = [int(x["uid"]) for x in json.loads(da(
        *s.opts(), "-f", "json", "fetch", "uid", "mailbox", "Moved").stdout)]
    texts = sorted(da(*s.opts(), "-f", "pager", "fetch", "text", "mailbox",
                      "Moved", "uid", str(uid)).stdout[len(b"text:\n"):]
                   for uid in uids)
    assert texts == sorted(want.values())


def test_moved_into_folder_made_by_the_mount(att_stores, mounts, wtmp):
    """sdbox, taken over: messages moved into a folder the mount made
    (mkdir) keep their attachments for Dovecot too.  Dovecot looks for an
    attachment file under a name with the folder's mailbox GUID from its
    own index, which a folder new to it gets (at random) only when it
    first opens it: such a message is written whole into it (same GUID).
    After unmount and force-resync, `doveadm fetch text` of the new folder
    gives exactly what the mount served; and after the source's messages
    are gone (the folder deleted, INBOX expunged, Dovecot's purge), still
    so."""
    s = copy_store(att_stores["sdbox"], wtmp)
    chown_tree(wtmp, *store_ids())
    da = Doveadm(os.path.join(wtmp, "da"), s.root, s.fmt)
    da(*s.opts(), "mailbox", "create", "Src")
    da(*s.opts(), "copy", "Src", "mailbox", "INBOX", "all")
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(s.root, mnt, "index=" + s.index, "attachment_dir=" + s.att,
               "takeover")
    os.mkdir(os.path.join(mnt, ".NewF"))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".NewF", sub))
    want, guids = {}, []
    for sub in ("cur", "new"):
        for n in os.listdir(os.path.join(mnt, ".Src", sub)):
            src = os.path.join(mnt, ".Src", sub, n)
            with open(src, "rb") as f:
                data = f.read()
            base = n.split(":2,")[0]
            guids.append(os.getxattr(src, "user.dbox.guid").decode())
            os.rename(src, os.path.join(mnt, ".NewF", "cur",
                                        base + ":2,S"))
            assert not os.path.exists(src)
            want[base] = data
    assert len(want) == len(s.texts)
    assert sorted(want.values()) == sorted(s.texts.values())
    got = read_all(os.path.join(mnt, ".NewF"))
    assert {n.split(":2,")[0]: v for n, v in got.items()} == \
        {n: (len(t), t) for n, t in want.items()}, m.output()
    stop_clean(m)
    chown_tree(wtmp, *store_ids())

    def texts(box):
        uids = [int(x["uid"]) for x in json.loads(da(
            *s.opts(), "-f", "json", "fetch", "uid", "mailbox",
            box).stdout)]
        return sorted(da(*s.opts(), "-f", "pager", "fetch", "text",
                         "mailbox", box, "uid", str(uid)).stdout[
                             len(b"text:\n"):] for uid in uids)
    da(*s.opts(), "force-resync", "*")
    assert texts("NewF") == sorted(want.values())
    assert texts("Src") == []      # moved, not copied
    assert sorted(x["guid"] for x in json.loads(da(
        *s.opts(), "-f", "json", "fetch", "guid", "mailbox",
        "NewF").stdout)) == sorted(guids)
    # what the source's messages held goes: the copies must not need it
    da(*s.opts(), "mailbox", "delete", "Src")
    da(*s.opts(), "expunge", "mailbox", "INBOX", "all")
    da(*s.opts(), "purge")
    da(*s.opts(), "force-resync", "*")
    assert texts("NewF") == sorted(want.values())


def test_moved_into_folder_an_older_mount_left(att_stores, mounts, wtmp):
    """sdbox, taken over: a folder an older mount made (Dovecot's index
    files of it gone) gets Dovecot's index when the mount opens the
    store, with the folder's GUID: messages moved into it then keep
    their parts in the attachment directory (their u.N names them, as
    Dovecot's own copy does) rather than inline, and Dovecot reads them
    whole, with no resync and after one."""
    s = copy_store(att_stores["sdbox"], wtmp)
    chown_tree(wtmp, *store_ids())
    da = Doveadm(os.path.join(wtmp, "da"), s.root, s.fmt)
    mnt = os.path.join(wtmp, "mnt")
    opts = ("index=" + s.index, "attachment_dir=" + s.att, "takeover")
    m = mounts(s.root, mnt, *opts)
    for sub in ("", "cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".OldF", sub))
    stop_clean(m)
    d = os.path.join(s.root, "mailboxes", "OldF", "dbox-Mails")
    for n in os.listdir(d):
        if n.startswith("dovecot.index"):
            os.unlink(os.path.join(d, n))
    m = mounts(s.root, mnt, *opts)
    want = {}
    for sub in ("cur", "new"):
        for n in os.listdir(os.path.join(mnt, sub)):
            with open(os.path.join(mnt, sub, n), "rb") as f:
                want[n.split(":2,")[0]] = f.read()
            os.rename(os.path.join(mnt, sub, n),
                      os.path.join(mnt, ".OldF", "cur",
                                   n.split(":2,")[0] + ":2,S"))
    got = read_all(os.path.join(mnt, ".OldF"))
    assert {n.split(":2,")[0]: v for n, v in got.items()} == \
        {n: (len(t), t) for n, t in want.items()}, m.output()
    stop_clean(m)
    linked = 0
    for n in os.listdir(d):
        if n.startswith("u."):
            with open(os.path.join(d, n), "rb") as f:
                linked += b"\nX" in f.read().split(b"\n\x01\x03\n")[1]
    assert linked == len(s.external_uids())
    chown_tree(wtmp, *store_ids())

    def texts():
        uids = [int(x["uid"]) for x in json.loads(da(
            *s.opts(), "-f", "json", "fetch", "uid", "mailbox",
            "OldF").stdout)]
        return sorted(da(*s.opts(), "-f", "pager", "fetch", "text",
                         "mailbox", "OldF", "uid", str(uid)).stdout[
                             len(b"text:\n"):] for uid in uids)
    assert texts() == sorted(want.values())
    da(*s.opts(), "force-resync", "*")
    assert texts() == sorted(want.values())


def test_move_into_folder_made_by_the_mount_missing_part(att_stores, mounts,
                                                         wtmp):
    """The same move of a message whose attachment file is gone: the
    message cannot be read whole (the folder has Dovecot's index, made by
    the mount: its parts would be linked), so the rename fails with EIO
    and the message stays where it was (nothing half moved)."""
    s = copy_store(att_stores["sdbox"], wtmp)
    for d, _, files in os.walk(s.att):
        for n in files:
            os.unlink(os.path.join(d, n))
    chown_tree(wtmp, *store_ids())
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(s.root, mnt, "index=" + s.index, "attachment_dir=" + s.att,
               "takeover")
    os.mkdir(os.path.join(mnt, ".NewF"))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".NewF", sub))
    failed = 0
    for sub in ("cur", "new"):
        for n in os.listdir(os.path.join(mnt, sub)):
            plain = b"no attachment" in s.texts[uid_of(mnt, n)]
            try:
                os.rename(os.path.join(mnt, sub, n),
                          os.path.join(mnt, ".NewF", "cur", n))
                assert plain, n
            except OSError as e:
                assert e.errno == errno.EIO and not plain, (n, e)
                assert os.path.exists(os.path.join(mnt, sub, n))
                failed += 1
    assert failed == len(s.external_uids())
    assert len(os.listdir(os.path.join(mnt, ".NewF", "cur"))) == 1
    stop_clean(m)


def test_move_without_attachment_dir_is_refused(att_stores, mounts, wtmp):
    """Without -o attachment_dir the files cannot be given the new names:
    the move fails with EIO and the message stays where it was."""
    s = copy_store(att_stores["sdbox"], wtmp)
    chown_tree(wtmp, *store_ids())
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(s.root, mnt, "index=" + s.index, "takeover")
    os.mkdir(os.path.join(mnt, ".Moved"))
    for sub in ("cur", "new", "tmp"):
        os.mkdir(os.path.join(mnt, ".Moved", sub))
    names = {sub: os.listdir(os.path.join(mnt, sub)) for sub in ("cur", "new")}
    refused = 0
    for sub, ns in names.items():
        for n in ns:
            plain = b"no attachment" in s.texts[uid_of(mnt, n)]
            try:
                os.rename(os.path.join(mnt, sub, n),
                          os.path.join(mnt, ".Moved", "cur", n))
                assert plain, n
            except OSError as e:
                assert e.errno == errno.EIO and not plain, n
                refused += 1
                assert os.path.exists(os.path.join(mnt, sub, n))
    assert refused == len(s.external_uids())
    stop_clean(m)
