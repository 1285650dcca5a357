"""An import is one transaction: killed with SIGKILL at any moment it leaves
all of its messages or none, and `dboxctl check` finds nothing wrong."""

import os
import random
import signal
import subprocess
import time

import pytest

from dboxfs_testlib import (DBOXCTL, dboxctl, ls_mailboxes, ls_messages,
                            make_maildir, wtmp)  # noqa: F401

COUNT = 500
RUNS = 40          # per format; about two thirds are killed mid-run


def source(path):
    msgs = {"%d.M%d.atom" % (1700000000 + i, i):
            b"Subject: m%d\n\n" % i + os.urandom(200 + i % 700).hex().encode()
            for i in range(COUNT)}
    return make_maildir(path, msgs)


def full_duration(store, src, box):
    t = time.monotonic()
    dboxctl("import", store, box, src)
    return time.monotonic() - t


def wait_exit(p, timeout=60):
    try:
        return p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_import_killed_is_all_or_nothing(wtmp, fmt):
    src = source(os.path.join(wtmp, "src"))
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    rng = random.Random(4242)
    outcomes = {"none": 0, "all": 0}
    spans = []
    kills = 0
    for run_no in range(RUNS):
        # uninterrupted imports now and then: the store grows run by run,
        # and a loaded CI machine is slower than this one, so a span
        # measured once at the start puts every kill before the commit
        if run_no % 5 == 0:
            span = full_duration(store, src, "Timing%d" % run_no)
            spans.append(round(span, 3))
        box = "K%d" % run_no
        p = subprocess.Popen([DBOXCTL, "import", store, box, src],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        # uniformly over the whole run and well beyond its usual end, so
        # that some kills land after the commit (the fixed seed puts about
        # a third of them past the end)
        delay = rng.uniform(0, span * 1.5)
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            kills += 1
        wait_exit(p)
        # the next open recovers; check must then be clean
        chk = dboxctl("check", store, check=False)
        assert chk.returncode == 0, chk.stdout.decode() + chk.stderr.decode()
        boxes = ls_mailboxes(store)
        n = boxes[box]["messages"] if box in boxes else 0
        assert n in (0, COUNT), "run %d: %d of %d visible" % (run_no, n, COUNT)
        outcomes["all" if n == COUNT else "none"] += 1
        if n == COUNT:
            rows = ls_messages(store, box)
            assert sorted(r["base"] for r in rows) == sorted(
                n.split(":2,")[0] for n in os.listdir(os.path.join(src, "cur")))
    # the kills really landed on both sides of the commit
    assert outcomes["none"] > 0 and outcomes["all"] > 0, (outcomes, spans)
    assert kills >= RUNS // 2, (kills, spans)
    # nothing of the killed runs is left in the store's scratch area
    left = os.listdir(os.path.join(store, "dboxfs", "tmp"))
    assert left == [], left
