#!/usr/bin/python3
"""bench_read.py - the read view against a native maildir and libfuse's
passthrough_ll over that same maildir (issue 4's benchmark).

    sudo bench/bench_read.py [--messages N] [--big-folder N] [--runs R]

Builds (under bench/work/, not committed) a maildir of N messages, the same
messages in an mdbox store made by dboxctl, a 100,000-message folder for the
listing test, and passthrough_ll from the libfuse3-dev examples; then
measures, each R times (median reported):

  warm read   read every message with the page cache hot
  cold read   the same after dropping the page cache
  ls -l       of the big folder (a fresh mount each run: no dentry cache)
  16 readers  cold read of all messages by 16 parallel readers

and writes the table into bench/RESULTS.md (section "Read view")."""

import argparse
import resource
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from benchlib import (BUILD, build_passthrough, dboxctl, drop_caches,  # noqa
                      gen_messages, mount, replace_section, run, umount)

NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def make_maildir(path, n):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for base, data in gen_messages(n):
        with open(os.path.join(path, "cur", base + ":2,S"), "wb") as f:
            f.write(data)


def timed(fn, runs, setup=None):
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        t = time.monotonic()
        fn()
        times.append(time.monotonic() - t)
    return statistics.median(times)


def read_all(root, parallel=1):
    # find | xargs cat: the same work for every target
    cmd = "find %s -type f -path '*/cur/*' -print0 | xargs -0 -P %d -n 200 " \
          "cat > /dev/null" % (root, parallel)
    run(["sh", "-c", cmd], timeout=3600)


def ls_l(folder):
    run(["sh", "-c", "ls -l %s/cur > /dev/null" % folder], timeout=3600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--big-folder", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    work = os.path.join(HERE, "work", "read")
    os.makedirs(work, exist_ok=True)
    maildir = os.path.join(work, "maildir-%d" % args.messages)
    big = os.path.join(work, "big-%d" % args.big_folder)
    store = os.path.join(work, "store-%d" % args.messages)
    bigstore = os.path.join(work, "bigstore-%d" % args.big_folder)
    if not os.path.isdir(maildir):
        make_maildir(maildir, args.messages)
    if not os.path.isdir(big):
        make_maildir(big, args.big_folder)
    for src, st in ((maildir, store), (big, bigstore)):
        if not os.path.isdir(st):
            dboxctl("init", st, "--format", "mdbox")
            dboxctl("import", st, "INBOX", src)
    pll = build_passthrough(work)
    mnt_p = tempfile.mkdtemp(prefix="pll.", dir=work)
    mnt_d = tempfile.mkdtemp(prefix="dbx.", dir=work)
    results = {}

    def targets(src_native, src_store):
        return {
            "native maildir": (None, src_native),
            # passthrough_ll keeps a descriptor per inode it knows and
            # does not raise its own limit; prlimit gives it the hard one
            "passthrough_ll": (["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE),
                                pll, "-o", "source=" + src_native, mnt_p],
                               mnt_p),
            "dboxfs (mdbox)": ([os.path.join(BUILD, "fusefs", "dboxfs"),
                                src_store, mnt_d], mnt_d),
        }

    for name, (cmd, root) in targets(maildir, store).items():
        proc = mount(cmd, root) if cmd else None
        try:
            read_all(root)  # warm up
            warm = timed(lambda: read_all(root), args.runs)
            cold = timed(lambda: read_all(root), args.runs, drop_caches)
            par = timed(lambda: read_all(root, 16), args.runs, drop_caches)
        finally:
            if proc:
                umount(proc, root)
        results[name] = {"warm": warm, "cold": cold, "par16": par}
    def ls_targets(src_native, src_store):
        t = targets(src_native, src_store)
        t["dboxfs -o noxattr"] = (t["dboxfs (mdbox)"][0] + ["-o", "noxattr"],
                                  mnt_d)
        return t

    for key, (native_src, store_src) in (("ls", (big, bigstore)),
                                         ("ls_small", (maildir, store))):
        ls_bench(results, key, ls_targets(native_src, store_src), args)
    shutil.rmtree(mnt_p, ignore_errors=True)
    shutil.rmtree(mnt_d, ignore_errors=True)
    report(results, args)


def ls_bench(results, key, targets_, args):
    for name, (cmd, root) in targets_.items():
        results.setdefault(name, {})

        def fresh():
            drop_caches()
        if cmd:
            times = []
            for _ in range(args.runs):
                proc = mount(cmd, root)   # fresh mount: nothing cached
                try:
                    drop_caches()
                    t = time.monotonic()
                    ls_l(root)
                    times.append(time.monotonic() - t)
                except subprocess.CalledProcessError as e:
                    # passthrough_ll needs a descriptor per inode: more
                    # files than the hard RLIMIT_NOFILE cannot be listed
                    results[name]["ls_error"] = e.stderr.decode()[-200:]
                    break
                finally:
                    umount(proc, root)
            results[name][key] = statistics.median(times) if times else None
        else:
            results[name][key] = timed(lambda: ls_l(root), args.runs, fresh)


def report(results, args):
    rows = [("warm read of all", "warm"), ("cold read of all", "cold"),
            ("16 parallel readers (cold)", "par16"),
            ("ls -l, %d-message folder (cold)" % args.messages, "ls_small"),
            ("ls -l, %d-message folder (cold)" % args.big_folder, "ls")]
    nat, pll, dbx = "native maildir", "passthrough_ll", "dboxfs (mdbox)"
    out = ["Command: `sudo bench/bench_read.py --messages %d --big-folder %d "
           "--runs %d` (medians of %d runs, seconds; %d messages, %.1f MB)."
           % (args.messages, args.big_folder, args.runs, args.runs,
              args.messages, sum(len(d) for _, d in gen_messages(
                  args.messages)) / 1e6), "",
           "| test | native | passthrough_ll | dboxfs | dboxfs/native | "
           "dboxfs/passthrough |", "|---|---|---|---|---|---|"]
    for label, key in rows:
        n, p, d = results[nat][key], results[pll][key], results[dbx][key]
        if key.startswith("ls"):
            label += "; -o noxattr: %.3f" % results["dboxfs -o noxattr"][key]
        if p is None:
            out.append("| %s | %.3f | fails (EMFILE) | %.3f | %.2f | - |" %
                       (label, n, d, d / n))
            continue
        out.append("| %s | %.3f | %.3f | %.3f | %.2f | %.2f |" % (
            label, n, p, d, d / n, d / p))
    if results[pll].get("ls_error"):
        out += ["", "passthrough_ll holds one descriptor per inode it knows; "
                "with this machine's hard limit of %d open files it cannot "
                "list the %d-message folder (`ls: ... Too many open files`)."
                % (NOFILE, args.big_folder)]
    text = "\n".join(out) + "\n"
    print(text)
    replace_section(os.path.join(HERE, "RESULTS.md"), "Read view", text)


if __name__ == "__main__":
    main()
