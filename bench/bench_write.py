#!/usr/bin/python3
"""bench_write.py - fsync'ed delivery and flag renames (issue 5's benchmark).

    sudo bench/bench_write.py [--messages N] [--renames N] [--runs R]

Deliveries, with 1 and 8 concurrent writers, of N messages in all:
  native maildir   write tmp/X, fsync it, rename to new/X, fsync new/
  durable rename   the same on the native maildir, but each rename and the
                   fsync of new/ that makes it durable run under one lock
                   shared by all writers: what "durable when rename
                   returns" costs without FUSE, since the kernel holds one
                   lock per mount over each rename between directories
                   until the filesystem answers it (the ceiling for any
                   FUSE server keeping that promise)
  passthrough_ll   libfuse's example server over a maildir: the maildir
                   protocol as above, and with durable renames as above
                   (the cost of FUSE's round trips inside that lock)
  dboxfs (mdbox)   the same maildir protocol on a mount (the rename is the
                   durable commit)
  dovecot-lda      one dovecot-lda run per message into an mdbox store
and flag renames (cur/X:2, -> cur/X:2,S) of --renames messages on a native
maildir and on the mount.  Medians of R runs; the table goes to
bench/RESULTS.md, section "Write path".

    sudo bench/bench_write.py --quick [--dboxfs BIN] [-o OPT ...]
                              [--builds LABEL=DIR,...] [--rows R,...]

measures the issue "Native speed"'s write rows: deliveries of --messages
without fsync (write tmp/X, rename to new/X) with one writer, fsync'ed
deliveries (as above) with 1 and 8 writers, and --renames flag renames
(cur/X:2,S -> cur/X:2,FS), on the native maildir, on libfuse's
passthrough_ll over a maildir (what any FUSE file system pays: the
LOOKUP of the target, the RENAME round trip, both inside the kernel's
per-mount rename lock) and on dboxfs (BIN with mount options OPT, e.g.
-o sync; with --builds, once per meson build directory LABEL=DIR, each
with its own dboxctl).  Every run measures every target in turn, so
that a shared machine's load falls on all of them alike; medians of
--runs, ratios to native and to passthrough_ll of the same run.  Prints
the table without writing RESULTS.md (before/after comparisons).
passthrough_ll runs also with -o default_permissions, which a dboxfs
mount has with allow_other or when not made by root: the kernel then
asks for the directory's attributes before each rename (the last rename
invalidated them)."""

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import (BUILD, DBOXCTL, build_passthrough, dboxctl,  # noqa
                      mount, replace_section, run, umount)

DELIVER = r'''
import fcntl, os, sys
root, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
sync = len(sys.argv) <= 5 or sys.argv[5] != "nofsync"
body = (b"Subject: bench\n\n" + b"x" * 2000 + b"\n")
dfd = os.open(os.path.join(root, "new"), os.O_RDONLY | os.O_DIRECTORY)
lfd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600) if lock else None
for i in range(count):
    name = "%s.%d" % (prefix, i)
    tmp = os.path.join(root, "tmp", name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, body)
    if sync:
        os.fsync(fd)
    os.close(fd)
    if lfd is not None:
        fcntl.flock(lfd, fcntl.LOCK_EX)
    os.rename(tmp, os.path.join(root, "new", name))
    if sync:
        os.fsync(dfd)
    if lfd is not None:
        fcntl.flock(lfd, fcntl.LOCK_UN)
'''

