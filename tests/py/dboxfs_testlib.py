"""Shared helpers for the dboxfs pytest suites: paths of the built programs,
running them with bounded time, Dovecot's doveadm on any store, and
hostile test messages.  Fixtures are imported by the test modules that use
them (``from dboxfs_testlib import *``)."""

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DBOXFS_BUILD", os.path.join(TOP, "build"))
DBOXCTL = os.path.join(BUILD, "tools", "dboxctl", "dboxctl")
DBOXFS = os.path.join(BUILD, "fusefs", "dboxfs")
MAKE_STORE = os.path.join(TOP, "tests", "fixtures", "dovecot_store.py")
STORE_USER = os.environ.get("DBOX_STORE_USER", "nobody")

# Messages no parser may choke on (the list of hostile inputs).
HOSTILE = {
    "post-magic": b"Subject: post magic\n\nbefore\n\n\x01\x03\nafter\n",
    "pre-magic": b"Subject: pre magic\n\n\x01\x02N          0000000000000010\nx\n",
    "no-final-newline": b"Subject: no newline\n\nlast line",
    "crlf": b"Subject: crlf\r\nFrom: a@b\r\n\r\nbody\r\nline 2\r\n",
    "nul-bytes": b"Subject: nul\n\na\x00b\x00\x00c\n",
    "empty": b"",
    "lone-cr": b"Subject: cr\n\na\rb\n",
    "metadata-lookalike": b"Subject: meta\n\nG1234\nR55\n\n\n",
}


def big_message(size=20 * 1024 * 1024):
    """A 20 MB message with varied lines (not one repeated block)."""
    head = b"Subject: big\nFrom: big@example.org\n\n"
    line = b"".join(bytes([97 + (i % 26)]) for i in range(75)) + b"\n"
    body = bytearray(head)
    i = 0
    while len(body) < size:
        body += b"%08d " % i + line
        i += 1
    return bytes(body[:size - 1]) + b"\n"


def run(cmd, timeout=120, check=True, input=None, env=None, **kw):
    """Runs a command with a bounded wait; returns CompletedProcess."""
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                       env=env, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" % (
            cmd, p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p


def dboxctl(*args, check=True, timeout=300, input=None, env=None):
    return run([DBOXCTL] + [str(a) for a in args], timeout=timeout,
               check=check, input=input, env=env)


def have_dovecot():
    return shutil.which("doveadm") is not None and shutil.which("dovecot") is not None


needs_dovecot = pytest.mark.skipif(not have_dovecot(),
                                   reason="dovecot-core/dovecot-imapd not installed")


def store_ids():
    pw = pwd.getpwnam(STORE_USER)
    return pw.pw_uid, pw.pw_gid


def chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)


@pytest.fixture
def wtmp():
    """A temporary directory that the unprivileged store user can reach
    (pytest's own tmp_path is 0700 under root's directory)."""
    d = tempfile.mkdtemp(prefix="dboxfs-test.", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Doveadm:
    """doveadm on one store with no Dovecot daemon, as the store's owner
    (Dovecot refuses to work as root).  The store is chowned to that user."""

    def __init__(self, workdir, root, fmt):
        self.root = root
        self.fmt = fmt
        self.dir = os.path.join(workdir, "doveadm-" + fmt)
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        uid, gid = store_ids()
        self.uid, self.gid = uid, gid
        with open(os.path.join(self.dir, "doveadm.conf"), "w") as f:
            f.write("base_dir = %s/run\nlog_path = /dev/stderr\nprotocols =\n"
                    "ssl = no\nnamespace inbox {\n  inbox = yes\n"
                    "  separator = /\n}\nfirst_valid_uid = 1\n"
                    "first_valid_gid = 0\nmail_uid = %d\nmail_gid = %d\n"
                    % (self.dir, uid, gid))
        chown_tree(self.dir, uid, gid)
        chown_tree(root, uid, gid)

    def __call__(self, *args, check=True, input=None, timeout=300):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "USER": STORE_USER, "HOME": self.dir}
        cmd = ["doveadm", "-c", os.path.join(self.dir, "doveadm.conf"),
               "-o", "mail_location=%s:%s" % (self.fmt, self.root)] + list(args)
        return run(cmd, check=check, input=input, env=env, cwd="/",
                   timeout=timeout)

    def fetch(self, fields, *query):
        """doveadm -f json fetch; returns a list of dicts ("text" as
        bytes: doveadm's JSON carries it as UTF-8 with \\u escapes)."""
        q = list(query) or ["all"]
        out = self("-f", "json", "fetch", fields, *q).stdout
        msgs = json.loads(out.decode("utf-8", "surrogateescape")) if out.strip() else []
        for m in msgs:
            if "text" in m:
                m["text"] = m["text"].encode("utf-8", "surrogateescape")
        return msgs

    def force_resync(self, mailbox="*"):
        return self("force-resync", mailbox)


