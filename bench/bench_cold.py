#!/usr/bin/python3
"""bench_cold.py - the cold read row of bench_native.py for chosen stores,
builds interleaved: what a change of the cold read path bought.

    sudo bench/bench_cold.py [--messages N] [--rounds R]
                             [--stores sdbox,dove-sdbox,mdbox]
                             LABEL=BUILDDIR ...

Uses (and makes, if missing) bench_native.py's maildir and stores under
bench/work/native/.  Every round reads the native maildir, then each
store through each build: a fresh mount, the page cache dropped, then
`find cur -type f -exec cat {} +`.  Reported per target, medians over
the rounds: the wall time and its ratio to the native maildir's, the
daemon's CPU time (utime + stime from /proc) and the disk's read
requests (/sys/block/*/stat) during the pass.  The machine's other work
shows in the wall times; the CPU time and the reads are the daemon's
own.  Prints only; RESULTS.md is not touched.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import BUILD, drop_caches, mount, umount  # noqa: E402
from bench_import import Doveadm, chown_tree  # noqa: E402
import bench_native as bn  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_secs(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def disk_reads():
    n = 0
    for dev in os.listdir("/sys/block"):
        if dev.startswith(("loop", "zram", "ram")):
            continue
        with open("/sys/block/%s/stat" % dev) as f:
            n += int(f.read().split()[0])
    return n


def cold_pass(root, pid=None):
    """(wall, daemon CPU, disk reads) of one cold pass over root/cur."""
    drop_caches()
    c0 = cpu_secs(pid) if pid else 0.0
    d0 = disk_reads()
    t = time.monotonic()
    subprocess.run("find %s/cur -type f -exec cat {} + > /dev/null" % root,
                   shell=True, check=True)
    wall = time.monotonic() - t
    return (wall, (cpu_secs(pid) - c0) if pid else 0.0,
            disk_reads() - d0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--stores", default="sdbox,dove-sdbox")
    ap.add_argument("builds", nargs="+", help="LABEL=BUILDDIR")
    args = ap.parse_args()
    work = os.path.join(HERE, "work", "native")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    n = args.messages
    ctl = os.path.join(BUILD, "tools", "dboxctl", "dboxctl")
    md = bn.make_maildir(os.path.join(work, "maildir-%d" % n), n)
    chown_tree(md)
    da = Doveadm(work)
    idx = tempfile.mkdtemp(prefix="idx.", dir=work)
    stores = {}
    for name in args.stores.split(","):
        fmt = name.rsplit("-", 1)[-1]
        if name.startswith("dove-"):
            path = bn.doveadm_store(da, md, os.path.join(
                work, "dove-%s-%d" % (fmt, n)), fmt)
            # a Dovecot tree's index lives outside it, one per build
            stores[name] = (path, ["-o", "takeover"], True)
        else:
            path = bn.dboxctl_store(ctl, md, os.path.join(
                work, "ctl-%s-%d" % (fmt, n)), fmt)
            stores[name] = (path, [], False)
    mnt = tempfile.mkdtemp(prefix="mnt.", dir=work)
    builds = [b.split("=", 1) for b in args.builds]
    res = {}
    try:
        for _ in range(args.rounds):
            res.setdefault("native maildir (ext4)", []).append(
                cold_pass(md))
            for label, bdir in builds:
                exe = os.path.join(os.path.abspath(bdir), "fusefs",
                                   "dboxfs")
                for name, (path, opts, own_idx) in stores.items():
                    cmd = [exe, path, mnt] + opts
                    if own_idx:
                        cmd += ["-o", "index=%s/%s-%s.sqlite" %
                                (idx, name, label)]
                    proc = mount(cmd, mnt)
                    try:
                        res.setdefault("%s [%s]" % (name, label), []).append(
                            cold_pass(mnt, proc.pid))
                    finally:
                        umount(proc, mnt)
    finally:
        os.rmdir(mnt)
        subprocess.run(["rm", "-rf", idx])
    native = statistics.median(r[0] for r in res["native maildir (ext4)"])
    print("| target | cold read, s (ratio) | daemon CPU, s | disk reads |")
    print("|---|---|---|---|")
    for name, rows in res.items():
        wall = statistics.median(r[0] for r in rows)
        print("| %s | %.3f (%.2f) | %.3f | %d |" % (
            name, wall, wall / native,
            statistics.median(r[1] for r in rows),
            statistics.median(r[2] for r in rows)))


if __name__ == "__main__":
    main()
