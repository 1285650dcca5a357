#!/usr/bin/python3
"""bench_scale.py - one folder of a million messages (issue "Native
speed", scale run): the mount against a native maildir of the same
messages.

    sudo bench/bench_scale.py [--messages 1000000] [--runs 3]
                              [--work DIR] [--keep] [--no-read]
                              [--no-native-read] [--build DIR] [-o OPT]

Makes, under one work directory (default bench/work/scale-N, deleted at
the end unless --keep): one mbox of N small generated messages (a
distinct date each, 1 s apart), an mdbox store from it with
`dboxctl import` (INBOX, all of them in cur/), and a native maildir of
the same messages written directly (one cur/, mtime = the message's
date, as the mount shows it).  Then, R rounds, native and dboxfs
alternating:

  mount         seconds from starting the daemon to an answered stat of
                cur/: cold (page cache dropped) and warm
  ls -l         `ls -l cur | wc -l`: cold (caches dropped, fresh mount)
                and warm (the same again)
  find -newer   `find cur -newer cur/MIDDLE | wc -l`: cold and warm
  RSS           the daemon's VmRSS / VmHWM (/proc/PID/status) after the
                listings, and after reading every message once
                (`find cur -type f -exec cat {} +`, the last round only)
  daemon CPU    user + system seconds of the daemon (/proc/PID/stat)
                for each step on the mount, next to its time

Medians over the rounds; ratios are to the native maildir in the same
run.  The table goes into bench/RESULTS.md, section "Scale: N
messages".
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import (BUILD, DBOXCTL, drop_caches, mounted,  # noqa: E402
                      replace_section, run, umount)

DATE0 = 1600000000


def message(i):
    return (b"From: a%d@example.com\nTo: b@example.com\n"
            b"Subject: scale %d\nMessage-ID: <%d.scale@example.com>\n"
            b"Status: RO\n\nbody of message %d\n" % (i % 97, i, i, i))


def make_mbox(path, n):
    if os.path.exists(path):
        return
    with open(path + ".part", "wb") as f:
        for i in range(n):
            date = time.strftime("%a %b %d %H:%M:%S %Y",
                                 time.gmtime(DATE0 + i)).encode()
            f.write(b"From a@example.com " + date + b"\n" + message(i) +
                    b"\n")
    os.rename(path + ".part", path)


def make_maildir(path, n):
    if os.path.isdir(path):
        return
    part = path + ".part"
    shutil.rmtree(part, ignore_errors=True)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(part, sub))
    cur = os.path.join(part, "cur")
    for i in range(n):
        name = os.path.join(cur, "%d.M%dP1.scale:2,S" % (DATE0 + i, i))
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, message(i))
        os.utime(fd, (DATE0 + i, DATE0 + i))
        os.close(fd)
    os.rename(part, path)


def make_store(path, mbox):
    if os.path.isdir(path):
        return
    part = path + ".part"
    shutil.rmtree(part, ignore_errors=True)
    run([DBOXCTL, "init", part, "--format", "mdbox"])
    run([DBOXCTL, "import", part, "INBOX", mbox], timeout=7200)
    os.rename(part, path)


def secs(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def sh(cmd):
    return run(["sh", "-c", cmd], timeout=7200).stdout.decode().strip()


def rss(pid):
    """(VmRSS, VmHWM) of a process in MiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024.0
    return out["VmRSS"], out["VmHWM"]


def cpu(pid):
    """CPU seconds (user + system) a process has used so far."""
    if pid is None:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def step(r, key, fn, pid=None):
    """Times fn into r[key], and the daemon's CPU for it into
    r[key + "_cpu"]."""
    c = cpu(pid)
    r[key] = secs(fn)
    if pid is not None:
        r[key + "_cpu"] = cpu(pid) - c