def make_maildir(path, messages, flags=None, mtimes=None, new=()):
    """A maildir at path with {base: bytes}; flags {base: "FS"}; mtimes
    {base: unix}; bases in `new` go to new/."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    flags = flags or {}
    mtimes = mtimes or {}
    for base, data in messages.items():
        if base in new:
            p = os.path.join(path, "new", base)
        else:
            p = os.path.join(path, "cur", base + ":2," + flags.get(base, ""))
        with open(p, "wb") as f:
            f.write(data)
        if base in mtimes:
            os.utime(p, (mtimes[base], mtimes[base]))
    return path


def export_maildir(store, mailbox, dest, *extra):
    """dboxctl export; returns {base: (bytes, info, in_new, mtime)}."""
    dboxctl(*extra, "export", store, mailbox, dest)
    out = {}
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(dest, sub)):
            p = os.path.join(dest, sub, name)
            base, _, info = name.partition(":2,")
            with open(p, "rb") as f:
                out[base] = (f.read(), info, sub == "new",
                             int(os.stat(p).st_mtime))
    return out


def ls_messages(store, mailbox, *extra):
    """dboxctl ls STORE MAILBOX as dicts."""
    rows = []
    out = dboxctl(*extra, "ls", store, mailbox).stdout.decode()
    for line in out.splitlines():
        uid, info, size, received, guid, base = line.split("\t")
        rows.append({"uid": int(uid), "info": info, "size": int(size),
                     "received": int(received), "guid": guid, "base": base})
    return rows


def ls_mailboxes(store, *extra):
    out = dboxctl(*extra, "ls", store).stdout.decode("utf-8")
    res = {}
    for line in out.splitlines():
        name, count, uidv, nextuid, guid = line.split("\t")
        res[name] = {"messages": int(count), "uidvalidity": int(uidv),
                     "next_uid": int(nextuid), "guid": guid}
    return res


# ------------------------------------------------------- Dovecot-written stores

HOSTILE_SAVES = [b for k, b in HOSTILE.items() if k != "crlf"]


@pytest.fixture(scope="session")
def dovecot_tree():
    """Stores written by the real Dovecot, with hostile messages saved by
    doveadm on top of dovecot_store.py's content, then snapshots of
    what doveadm reports.  Built once per test session (~10 s)."""
    top = tempfile.mkdtemp(prefix="dboxfs-dovecot.", dir="/tmp")
    os.chmod(top, 0o755)
    out = os.path.join(top, "out")
    run([MAKE_STORE, out], timeout=300)
    da = os.path.join(out, "dovecot", "doveadm-store")
    for fmt in ("sdbox", "mdbox"):
        for data in HOSTILE_SAVES + [big_message()]:
            run([da, fmt, "save", "-m", "INBOX"], input=data, timeout=120)
        # expunged + purged in mdbox (and plain expunge in sdbox)
        run([da, fmt, "save", "-m", "Trash"], input=b"Subject: gone\n\nx\n")
        run([da, fmt, "expunge", "mailbox", "Trash", "all"])
        if fmt == "mdbox":
            run([da, fmt, "purge"])
    yield top, out
    shutil.rmtree(top, ignore_errors=True)


def tree_state(root):
    """(path, size, mtime_ns) of everything under root."""
    state = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            st = os.lstat(os.path.join(d, n))
            state.append((os.path.join(d, n), st.st_size, st.st_mtime_ns))
    return sorted(state)


def files_state(top, skip=None, ino=False):
    """Every path below top with its mode, size, mtime, bytes (and inode
    number if ino); skip(dir, name) leaves a directory of top out."""
    state = {}
    for d, dirs, files in os.walk(top):
        if skip is not None and d == top:
            dirs[:] = [n for n in dirs if not skip(d, n)]
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            data = None
            if not os.path.isdir(p):
                with open(p, "rb") as f:
                    data = f.read()
            key = (st.st_mode, st.st_size, st.st_mtime_ns)
            state[os.path.relpath(p, top)] = key + \
                ((st.st_ino,) if ino else ()) + (data,)
    return state


def doveadm_view(out, fmt):
    da = os.path.join(out, "dovecot", "doveadm-store")
    p = run([da, fmt, "-f", "json", "fetch",
             "mailbox guid date.received.unixtime text", "all"])
    msgs = json.loads(p.stdout.decode("utf-8", "surrogateescape"))
    view = {}
    for m in msgs:
        view.setdefault(m["mailbox"], {})[m["guid"]] = (
            m["text"].encode("utf-8", "surrogateescape"),
            int(m["date.received.unixtime"]))
    return view




# ------------------------------------------------------------------ mounts

def mount_dev(path):
    """major:minor of the filesystem mounted at path, or None."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return fields[2]
    return None


