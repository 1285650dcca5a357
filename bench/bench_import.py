#!/usr/bin/python3
"""Import and export of archives: dboxctl import (maildir and mbox) and
export, vs doveadm import and doveadm backup of the same messages, into
mdbox and sdbox.  Seconds, messages/s, maxrss of the process.

    sudo bench/bench_import.py [--counts 10000,100000] [--million]

Dovecot runs as nobody (it refuses root) on stores owned by nobody."""

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import DBOXCTL

NOBODY = pwd.getpwnam("nobody")


def message(i):
    return (b"From: a@example.com\nTo: b@example.com\n"
            b"Subject: message %d\nMessage-ID: <%d@example.com>\n"
            b"\nbody of message %d\n" % (i, i, i))


def make_sources(work, n):
    md = os.path.join(work, "src-maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub))
    with open(os.path.join(work, "src.mbox"), "wb") as mbox:
        for i in range(n):
            with open(os.path.join(md, "cur", "m%07d:2,S" % i), "wb") as f:
                f.write(message(i))
            mbox.write(b"From a@example.com Thu Nov 24 18:22:48 2022\n" +
                       message(i) + b"\n")
    return md, os.path.join(work, "src.mbox")


def chown_tree(path):
    for root, dirs, files in os.walk(path):
        os.chown(root, NOBODY.pw_uid, NOBODY.pw_gid)
        for n in files:
            os.lchown(os.path.join(root, n), NOBODY.pw_uid, NOBODY.pw_gid)


def timed(cmd, env=None):
    """(seconds, maxrss MiB) of a command, which must succeed.  The rss
    comes from /usr/bin/time: a child forked from Python starts with
    Python's high-water mark."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] +
                           cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=env, cwd="/")
        secs = time.monotonic() - t
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s" % (cmd, p.stderr[-2000:]))
        return secs, int(rss.read().split()[-1]) / 1024.0


class Doveadm:
    def __init__(self, work):
        self.dir = os.path.join(work, "doveadm")
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        with open(os.path.join(self.dir, "doveadm.conf"), "w") as f:
            f.write("base_dir = %s/run\nlog_path = /dev/stderr\n"
                    "protocols =\nssl = no\nnamespace inbox {\n"
                    "  inbox = yes\n  separator = /\n}\n"
                    "first_valid_uid = 1\nfirst_valid_gid = 0\n"
                    "mail_uid = %d\nmail_gid = %d\n"
                    % (self.dir, NOBODY.pw_uid, NOBODY.pw_gid))
        chown_tree(self.dir)

    def cmd(self, location, *args):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "USER": "nobody",
               "HOME": self.dir}
        return (["setpriv", "--reuid=%d" % NOBODY.pw_uid,
                 "--regid=%d" % NOBODY.pw_gid, "--clear-groups",
                 "doveadm", "-c", os.path.join(self.dir, "doveadm.conf"),
                 "-o", "mail_location=" + location] + list(args), env)


def bench(work, n, fmt, da):
    res = {}
    md, mbox = make_sources(work, n)
    chown_tree(work)
    for src, name in ((md, "maildir"), (mbox, "mbox")):
        store = os.path.join(work, "store-%s-%s" % (fmt, name))
        subprocess.run([DBOXCTL, "init", store, "--format", fmt],
                       check=True, capture_output=True)
        res["dboxctl import " + name] = timed(
            [DBOXCTL, "import", store, "Box", src])
    store = os.path.join(work, "store-%s-maildir" % fmt)
    out = os.path.join(work, "export")
    res["dboxctl export"] = timed([DBOXCTL, "export", store, "Box", out])
    if da is not None:
        dstore = os.path.join(work, "dovecot-" + fmt)
        os.makedirs(dstore)
        chown_tree(dstore)
        cmd, env = da.cmd("%s:%s" % (fmt, dstore), "import",
                          "maildir:" + md, "Box", "all")
        res["doveadm import maildir"] = timed(cmd, env)
        bdir = os.path.join(work, "backup")
        os.makedirs(bdir)
        chown_tree(bdir)
        cmd, env = da.cmd("%s:%s" % (fmt, dstore), "backup",
                          "maildir:" + bdir)
        res["doveadm backup to maildir"] = timed(cmd, env)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10000,100000")
    ap.add_argument("--million", action="store_true",
                    help="also 1,000,000 messages")
    ap.add_argument("--no-dovecot", action="store_true")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.million:
        counts.append(1000000)
    base = tempfile.mkdtemp(prefix="bench-import.", dir="/var/tmp")
    os.chmod(base, 0o755)
    print("| messages | format | command | seconds | msg/s | maxrss MiB |")
    print("|---|---|---|---|---|---|")
    try:
        for n in counts:
            for fmt in ("mdbox", "sdbox"):
                work = os.path.join(base, "%d-%s" % (n, fmt))
                os.makedirs(work)
                da = None if args.no_dovecot or shutil.which("doveadm") \
                    is None else Doveadm(work)
                for what, (secs, rss) in bench(work, n, fmt, da).items():
                    print("| %d | %s | %s | %.1f | %.0f | %.1f |" % (
                        n, fmt, what, secs, n / secs, rss))
                    sys.stdout.flush()
                shutil.rmtree(work)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