class Mount:
    """A dboxfs mount of the store, timed from the start of the daemon
    to the first answered stat of cur/."""

    def __init__(self, exe, store, mnt, opts):
        self.mnt = mnt
        t = time.monotonic()
        self.proc = subprocess.Popen([exe, store, mnt, "-f"] + opts,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = t + 600
        while True:
            if mounted(mnt):
                try:
                    os.stat(os.path.join(mnt, "cur"))
                    break
                except OSError:
                    pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("mount failed")
            time.sleep(0.002)
        self.secs = time.monotonic() - t
        self.cpu = cpu(self.proc.pid)

    def close(self):
        umount(self.proc, self.mnt)


def listing(root, middle, pid=None):
    """(ls cold, ls warm, lines, find cold, find warm, found) on a tree
    whose caches were just dropped; the find runs after the ls on the
    same tree, cold after a second drop."""
    cur = os.path.join(root, "cur")
    r = {}
    ls = "ls -l %s | wc -l" % cur
    fnd = "find %s -newer %s/%s | wc -l" % (cur, cur, middle)
    step(r, "ls_cold", lambda: r.__setitem__("lines", sh(ls)), pid)
    step(r, "ls_warm", lambda: sh(ls), pid)
    return r, fnd


def one_round(args, exe, store, native, mnt, middle, last):
    res = {"native": {}, "dboxfs": {}}
    # native
    drop_caches()
    r, fnd = listing(native, middle[0])
    drop_caches()
    r["find_cold"] = secs(lambda: r.__setitem__("found", sh(fnd)))
    r["find_warm"] = secs(lambda: sh(fnd))
    res["native"] = r
    # dboxfs: cold mount, listing
    drop_caches()
    m = Mount(exe, store, mnt, args.opts)
    try:
        r, fnd = listing(mnt, middle[1], m.proc.pid)
        r["mount_cold"], r["mount_cold_cpu"] = m.secs, m.cpu
        r["rss_ls"], r["hwm_ls"] = rss(m.proc.pid)
    finally:
        m.close()
    # dboxfs: find -newer on a fresh cold mount
    drop_caches()
    m = Mount(exe, store, mnt, args.opts)
    try:
        step(r, "find_cold", lambda: r.__setitem__("found", sh(fnd)),
             m.proc.pid)
        step(r, "find_warm", lambda: sh(fnd), m.proc.pid)
        r["rss_find"], r["hwm_find"] = rss(m.proc.pid)
    finally:
        m.close()
    m = Mount(exe, store, mnt, args.opts)
    r["mount_warm"], r["mount_warm_cpu"] = m.secs, m.cpu
    m.close()
    res["dboxfs"] = r
    cat = "find %s -type f -exec cat {} + | wc -c"
    if last and args.read:
        drop_caches()
        m = Mount(exe, store, mnt, args.opts)
        try:
            sh("ls -l %s/cur | wc -l" % mnt)
            step(r, "read", lambda: r.__setitem__(
                "bytes", sh(cat % os.path.join(mnt, "cur"))), m.proc.pid)
            r["rss_read"], r["hwm_read"] = rss(m.proc.pid)
        finally:
            m.close()
    if last and args.read and args.native_read:
        drop_caches()
        n = res["native"]
        n["read"] = secs(lambda: n.__setitem__(
            "bytes", sh(cat % os.path.join(native, "cur"))))
    print(res, flush=True)
    return res


def med(rounds, who, key):
    vals = [r[who][key] for r in rounds if key in r[who]]
    return statistics.median(vals) if vals else None


def report(args, rounds, prep, started):
    rows = [("mount, cold", "mount_cold", None, "<= 0.5 s"),
            ("mount, warm", "mount_warm", None, "<= 0.5 s"),
            ("`ls -l cur \\| wc -l`, cold", "ls_cold", "ls_cold", "<= 1.0"),
            ("`ls -l cur \\| wc -l`, warm", "ls_warm", "ls_warm", "<= 1.0"),
            ("`find cur -newer M \\| wc -l`, cold", "find_cold",
             "find_cold", "<= 1.0"),
            ("`find cur -newer M \\| wc -l`, warm", "find_warm",
             "find_warm", "<= 1.0"),
            ("read all (`find -exec cat`), cold", "read", "read", "-")]
    out = ["Command: `sudo bench/bench_scale.py --messages %d --runs %d%s%s` "
           "(%.0f s of measuring; medians of %d rounds, seconds; ratio = "
           "dboxfs / native maildir of the same round; preparation: %s)."
           % (args.messages, args.runs,
              "" if args.native_read else " --no-native-read",
              "".join(" -o " + o for o in args.opts[1::2]),
              time.time() - started, len(rounds),
              ", ".join("%s %.0f s" % kv for kv in prep.items())), "",
           "| what | native maildir (ext4) | dboxfs mdbox | ratio | goal |",
           "|---|---|---|---|---|"]
    for label, dk, nk, goal in rows:
        d = med(rounds, "dboxfs", dk)
        n = med(rounds, "native", nk) if nk else None
        if d is None:
            continue
        c = med(rounds, "dboxfs", dk + "_cpu")
        out.append("| %s | %s | %.3f%s | %s | %s |" % (
            label, "%.3f" % n if n is not None else "-", d,
            " (daemon CPU %.1f)" % c if c is not None else "",
            "%.2f" % (d / n) if n else "-", goal))
    for label, k in (("after ls -l", "ls"), ("after find -newer", "find"),
                     ("after reading all", "read")):
        v = med(rounds, "dboxfs", "rss_" + k)
        if v is not None:
            out.append("| daemon VmRSS / VmHWM MiB, %s | - | %.1f / %.1f "
                       "| - | <= 32 |" % (label, v,
                                         med(rounds, "dboxfs", "hwm_" + k)))
    last = rounds[-1]
    out += ["", "Output lines (native / dboxfs): ls -l %s / %s, find -newer "
            "%s / %s%s." % (last["native"]["lines"], last["dboxfs"]["lines"],
                            last["native"]["found"], last["dboxfs"]["found"],
                            ", bytes read %s / %s" % (
                                last["native"].get("bytes", "-"),
                                last["dboxfs"]["bytes"])
                            if "bytes" in last["dboxfs"] else "")]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (and reuse it)")
    ap.add_argument("--no-read", dest="read", action="store_false")
    ap.add_argument("--no-native-read", dest="native_read",
                    action="store_false",
                    help="read all only on the mount (its RSS)")
    ap.add_argument("--build", default=BUILD)
    ap.add_argument("-o", dest="opts", action="append", default=[],
                    help="a mount option of dboxfs")
    ap.add_argument("--no-results", dest="results", action="store_false")
    ap.add_argument("--prepare-only", action="store_true",
                    help="make the data (kept) and stop")
    args = ap.parse_args()
    args.opts = [a for o in args.opts for a in ("-o", o)]
    n = args.messages
    work = args.work or os.path.join(HERE, "work", "scale-%d" % n)
    os.makedirs(work, exist_ok=True)
    exe = os.path.join(os.path.abspath(args.build), "fusefs", "dboxfs")
    prep = {}
    mbox = os.path.join(work, "src.mbox")
    store = os.path.join(work, "store")
    native = os.path.join(work, "maildir")
    prep["mbox"] = secs(lambda: make_mbox(mbox, n))
    prep["dboxctl import mbox"] = secs(lambda: make_store(store, mbox))
    prep["native maildir"] = secs(lambda: make_maildir(native, n))
    print("prepared:", prep, flush=True)
    if args.prepare_only:
        return
    middle = "%d.M%dP1.scale:2,S" % (DATE0 + n // 2, n // 2)
    mnt = tempfile.mkdtemp(prefix="mnt.", dir=work)
    # the mount's name of the middle message (uids follow the mbox), for
    # its find -newer
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        store, "dboxfs", "index.sqlite"), uri=True)
    dmiddle = db.execute("SELECT base FROM messages WHERE uid = ?",
                         (n // 2 + 1,)).fetchone()[0] + ":2,S"
    db.close()
    rounds = []
    started = time.time()
    try:
        for i in range(args.runs):
            rounds.append(one_round(args, exe, store, native, mnt,
                                    (middle, dmiddle), i == args.runs - 1))
    finally:
        os.rmdir(mnt)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = report(args, rounds, prep, started)
    print(text)
    if args.results:
        replace_section(os.path.join(HERE, "RESULTS.md"),
                        "Scale: %s messages" % format(n, ","), text)


if __name__ == "__main__":
    main()