def is_mounted(path):
    return mount_dev(path) is not None


def abort_fuse(dev):
    """Aborts a FUSE connection (its requests fail at once), so that a
    daemon that died cannot leave processes hanging on the mount."""
    ctl = "/sys/fs/fuse/connections"
    if not os.path.isdir(ctl) or not os.listdir(ctl):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", ctl],
                       capture_output=True, timeout=10)
    minor = dev.split(":")[1]
    try:
        with open(os.path.join(ctl, minor, "abort"), "w") as f:
            f.write("1")
    except OSError:
        pass


def wait_for(cond, timeout=10.0, interval=0.02, what="condition"):
    """Polls cond() until true; bounded, never a bare sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def drops():
    """How many times anyone wrote /proc/sys/vm/drop_caches: a pass
    during which it moved lost its pushed pages to another program (the
    machine's other test runs and benchmarks do that) and proves
    nothing."""
    with open("/proc/vmstat") as f:
        for line in f:
            if line.startswith("drop_pagecache "):
                return int(line.split()[1])
    return 0


class Strace:
    """strace on the daemon's threads, of the system calls named (INDEX:
    the index's: SQLite's read transaction takes locks on its shared
    memory, stats the database, reads pages); stopped by its PID."""

    INDEX = "fcntl,pread64,newfstatat,fstat,openat"

    def __init__(self, pid, out, calls):
        self.out = out
        self.err = open(out + ".err", "w+")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", "trace=" + calls,
             "-o", out, "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=self.err)
        # attached to every thread: the daemon's calls show from now on
        wait_for(lambda: self.attached(pid), timeout=20,
                 what="strace to attach")

    def attached(self, pid):
        tids = os.listdir("/proc/%d/task" % pid)
        state = []
        for t in tids:
            try:
                with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                    state += [ln for ln in f if ln.startswith("TracerPid")]
            except FileNotFoundError:
                pass
        return state and all(ln.split()[1] != "0" for ln in state)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        self.err.close()
        with open(self.out) as f:
            return [ln for ln in f if "(" in ln]


class Mount:
    """A dboxfs daemon in the foreground on `mnt`; stop() unmounts and
    reaps it (by PID), killing it only if it does not exit."""

    def __init__(self, store, mnt, *opts, env=None):
        self.store, self.mnt = store, mnt
        os.makedirs(mnt, exist_ok=True)
        there = mount_dev(mnt)      # another mount's, which is not ours
        self.log = tempfile.TemporaryFile()
        args = [DBOXFS, store, mnt, "-f"]
        for o in opts:
            args += ["-o", o]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     env=env)
        try:
            wait_for(lambda: is_mounted(mnt) or self.proc.poll() is not None,
                     what="mount of " + mnt)
        except AssertionError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            # a daemon that died right after mounting (the power-cut
            # simulator's cut) leaves its dead mount, which would make
            # the next mount's mkdir fail: detach it, not another's
            dev = mount_dev(mnt)
            if dev is not None and dev != there:
                run(["fusermount3", "-uz", mnt], check=False)
            raise AssertionError("dboxfs exited %d: %s" % (
                self.proc.returncode, self.output()))

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self, timeout=15):
        dev = mount_dev(self.mnt)
        if dev is not None:
            p = run(["fusermount3", "-u", self.mnt], check=False)
            if p.returncode != 0 and is_mounted(self.mnt):
                run(["fusermount3", "-uz", self.mnt], check=False)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                if dev is not None:
                    abort_fuse(dev)
                self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def kill(self):
        """SIGKILL, as a crash; the connection is aborted so that nothing
        waits on the dead daemon, then the mount point is detached."""
        dev = mount_dev(self.mnt)
        self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            if dev is not None:
                abort_fuse(dev)
            self.proc.wait(timeout=10)
        if is_mounted(self.mnt):
            run(["fusermount3", "-uz", self.mnt], check=False)


@pytest.fixture
def mounts():
    """Factory: mounts(store, mnt, *opts) -> Mount; all unmounted at the
    end of the test, whatever happened."""
    made = []

    def make(store, mnt, *opts, env=None):
        m = Mount(store, mnt, *opts, env=env)
        made.append(m)
        return m
    yield make
    for m in made:
        m.stop()
    for m in made:
        check_no_race_report(m.output())


def check_no_race_report(log):
    """A ThreadSanitizer report fails the test even when the daemon lived
    on (no halt_on_error) or died only at its unmount, where nothing else
    would notice."""
    at = log.find("ThreadSanitizer")
    if at >= 0:
        pytest.fail("dboxfs reported a data race:\n" + log[max(0, at - 200):
                                                           at + 6000])
