#!/usr/bin/python3
"""Import and export of archives: dboxctl import (maildir and mbox) and
export, vs doveadm import and doveadm backup of the same messages, into
mdbox and sdbox.  Seconds, messages/s, maxrss of the process.

    sudo bench/bench_import.py [--counts 10000,100000] [--million]
        [--formats mdbox,sdbox] [--repeat N] [--no-dovecot]
        [--dovecot-counts 10000,100000] [--backup-counts 10000]

The sources (one maildir, one mbox) are made once per count; each round
runs dboxctl and doveadm alternately; medians of the rounds are printed.
dboxctl runs under a hard limit of NOFILE descriptors.

Dovecot runs as nobody (it refuses root) on stores owned by nobody."""

import argparse
import os
import pwd
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import DBOXCTL

NOBODY = pwd.getpwnam("nobody")
# descriptors dboxctl may have at most (its sdbox transaction keeps 64
# files open at once, plus the index, spool and fs layer)
NOFILE = 256


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


def timed(cmd, env=None, preexec=None):
    """(seconds, maxrss MiB) of a command, which must succeed.  The rss
    comes from /usr/bin/time: a child forked from Python starts with
    Python's high-water mark."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] +
                           cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=env, cwd="/",
                           preexec_fn=preexec)
        secs = time.monotonic() - t
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s" % (cmd, p.stderr[-2000:]))
        return secs, int(rss.read().split()[-1]) / 1024.0


class Doveadm:
    def __init__(self, work):
        self.dir = os.path.join(work, "doveadm")
        self.backup = True
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


def limit_fds():
    """dboxctl runs under a hard RLIMIT_NOFILE of NOFILE: a descriptor
    count that grew with the messages would fail the run."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    chown_tree(path)
    return path


def steps(work, fmt, md, mbox, da):
    """(name, thunk) of one round, dboxctl and doveadm alternating so
    that a change of the machine's load falls on both alike."""
    st = {}

    def ctl_import(name, src):
        store = os.path.join(work, "store-%s-%s" % (fmt, name))
        shutil.rmtree(store, ignore_errors=True)
        subprocess.run([DBOXCTL, "init", store, "--format", fmt],
                       check=True, capture_output=True)
        st[name] = store
        return timed([DBOXCTL, "import", store, "Box", src],
                     preexec=limit_fds)

    def ctl_export():
        out = os.path.join(work, "export")
        shutil.rmtree(out, ignore_errors=True)
        return timed([DBOXCTL, "export", st["maildir"], "Box", out],
                     preexec=limit_fds)

    def da_import():
        st["dovecot"] = fresh_dir(os.path.join(work, "dovecot-" + fmt))
        cmd, env = da.cmd("%s:%s" % (fmt, st["dovecot"]), "import",
                          "maildir:" + md, "Box", "all")
        return timed(cmd, env)

    def da_backup():
        bdir = fresh_dir(os.path.join(work, "backup"))
        cmd, env = da.cmd("%s:%s" % (fmt, st["dovecot"]), "backup",
                          "maildir:" + bdir)
        return timed(cmd, env)

    out = [("dboxctl import maildir", lambda: ctl_import("maildir", md))]
    if da is not None:
        out.append(("doveadm import maildir", da_import))
    out += [("dboxctl import mbox", lambda: ctl_import("mbox", mbox)),
            ("dboxctl export", ctl_export)]
    if da is not None and da.backup:
        out.append(("doveadm backup to maildir", da_backup))
    return out


def bench(work, n, fmt, md, mbox, da, repeat, only=()):
    """{name: [(seconds, maxrss MiB)] per round}"""
    res = {}
    for _ in range(repeat):
        for name, run in steps(work, fmt, md, mbox, da):
            if only and not any(o in name for o in only):
                continue
            res.setdefault(name, []).append(run())
            # each run as it ends, for a long one
            print("# %d %s %s: %.1f s, %.1f MiB" % ((n, fmt, name) +
                                                   res[name][-1]),
                  file=sys.stderr, flush=True)
    for name in ("store-%s-maildir" % fmt, "store-%s-mbox" % fmt, "export",
                 "dovecot-" + fmt, "backup"):
        shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    return res


def row(n, fmt, what, runs):
    secs = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[1] for r in runs)
    return "| %d | %s | %s | %.1f | %.0f | %.1f | %d |" % (
        n, fmt, what, secs, n / secs, rss, len(runs))


def counts_arg(text):
    return [int(c) for c in text.split(",") if c]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10000,100000", type=counts_arg)
    ap.add_argument("--million", action="store_true",
                    help="also 1,000,000 messages")
    ap.add_argument("--formats", default="mdbox,sdbox")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds per count and format (medians)")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--only", default="",
                    help="run only the commands containing one of these "
                    "comma-separated words (e.g. 'import maildir')")
    ap.add_argument("--dovecot-counts", type=counts_arg, default=None,
                    help="counts at which doveadm runs too (default: all)")
    ap.add_argument("--backup-counts", type=counts_arg, default=None,
                    help="counts at which doveadm backup runs (default: "
                    "those of doveadm)")
    args = ap.parse_args()
    counts = args.counts + ([1000000] if args.million else [])
    base = tempfile.mkdtemp(prefix="bench-import.", dir="/var/tmp")
    os.chmod(base, 0o755)
    print("| messages | format | command | seconds | msg/s | maxrss MiB "
          "| runs |")
    print("|---|---|---|---|---|---|---|")
    try:
        for n in counts:
            work = os.path.join(base, str(n))
            os.makedirs(work)
            md, mbox = make_sources(work, n)
            chown_tree(work)
            for fmt in args.formats.split(","):
                da = None
                if not args.no_dovecot and shutil.which("doveadm") and \
                        (args.dovecot_counts is None or
                         n in args.dovecot_counts):
                    da = Doveadm(work)
                    da.backup = args.backup_counts is None or \
                        n in args.backup_counts
                res = bench(work, n, fmt, md, mbox, da, args.repeat,
                            [o for o in args.only.split(",") if o])
                for what, runs in res.items():
                    print(row(n, fmt, what, runs))
                sys.stdout.flush()
            shutil.rmtree(work)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
