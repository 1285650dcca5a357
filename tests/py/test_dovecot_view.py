"""A Dovecot store on the mount as Dovecot's users see it: flags, keywords
and folders equal what doveadm reports; and a running Dovecot's changes
(deliveries, flag changes, expunges, new folders) show on the mount within
a second, without remounting."""

import os
import pwd
import signal
import socket
import subprocess
import time

import pytest

from dboxfs_testlib import (DBOXFS, STORE_USER, dovecot_tree, mounts,
                            needs_dovecot, run, wait_for)  # noqa: F401

pytestmark = [needs_dovecot,
              pytest.mark.skipif(not os.path.exists(DBOXFS),
                                 reason="dboxfs not built")]

LETTERS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered",
           "S": "\\Seen", "T": "\\Deleted"}


def folder_of(mnt, mailbox):
    if mailbox == "INBOX":
        return mnt
    name = "".join("%%%02X" % ord(c) if c in ".%" else c for c in mailbox)
    return os.path.join(mnt, "." + name.replace("/", "."))


def view_of(mnt, mailbox):
    """{guid: set of flags and keyword names} as the mount shows them."""
    folder = folder_of(mnt, mailbox)
    kw = {}
    kwfile = os.path.join(folder, "dovecot-keywords")
    if os.path.exists(kwfile):
        for line in open(kwfile):
            idx, name = line.rstrip("\n").split(" ", 1)
            kw[chr(ord("a") + int(idx))] = name
    res = {}
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(folder, sub)):
            path = os.path.join(folder, sub, name)
            guid = os.getxattr(path, "user.dbox.guid").decode()
            info = name.split(":2,", 1)[1] if ":2," in name else ""
            assert sub == "cur" or info == ""
            res[guid] = {LETTERS[c] for c in info if c in LETTERS} | \
                {kw[c] for c in info if c.islower()}
    return res


def view_polled(mnt, mailbox):
    """view_of for a poll while Dovecot changes the mailbox: a message it
    renames (a flag change) between our listing and our read of the name
    is gone under the name listed, as in any maildir another program
    renames in (ENOENT, what a maildir reader lists again for): None,
    poll again."""
    try:
        return view_of(mnt, mailbox)
    except FileNotFoundError:
        return None


def doveadm_flags(fetch):
    res = {}
    for m in fetch:
        flags = set(m["flags"].split()) - {"\\Recent"}
        res.setdefault(m["mailbox"], {})[m["guid"]] = flags
    return res


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_flags_keywords_folders_as_doveadm(dovecot_tree, mounts, fmt):
    top, out = dovecot_tree
    da = os.path.join(out, "dovecot", "doveadm-store")
    import json
    fetch = json.loads(run([da, fmt, "-f", "json", "fetch",
                            "uid flags mailbox guid", "all"]).stdout)
    expected = doveadm_flags(fetch)
    mnt = os.path.join(top, "view-" + fmt)
    mounts(os.path.join(out, fmt), mnt,
           "index=" + os.path.join(top, "view-%s.sqlite" % fmt))
    for box, msgs in expected.items():
        assert view_of(mnt, box) == msgs, box
    # every folder Dovecot has messages in, and no message elsewhere
    shown = sum(len(os.listdir(os.path.join(d, s)))
                for d in [mnt] + [os.path.join(mnt, e) for e in os.listdir(mnt)
                                  if e.startswith(".")]
                for s in ("cur", "new") if os.path.isdir(os.path.join(d, s)))
    assert shown == sum(len(m) for m in expected.values())


# ------------------------------------------------------------- a live Dovecot

def conf_value(conf, key):
    for line in open(conf):
        parts = line.split("=", 1)
        if len(parts) == 2 and parts[0].strip() == key:
            return parts[1].strip()
    raise KeyError(key)