LDA = r'''
import subprocess, sys
conf, store, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = (b"Subject: bench\n\n" + b"x" * 2000 + b"\n")
for i in range(count):
    subprocess.run(["/usr/lib/dovecot/dovecot-lda", "-c", conf, "-o",
                    "mail_location=mdbox:" + store], input=body, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


def maildir(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


def deliveries(root, writers, total, prefix, lock=None, sync=True):
    per = total // writers
    extra = [lock or "-", "fsync" if sync else "nofsync"]
    t = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", DELIVER, root,
                               "%s%d" % (prefix, w), str(per)] + extra)
             for w in range(writers)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("deliverer failed")
    return per * writers / (time.monotonic() - t)


def lda_setup(work):
    nobody = pwd.getpwnam("nobody")
    d = os.path.join(work, "lda")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "run"))
    os.makedirs(os.path.join(d, "home"))
    conf = os.path.join(d, "lda.conf")
    with open(conf, "w") as f:
        f.write("base_dir = %s/run\nlog_path = /dev/null\nprotocols =\n"
                "ssl = no\nnamespace inbox {\n  inbox = yes\n  separator = /\n"
                "}\nfirst_valid_uid = 1\nfirst_valid_gid = 0\n"
                "mail_uid = %d\nmail_gid = %d\n" % (d, nobody.pw_uid,
                                                    nobody.pw_gid))
    for root, dirs, files in os.walk(d):
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        for n in files:
            os.chown(os.path.join(root, n), nobody.pw_uid, nobody.pw_gid)
    return d, conf, nobody


def lda_rate(work, writers, total, n):
    d, conf, nobody = lda_setup(work)
    store = os.path.join(d, "store%d" % n)
    per = total // writers
    env = {"PATH": "/usr/bin:/bin", "USER": "nobody",
           "HOME": os.path.join(d, "home")}
    as_nobody = ["setpriv", "--reuid=%d" % nobody.pw_uid,
                 "--regid=%d" % nobody.pw_gid, "--clear-groups"]
    # the store and its indexes exist before the clock starts (and
    # concurrent first deliveries would race to create them)
    run(as_nobody + [sys.executable, "-c", LDA, conf, store, "1"], env=env)
    t = time.monotonic()
    procs = [subprocess.Popen(as_nobody + [sys.executable, "-c", LDA, conf,
                                           store, str(per)], env=env)
             for _ in range(writers)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("dovecot-lda failed")
    return per * writers / (time.monotonic() - t)


def flag_renames(cur, names):
    t = time.monotonic()
    for n in names:
        os.rename(os.path.join(cur, n + ":2,"), os.path.join(cur, n + ":2,S"))
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=800)
    ap.add_argument("--renames", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dboxfs", default=os.path.join(BUILD, "fusefs",
                                                      "dboxfs"))
    ap.add_argument("-o", dest="opts", action="append", default=[])
    ap.add_argument("--rows", help="--quick: some of nofsync,fsync1,"
                    "fsync8,renames")
    ap.add_argument("--builds", default="",
                    help="--quick: LABEL=BUILDDIR,... one dboxfs each")
    args = ap.parse_args()
    if args.quick:
        return quick(args)
    work = os.path.join(HERE, "work", "write")
    os.makedirs(work, exist_ok=True)
    res = {}
    dboxfs = args.dboxfs
    pll = build_passthrough(work)
    for writers in (1, 8):
        nat, ser, pl, pls, dbx, lda = [], [], [], [], [], []
        for r in range(args.runs):
            d = tempfile.mkdtemp(dir=work)
            lock = os.path.join(d, "rename.lock")
            nat.append(deliveries(maildir(os.path.join(d, "native")), writers,
                                  args.messages, "n%d-" % r))
            ser.append(deliveries(maildir(os.path.join(d, "serial")), writers,
                                  args.messages, "s%d-" % r, lock=lock))
            for k, (out, lk) in enumerate(((pl, None), (pls, lock))):
                src = maildir(os.path.join(d, "pll-src-%d" % k))
                mnt = os.path.join(d, "pll-%d" % k)
                os.makedirs(mnt)
                proc = mount([pll, "-o", "source=" + src, mnt], mnt)
                try:
                    out.append(deliveries(mnt, writers, args.messages,
                                          "p%d-" % r, lock=lk))
                finally:
                    umount(proc, mnt)
            store, mnt = os.path.join(d, "store"), os.path.join(d, "mnt")
            dboxctl("init", store, "--format", "mdbox")
            os.makedirs(mnt)
            proc = mount([dboxfs, store, mnt], mnt)
            try:
                dbx.append(deliveries(mnt, writers, args.messages, "d%d-" % r))
            finally:
                umount(proc, mnt)
            lda.append(lda_rate(work, writers, args.messages, r))
            shutil.rmtree(d, ignore_errors=True)
        res[writers] = tuple(statistics.median(x)
                             for x in (nat, ser, pl, pls, dbx, lda))
    # flag renames
    names = ["%d.M%d.r" % (1700000000 + i, i) for i in range(args.renames)]
    ren_nat, ren_dbx = [], []
    for r in range(args.runs):
        d = tempfile.mkdtemp(dir=work)
        src = maildir(os.path.join(d, "native"))
        for n in names:
            with open(os.path.join(src, "cur", n + ":2,"), "wb") as f:
                f.write(b"Subject: r\n\nr\n")
        store, mnt = os.path.join(d, "store"), os.path.join(d, "mnt")
        dboxctl("init", store, "--format", "mdbox")
        dboxctl("import", store, "INBOX", src)
        ren_nat.append(flag_renames(os.path.join(src, "cur"), names))
        os.makedirs(mnt)
        proc = mount([dboxfs, store, mnt], mnt)
        try:
            ren_dbx.append(flag_renames(os.path.join(mnt, "cur"), names))
        finally:
            umount(proc, mnt)
        shutil.rmtree(d, ignore_errors=True)
    report(res, statistics.median(ren_nat), statistics.median(ren_dbx), args)


class Quick:
    """One target of --quick: how to mount it over a fresh maildir or
    store, and where its maildir shows."""

    def __init__(self, name, kind, exe=None, opts=(), ctl=None):
        self.name, self.kind, self.exe = name, kind, exe
        self.opts, self.ctl = list(opts), ctl

    def setup(self, d, names=None):
        """A fresh target in d (with the messages names in cur/ if
        given): (maildir path, mounted process or None)."""
        src = maildir(os.path.join(d, "src"))
        for n in names or ():
            with open(os.path.join(src, "cur", n + ":2,S"), "wb") as f:
                f.write(b"Subject: r\n\nr\n")
        if self.kind == "native":
            return src, None
        mnt = os.path.join(d, "mnt")
        os.makedirs(mnt)
        if self.kind == "pll":
            cmd = [self.exe, "-o", "source=" + src, mnt]
            for o in self.opts:
                cmd += ["-o", o]
            return mnt, mount(cmd, mnt)
        store = os.path.join(d, "store")
        run([self.ctl, "init", store, "--format", "mdbox"])
        if names:
            run([self.ctl, "import", store, "INBOX", src], timeout=3600)
        cmd = [self.exe, store, mnt]
        for o in self.opts:
            cmd += ["-o", o]
        return mnt, mount(cmd, mnt)


def quick_one(t, work, what, args, r):
    """One measurement of what on target t: msg/s or seconds."""
    d = tempfile.mkdtemp(dir=work)
    names = None
    if what == "renames":
        names = ["%d.M%d.r" % (1700000000 + i, i) for i in range(args.renames)]
    root, proc = t.setup(d, names)
    try:
        if what == "renames":
            cur = os.path.join(root, "cur")
            t0 = time.monotonic()
            for n in names:
                os.rename(os.path.join(cur, n + ":2,S"),
                          os.path.join(cur, n + ":2,FS"))
            return time.monotonic() - t0
        writers, sync = {"nofsync": (1, False), "fsync1": (1, True),
                         "fsync8": (8, True)}[what]
        return deliveries(root, writers, args.messages, "q%d-" % r,
                          sync=sync)
    finally:
        if proc is not None:
            umount(proc, root)
        shutil.rmtree(d, ignore_errors=True)


QUICK_ROWS = (("nofsync", "%d deliveries, no fsync, 1 writer, msg/s"),
              ("fsync1", "%d deliveries, fsync file + new/, 1 writer, msg/s"),
              ("fsync8", "%d deliveries, fsync file + new/, 8 writers, "
               "msg/s"),
              ("renames", "%d flag renames (:2,S -> :2,FS), s"))


def quick(args):
    """Native maildir, passthrough_ll and one dboxfs per build: the write
    rows of the issue "Native speed", medians of --runs."""
    work = os.path.join(HERE, "work", "write")
    os.makedirs(work, exist_ok=True)
    pll = build_passthrough(work)
    # default_permissions (a dboxfs mount's with allow_other) costs a GETATTR
    # of the directory before each rename: the kernel checks the
    # permission with attributes that the last rename invalidated
    targets = [Quick("native maildir", "native"),
               Quick("passthrough_ll", "pll", pll),
               Quick("passthrough_ll -o default_permissions", "pll", pll,
                     ["default_permissions"])]
    builds = [b.split("=", 1) for b in args.builds.split(",") if b]
    if not builds:
        targets.append(Quick("dboxfs", "dboxfs", args.dboxfs, args.opts,
                             DBOXCTL))
    for label, bdir in builds:
        bdir = os.path.abspath(bdir)
        targets.append(Quick("dboxfs [%s]" % label, "dboxfs",
                             os.path.join(bdir, "fusefs", "dboxfs"),
                             args.opts, os.path.join(bdir, "tools", "dboxctl",
                                                     "dboxctl")))
    rows = [(w, title) for w, title in QUICK_ROWS
            if args.rows is None or w in args.rows.split(",")]
    res = {(t.name, w): [] for t in targets for w, _ in rows}
    for what, _ in rows:
        for r in range(args.runs):
            for t in targets:
                res[(t.name, what)].append(quick_one(t, work, what, args, r))
    head = "| target | " + " | ".join(
        (title % (args.renames if w == "renames" else args.messages))
        for w, title in rows) + " |"
    out = [head, "|---" * (len(rows) + 1) + "|"]
    for t in targets:
        cells = []
        for what, _ in rows:
            v = statistics.median(res[(t.name, what)])
            n = statistics.median(res[("native maildir", what)])
            p = statistics.median(res[("passthrough_ll", what)])
            fmt = "%.3f" if what == "renames" else "%.0f"
            # time per message relative to native / passthrough_ll
            rn, rp = (v / n, v / p) if what == "renames" else (n / v, p / v)
            cells.append((fmt + " (%.2fx; %.2fx pll)") % (v, rn, rp))
        out.append("| %s | %s |" % (t.name, " | ".join(cells)))
    print("Command: bench_write.py --quick --messages %d --renames %d "
          "--runs %d%s%s; medians; in parentheses time per message "
          "relative to the native maildir and to passthrough_ll of the "
          "same run\n" % (args.messages, args.renames, args.runs,
                          "".join(" -o " + o for o in args.opts),
                          " --builds " + args.builds if builds else ""))
    print("\n".join(out))
    for t in targets:
        print(t.name, {w: ["%.3f" % x for x in res[(t.name, w)]]
                       for w, _ in rows})


def report(res, ren_nat, ren_dbx, args):
    out = ["Command: `sudo bench/bench_write.py --messages %d --renames %d "
           "--runs %d` (medians of %d runs; 2 KB messages, every delivery "
           "durable before it is acknowledged)." % (
               args.messages, args.renames, args.runs, args.runs), "",
           "Deliveries, msg/s.  \"durable rename\": each rename and the "
           "fsync of new/ after it run under one lock shared by the writers "
           "(see the driver's docstring).", "",
           "| writers | native maildir | native, durable rename | "
           "passthrough_ll | passthrough_ll, durable rename | dboxfs | "
           "dovecot-lda | dboxfs/native | dboxfs/lda |",
           "|---|---|---|---|---|---|---|---|---|"]
    for w in (1, 8):
        n, ser, pl, pls, d, lda = res[w]
        out.append("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f "
                   "| %.2f |" % (w, n, ser, pl, pls, d, lda, d / n, d / lda))
    out += ["", "| %d flag renames | native maildir | dboxfs | dboxfs/native |"
            % args.renames, "|---|---|---|---|",
            "| seconds | %.2f | %.2f | %.2f |" % (ren_nat, ren_dbx,
                                                 ren_dbx / ren_nat)]
    text = "\n".join(out) + "\n"
    print(text)
    replace_section(os.path.join(HERE, "RESULTS.md"), "Write path", text)


if __name__ == "__main__":
    main()
