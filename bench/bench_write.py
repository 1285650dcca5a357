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

compares only the native maildir with a dboxfs (another build: BIN, with
mount options OPT, e.g. -o sync) and prints the table without writing
RESULTS.md (before/after comparisons)."""

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
from benchlib import (BUILD, build_passthrough, dboxctl, mount,  # noqa
                      replace_section, run, umount)

DELIVER = r'''
import fcntl, os, sys
root, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = sys.argv[4] if len(sys.argv) > 4 else None
body = (b"Subject: bench\n\n" + b"x" * 2000 + b"\n")
dfd = os.open(os.path.join(root, "new"), os.O_RDONLY | os.O_DIRECTORY)
lfd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600) if lock else None
for i in range(count):
    name = "%s.%d" % (prefix, i)
    tmp = os.path.join(root, "tmp", name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, body)
    os.fsync(fd)
    os.close(fd)
    if lfd is not None:
        fcntl.flock(lfd, fcntl.LOCK_EX)
    os.rename(tmp, os.path.join(root, "new", name))
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


def deliveries(root, writers, total, prefix, lock=None):
    per = total // writers
    extra = [lock] if lock else []
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


def mount_dboxfs(args, store, mnt):
    cmd = [args.dboxfs, store, mnt]
    for o in args.opts:
        cmd += ["-o", o]
    return mount(cmd, mnt)


def quick(args):
    """Native maildir against one dboxfs: deliveries (1 and 8 writers)
    and flag renames, medians of --runs."""
    work = os.path.join(HERE, "work", "write")
    os.makedirs(work, exist_ok=True)
    rows = []
    for writers in (1, 8):
        nat, dbx = [], []
        for r in range(args.runs):
            d = tempfile.mkdtemp(dir=work)
            nat.append(deliveries(maildir(os.path.join(d, "native")), writers,
                                  args.messages, "n%d-" % r))
            store, mnt = os.path.join(d, "store"), os.path.join(d, "mnt")
            dboxctl("init", store, "--format", "mdbox")
            os.makedirs(mnt)
            proc = mount_dboxfs(args, store, mnt)
            try:
                dbx.append(deliveries(mnt, writers, args.messages, "d%d-" % r))
            finally:
                umount(proc, mnt)
            shutil.rmtree(d, ignore_errors=True)
        n, x = statistics.median(nat), statistics.median(dbx)
        rows.append("| %d writers, msg/s | %.0f | %.0f | %.2f |" % (
            writers, n, x, x / n))
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
        proc = mount_dboxfs(args, store, mnt)
        try:
            ren_dbx.append(flag_renames(os.path.join(mnt, "cur"), names))
        finally:
            umount(proc, mnt)
        shutil.rmtree(d, ignore_errors=True)
    a, b = statistics.median(ren_nat), statistics.median(ren_dbx)
    rows.append("| %d flag renames, s | %.3f | %.3f | %.1f |" % (
        args.renames, a, b, b / a))
    print("| %s %s | native maildir | dboxfs | dboxfs/native |\n"
          "|---|---|---|---|\n%s" % (args.dboxfs, " ".join(args.opts),
                                      "\n".join(rows)))


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