class LiveDovecot:
    """The private Dovecot of a dovecot_store.py output, started
    again (IMAP on 127.0.0.1 only) and stopped by PID."""

    def __init__(self, out):
        self.out = out
        self.conf = os.path.join(out, "dovecot", "dovecot.conf")
        pw = pwd.getpwnam(STORE_USER)
        self.ids = (pw.pw_uid, pw.pw_gid)
        base = conf_value(self.conf, "base_dir")
        os.makedirs(os.path.join(base, "state"), exist_ok=True)
        for d in (base, os.path.join(base, "state")):
            os.chown(d, *self.ids)
            os.chmod(d, 0o755)
        self.port = int([line.split("=")[1] for line in open(self.conf)
                         if line.strip().startswith("port =") and
                         line.split("=")[1].strip() != "0"][0])
        self.proc = subprocess.Popen(
            self.as_user(["dovecot", "-F", "-c", self.conf]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, timeout=20, what="Dovecot to listen")

    def as_user(self, cmd):
        return ["setpriv", "--reuid=%d" % self.ids[0],
                "--regid=%d" % self.ids[1], "--clear-groups", "env", "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + cmd

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                return s.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def lda(self, user, data):
        run(self.as_user(["/usr/lib/dovecot/dovecot-lda", "-c", self.conf,
                          "-d", user, "-f", "sender@example.org"]),
            input=data)

    def doveadm(self, user, command, *args, input=None):
        """doveadm through the running instance: command words, then -u,
        then the command's arguments."""
        return run(self.as_user(["doveadm", "-c", self.conf] +
                                command.split() + ["-u", user] + list(args)),
                   input=input)

    def stop(self):
        kids = run(["pgrep", "--parent", str(self.proc.pid)],
                   check=False).stdout.split()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for k in kids:
            try:
                os.kill(int(k), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def live_dovecot(dovecot_stores_factory):
    stores = dovecot_stores_factory()
    d = LiveDovecot(stores.out)
    yield stores, d
    d.stop()


def within_a_second(cond, what):
    """The contract: visible within a second of the change."""
    t = time.monotonic()
    wait_for(cond, timeout=1.0, interval=0.01, what=what)
    return time.monotonic() - t


def names(mnt, *parts):
    d = os.path.join(mnt, *parts)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_follows_a_running_dovecot(live_dovecot, mounts, fmt):
    stores, dove = live_dovecot
    mnt = os.path.join(stores.top, "live-" + fmt)
    mounts(stores.root(fmt), mnt,
           "index=" + os.path.join(stores.top, "live-%s.sqlite" % fmt))
    before_new, before_cur = names(mnt, "new"), names(mnt, "cur")
    mtime = os.stat(os.path.join(mnt, "new")).st_mtime_ns

    # a delivery through the LDA
    dove.lda(fmt, b"Subject: live 1\nMessage-ID: <live1@x>\n\nhello\n")
    within_a_second(lambda: len(names(mnt, "new")) + len(names(mnt, "cur")) ==
                    len(before_new) + len(before_cur) + 1, "the delivery")
    new = [n for n in names(mnt, "new") + names(mnt, "cur")
           if n not in before_new + before_cur][0]
    sub = "new" if new in names(mnt, "new") else "cur"
    with open(os.path.join(mnt, sub, new), "rb") as f:
        assert f.read() == b"Subject: live 1\nMessage-ID: <live1@x>\n\nhello\n"
    assert os.stat(os.path.join(mnt, sub)).st_mtime_ns != mtime or sub == "cur"
    uid = os.getxattr(os.path.join(mnt, sub, new), "user.dbox.uid").decode()

    # flags set by doveadm
    dove.doveadm(fmt, "flags add", "\\Seen \\Flagged", "mailbox", "INBOX",
                 "uid", uid)
    within_a_second(lambda: any(n.startswith(new.split(":2,")[0]) and
                                n.endswith(":2,FS") for n in names(mnt, "cur")),
                    "the flag change")

    # expunged by doveadm
    dove.doveadm(fmt, "expunge", "mailbox", "INBOX", "uid", uid)
    within_a_second(lambda: not any(n.startswith(new.split(":2,")[0])
                                    for n in names(mnt, "cur") +
                                    names(mnt, "new")), "the expunge")

    # a new folder with a message (doveadm save)
    dove.doveadm(fmt, "mailbox create", "Fresh")
    dove.doveadm(fmt, "save", "-m", "Fresh",
                 input=b"Subject: fresh\n\nin a new folder\n")
    within_a_second(lambda: len(names(mnt, ".Fresh", "new")) +
                    len(names(mnt, ".Fresh", "cur")) == 1, "the new folder")


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_falls_back_to_the_files_when_the_indexes_are_gone(
        dovecot_stores_factory, mounts, fmt):
    """Without usable Dovecot indexes the mount still shows every message
    whose file is intact (from the dbox files alone), and says so."""
    stores = dovecot_stores_factory()
    root = stores.root(fmt)
    doomed = os.path.join(root, "storage") if fmt == "mdbox" else \
        os.path.join(root, "mailboxes", "INBOX", "dbox-Mails")
    for n in os.listdir(doomed):
        if n.startswith("dovecot.") and "index" in n:
            if fmt == "mdbox":
                os.unlink(os.path.join(doomed, n))
            else:
                # garbage instead of the log: unusable, not just missing
                with open(os.path.join(doomed, n), "wb") as f:
                    f.write(b"\x00garbage" * 20)
    mnt = os.path.join(stores.top, "fallback")
    m = mounts(root, mnt, "index=" + os.path.join(stores.top, "fb.sqlite"))
    texts = []
    for d in [mnt] + [os.path.join(mnt, e) for e in os.listdir(mnt)
                      if e.startswith(".")]:
        for sub in ("cur", "new"):
            if os.path.isdir(os.path.join(d, sub)):
                for n in os.listdir(os.path.join(d, sub)):
                    with open(os.path.join(d, sub, n), "rb") as f:
                        texts.append(f.read())
    m.stop()
    want = {m_["text"].encode("utf-8", "surrogateescape")
            for m_ in stores.messages_json(fmt)}
    # every message Dovecot had is there (mdbox: expunged-but-unpurged
    # ones come back, as after Dovecot's own rebuild)
    assert want <= set(texts)
    log = m.output()
    assert ("indexing the dbox files alone" in log or
            "cannot read its index" in log or "dovecot.index" in log), log
