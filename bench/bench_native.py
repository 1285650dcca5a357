#!/usr/bin/python3
"""bench_native.py - the read side against a native maildir on ext4, in
one run (issue "Native speed").

    sudo bench/bench_native.py [--messages N] [--big-folder N] [--slow N]
                               [--runs R] [--builds LABEL=DIR,...]

Builds (under bench/work/native/, not committed) a maildir of N messages
and one of --big-folder messages, the same messages in stores made by
`dboxctl import` (mdbox, sdbox) and by `doveadm import` (mdbox, sdbox;
Dovecot runs as nobody), and passthrough_ll from the libfuse3-dev
examples.  Then, for every target, R times (medians reported):

  cold read    fresh mount, page cache dropped, then
               `find cur -type f -exec cat {} +`
  warm read    the same again on that mount
  grep warm    `grep -rl '^Subject: bench 77$' cur` after the reads
  ls -l cold   of the big folder: fresh mount, caches dropped
  ls -l warm   the same again
  slow cold    the first --slow messages in storage order (inode
               numbers) on a mount with
               -o fs=delay:5ms/posix (every I/O of the daemon waits 5 ms),
               a fresh mount each time; and the same without the delay,
               so that the delay's share shows apart from the round trips

doveadm does what has an equivalent: `fetch text` (reads), `search
header` (grep), `fetch "uid flags size.physical date.received"` (ls -l).
Ratios are to the native maildir measured in the same run; the slow row
has no native equivalent and is given as time per message over 5 ms, the
cost of one I/O per message.  With --builds, the dboxfs targets on the
dboxctl mdbox store run once per build (each LABEL=DIR a meson build
directory), to show what each change bought; the last one is the main
table's.  The result goes into bench/RESULTS.md, section "Native speed".
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import (BUILD, build_passthrough, drop_caches,  # noqa: E402
                      gen_messages, mount, replace_section, run, umount)
from bench_import import Doveadm, chown_tree  # noqa: E402

NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
SLOW = "fs=delay:5ms/posix"
GREP = "^Subject: bench 77$"


def make_maildir(path, n):
    if os.path.isdir(path):
        return path
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for base, data in gen_messages(n):
        with open(os.path.join(path, "cur", base + ":2,S"), "wb") as f:
            f.write(data)
    return path


def dboxctl_store(ctl, src, path, fmt):
    if not os.path.isdir(path):
        run([ctl, "init", path, "--format", fmt])
        run([ctl, "import", path, "INBOX", src], timeout=3600)
    return path


def doveadm_store(da, src, path, fmt):
    if not os.path.isdir(path):
        os.makedirs(path)
        chown_tree(path)
        # the destination is a parent: "" puts the maildir's INBOX at
        # INBOX
        cmd, env = da.cmd("%s:%s" % (fmt, path), "import", "maildir:" + src,
                          "", "all")
        subprocess.run(cmd, env=env, check=True, capture_output=True,
                       cwd="/", timeout=3600)
    return path


def sh(cmd):
    run(["sh", "-c", cmd], timeout=3600)


def secs(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


class Target:
    """A maildir to read: native (cmd None), a FUSE mount, or doveadm."""

    def __init__(self, name, root, cmd=None, doveadm=None, big=None,
                 big_cmd=None, slow_cmd=None):
        self.name, self.root, self.cmd = name, root, cmd
        self.doveadm = doveadm      # (Doveadm, location, big location)
        self.big, self.big_cmd, self.slow_cmd = big, big_cmd, slow_cmd

    def mounted(self, cmd, root):
        return mount(cmd, root) if cmd else None

    def reads(self):
        """(cold, warm, grep) seconds of one run."""
        if self.doveadm:
            da, loc, _ = self.doveadm
            fetch = da.cmd(loc, "fetch", "text", "mailbox", "INBOX", "all")
            search = da.cmd(loc, "search", "mailbox", "INBOX", "header",
                            "Subject", "bench 77")
            drop_caches()
            return (secs(lambda: doveadm_run(fetch)),
                    secs(lambda: doveadm_run(fetch)),
                    secs(lambda: doveadm_run(search)))
        proc = self.mounted(self.cmd, self.root)
        try:
            drop_caches()
            cur = os.path.join(self.root, "cur")
            cat = "find %s -type f -exec cat {} + > /dev/null" % cur
            cold = secs(lambda: sh(cat))
            warm = secs(lambda: sh(cat))
            grep = secs(lambda: sh("grep -rl '%s' %s > /dev/null" %
                                   (GREP, cur)))
        finally:
            if proc:
                umount(proc, self.root)
        return cold, warm, grep

    def ls(self):
        """(cold, warm) seconds of ls -l of the big folder, or None."""
        if self.doveadm:
            da, _, loc = self.doveadm
            cmd = da.cmd(loc, "fetch", "uid flags size.physical "
                         "date.received", "mailbox", "INBOX", "all")
            drop_caches()
            return secs(lambda: doveadm_run(cmd)), \
                secs(lambda: doveadm_run(cmd))
        if self.big is None:
            return None
        proc = self.mounted(self.big_cmd, self.big)
        try:
            drop_caches()
            ls = "ls -l %s/cur > /dev/null" % self.big
            return secs(lambda: sh(ls)), secs(lambda: sh(ls))
        finally:
            if proc:
                umount(proc, self.big)

    def slow(self, count):
        """Seconds of a cold read of the first count messages on storage
        where every I/O takes 5 ms, and of the same without the delay;
        or None."""
        if self.slow_cmd is None:
            return None
        return self.first(self.slow_cmd, count), self.first(self.cmd, count)

    def first(self, cmd, count):
        proc = mount(cmd, self.root)
        try:
            drop_caches()
            cur = os.path.join(self.root, "cur")
            # inode numbers follow storage order (maildir-view.md 2)
            return secs(lambda: sh(
                "find %s -type f -printf '%%i %%f\\n' | sort -n | "
                "head -%d | cut -d' ' -f2- | (cd %s && xargs -d '\\n' cat)"
                " > /dev/null" % (cur, count, cur)))
        finally:
            umount(proc, self.root)


def doveadm_run(cmd_env):
    cmd, env = cmd_env
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, cwd="/", timeout=3600)


def measure(t, args):
    rows = [t.reads() for _ in range(args.runs)]
    res = {k: statistics.median(r[i] for r in rows)
           for i, k in enumerate(("cold", "warm", "grep"))}
    ls = [t.ls() for _ in range(args.runs)]
    if ls[0] is not None:
        res["ls_cold"] = statistics.median(r[0] for r in ls)
        res["ls_warm"] = statistics.median(r[1] for r in ls)
    slow = [t.slow(args.slow) for _ in range(args.runs)]
    if slow[0] is not None:
        res["slow"] = statistics.median(r[0] for r in slow)
        res["slow_io"] = statistics.median(r[0] - r[1] for r in slow)
    print(t.name, {k: round(v, 3) for k, v in res.items()}, flush=True)
    return res


def dboxfs_targets(label, build, stores, mnt, bigmnt, index_dir):
    exe = os.path.join(build, "fusefs", "dboxfs")
    sfx = "" if label is None else " [%s]" % label

    def t(name, store, big, *opts, slow=False, big_opts=()):
        o = []
        for x in opts:
            o += ["-o", x]
        bo = o + [a for x in big_opts for a in ("-o", x)]
        return Target("dboxfs %s%s" % (name, sfx), mnt,
                      [exe, store, mnt] + o,
                      big=bigmnt if big else None,
                      big_cmd=[exe, big, bigmnt] + bo if big else None,
                      slow_cmd=[exe, store, mnt] + o + ["-o", SLOW]
                      if slow else None)

    def idx(name):
        return "index=" + os.path.join(index_dir, "%s-%s.sqlite" %
                                       (name, label or "main"))
    ts = [t("mdbox, dboxctl", stores["ctl-mdbox"], stores["ctl-big"],
            slow=True),
          t("mdbox, dboxctl, -o ro", stores["ctl-mdbox"], stores["ctl-big"],
            "ro", slow=True)]
    if label is not None:
        return ts
    ts += [t("sdbox, dboxctl", stores["ctl-sdbox"], None, slow=True),
           t("mdbox, doveadm, -o takeover", stores["dove-mdbox"],
             stores["dove-big"], "takeover", slow=True,
             big_opts=(idx("dove-big"),)),
           t("mdbox, doveadm, -o ro", stores["dove-mdbox"], None, "ro"),
           t("sdbox, doveadm, -o takeover", stores["dove-sdbox"], None,
             "takeover")]
    # a Dovecot tree's index lives outside it: one per tree
    for x, name in ((ts[3], "dove-mdbox"), (ts[4], "dove-mdbox-ro"),
                    (ts[5], "dove-sdbox")):
        x.cmd += ["-o", idx(name)]
        if x.slow_cmd:
            x.slow_cmd += ["-o", idx(name)]
    return ts


def fmt_cell(res, key, native):
    v = res.get(key)
    if v is None:
        return "-"
    if key == "slow":
        # native here is the message count
        return "%.3f (%.2f; delay's share %.2f)" % (
            v, v / native / 0.005, res["slow_io"] / native / 0.005)
    n = native.get(key)
    return "%.3f (%.2f)" % (v, v / n) if n else "%.3f" % v


COLS = [("cold read", "cold"), ("warm read", "warm"),
        ("grep -rl warm", "grep"), ("ls -l cold", "ls_cold"),
        ("ls -l warm", "ls_warm"), ("slow cold", "slow")]


def table(results, native_name, args):
    native = results[native_name]
    out = ["| target | " + " | ".join(c for c, _ in COLS) + " |",
           "|---" * (len(COLS) + 1) + "|"]
    for name, res in results.items():
        cells = []
        for _, key in COLS:
            if key == "slow":
                cells.append(fmt_cell(res, key, args.slow))
            else:
                cells.append(fmt_cell(res, key, native))
        out.append("| %s | %s |" % (name, " | ".join(cells)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--big-folder", type=int, default=10000)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--builds", default="",
                    help="LABEL=BUILDDIR,... for the per-change table")
    args = ap.parse_args()
    work = os.path.join(HERE, "work", "native")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    ctl = os.path.join(BUILD, "tools", "dboxctl", "dboxctl")
    maildir = make_maildir(os.path.join(work, "maildir-%d" % args.messages),
                           args.messages)
    big = make_maildir(os.path.join(work, "big-%d" % args.big_folder),
                       args.big_folder)
    chown_tree(maildir)
    chown_tree(big)
    da = Doveadm(work)
    st = {}
    for fmt in ("mdbox", "sdbox"):
        st["ctl-" + fmt] = dboxctl_store(ctl, maildir, os.path.join(
            work, "ctl-%s-%d" % (fmt, args.messages)), fmt)
        st["dove-" + fmt] = doveadm_store(da, maildir, os.path.join(
            work, "dove-%s-%d" % (fmt, args.messages)), fmt)
    st["ctl-big"] = dboxctl_store(ctl, big, os.path.join(
        work, "ctl-big-%d" % args.big_folder), "mdbox")
    st["dove-big"] = doveadm_store(da, big, os.path.join(
        work, "dove-big-%d" % args.big_folder), "mdbox")
    idx = tempfile.mkdtemp(prefix="idx.", dir=work)
    mnt = tempfile.mkdtemp(prefix="mnt.", dir=work)
    bigmnt = tempfile.mkdtemp(prefix="big.", dir=work)
    pll = build_passthrough(work)
    pcmd = ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), pll]
    targets = [
        Target("native maildir (ext4)", maildir, big=big),
        Target("passthrough_ll", mnt, pcmd + ["-o", "source=" + maildir,
                                              mnt],
               big=bigmnt, big_cmd=pcmd + ["-o", "source=" + big, bigmnt]),
        Target("doveadm (mdbox, doveadm import)", None,
               doveadm=(da, "mdbox:" + st["dove-mdbox"],
                        "mdbox:" + st["dove-big"])),
    ] + dboxfs_targets(None, BUILD, st, mnt, bigmnt, idx)
    builds = [b.split("=", 1) for b in args.builds.split(",") if b]
    for label, bdir in builds:
        targets += dboxfs_targets(label, os.path.abspath(bdir), st, mnt,
                                  bigmnt, idx)
    results = {}
    started = time.time()
    try:
        for t in targets:
            results[t.name] = measure(t, args)
    finally:
        shutil.rmtree(mnt, ignore_errors=True)
        shutil.rmtree(bigmnt, ignore_errors=True)
        shutil.rmtree(idx, ignore_errors=True)
    size = sum(len(d) for _, d in gen_messages(args.messages)) / 1e6
    out = ["Command: `sudo bench/bench_native.py --messages %d --big-folder "
           "%d --slow %d --runs %d%s` (%.0f s; medians of %d runs, seconds, "
           "and in parentheses the ratio to the native maildir; %d messages,"
           " %.1f MB; ls -l of a %d-message folder; slow: the first %d "
           "messages with -o %s, ratio = time per message / 5 ms, and the "
           "same of the time above the read without the delay)." % (
               args.messages, args.big_folder, args.slow, args.runs,
               " --builds " + args.builds if builds else "",
               time.time() - started, args.runs, args.messages, size,
               args.big_folder, args.slow, SLOW), ""]
    out += table(results, "native maildir (ext4)", args)
    text = "\n".join(out) + "\n"
    print(text)
    replace_section(os.path.join(HERE, "RESULTS.md"), "Native speed", text)


if __name__ == "__main__":
    main()
