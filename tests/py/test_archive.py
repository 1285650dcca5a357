"""Archives of any size (issue 14, issue 11 item 10): dboxctl import and
export run in bounded memory and descriptors, and an interrupted import
leaves the store as it was."""

import os
import random
import resource
import signal
import subprocess
import tempfile
import time

import pytest

from dboxfs_testlib import (DBOXCTL, dboxctl, ls_mailboxes, make_maildir,
                            wait_for, wtmp)  # noqa: F401

MIB = 1024 * 1024


def write_mbox(path, count, start=0):
    with open(path, "wb") as f:
        for i in range(start, start + count):
            f.write(b"From sender@example.com Thu Nov 24 18:22:48 2022\n"
                    b"From: a@example.com\nTo: b@example.com\n"
                    b"Subject: message %d\nMessage-ID: <%d@example.com>\n"
                    b"\nbody of message %d\n\n" % (i, i, i))
    return path


def sanitized():
    """ASan keeps freed memory in quarantine and shadow pages: the
    absolute bound is only meaningful without it."""
    with open(DBOXCTL, "rb") as f:
        return b"__asan_init" in f.read()


def run_rss(args, timeout=600, preexec_fn=None):
    """Runs dboxctl under /usr/bin/time (a child forked from pytest would
    start with pytest's high-water mark); returns (stdout, stderr, maxrss
    in bytes)."""
    env = dict(os.environ)
    # a small quarantine, so that a sanitized build measures the program
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + \
        ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    with tempfile.NamedTemporaryFile("r") as rss:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name,
                            DBOXCTL] + [str(a) for a in args],
                           capture_output=True, env=env, timeout=timeout,
                           preexec_fn=preexec_fn)
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stdout, p.stderr, int(rss.read().split()[-1]) * 1024


def count(store, box):
    return ls_mailboxes(store).get(box, {"messages": 0})["messages"]


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
def test_import_memory_does_not_grow_with_the_count(wtmp, fmt):
    """200,000 messages (sdbox: 60,000, one file each, to keep CI's time)
    take no more memory than 20,000 (the old code held ~4.7 KB per
    message: ~850 MB more), and, unsanitized, <= 64 MiB."""
    n_small, n_big = (20000, 200000) if fmt == "mdbox" else (10000, 60000)
    small = write_mbox(os.path.join(wtmp, "small.mbox"), n_small)
    big = write_mbox(os.path.join(wtmp, "big.mbox"), n_big)
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    out, _, rss_small = run_rss(["import", store, "Small", small])
    assert b"%d messages imported into Small" % n_small in out
    out, _, rss_big = run_rss(["import", store, "Big", big])
    assert b"%d messages imported into Big" % n_big in out
    assert count(store, "Big") == n_big
    # ASan's allocator keeps more per allocation (seen: 57 -> 75 MiB for
    # 10k -> 60k sdbox messages; unsanitized within 16 MiB); the old
    # code needed ~235 MiB more for those 50k, so either margin catches it
    slack = (32 if sanitized() else 16) * MIB
    assert rss_big <= rss_small + slack, (rss_small, rss_big)
    if not sanitized():
        assert rss_big <= 64 * MIB, rss_big
    assert dboxctl("check", store).returncode == 0
    if fmt == "sdbox":
        return
    # export is bounded too (of the small mailbox: writing 200,000 files
    # and removing them costs minutes of CI; bench_import.py measures
    # larger exports)
    dest = os.path.join(wtmp, "out")
    out, _, rss_export = run_rss(["export", store, "Small", dest])
    assert b"%d messages exported" % n_small in out
    assert len(os.listdir(os.path.join(dest, "cur"))) == n_small
    assert rss_export <= rss_small + 16 * MIB, (rss_small, rss_export)
    if not sanitized():
        assert rss_export <= 64 * MIB, rss_export


def test_sdbox_import_within_256_descriptors(wtmp):
    """One transaction of 2,000 messages under ulimit -n 256 (it used to
    hold one open file per message)."""
    src = make_maildir(os.path.join(wtmp, "md"),
                       {"m%05d" % i: b"Subject: %d\n\nbody\n" % i
                        for i in range(2000)})
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "sdbox")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    out, _, _ = run_rss(["import", store, "INBOX", src], preexec_fn=limit)
    assert b"2000 messages imported into INBOX" in out
    assert count(store, "INBOX") == 2000
    assert dboxctl("check", store).returncode == 0


def test_mdbox_import_into_many_files_within_128_descriptors(wtmp):
    """One mdbox transaction filling 1,200 m.N files (a 4 KiB rotate
    size) under ulimit -n 128: it used to hold every m.N it filled open
    until the commit (EMFILE near 110 files), and each new file tried
    every id from the index's newest on (EEXIST beyond 1,000 files).
    The export reads them within the same limit (64 are kept open)."""
    n = 2400
    mbox = os.path.join(wtmp, "m.mbox")
    with open(mbox, "wb") as f:
        for i in range(n):
            f.write(b"From a@example.com Thu Nov 24 18:22:48 2022\n"
                    b"Subject: %d\n\n" % i + b"x" * 1500 + b"\n\n")
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox", "--rotate-size", "4k")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    out, _, _ = run_rss(["import", store, "Box", mbox], preexec_fn=limit)
    assert b"%d messages imported into Box" % n in out
    files = [f for f in os.listdir(os.path.join(store, "storage"))
             if f.startswith("m.")]
    assert len(files) >= n // 2, len(files)
    assert count(store, "Box") == n
    assert dboxctl("check", store).returncode == 0
    dest = os.path.join(wtmp, "out")
    out, _, _ = run_rss(["export", store, "Box", dest], preexec_fn=limit)
    assert b"%d messages exported" % n in out
    for name in os.listdir(os.path.join(dest, "cur")):
        with open(os.path.join(dest, "cur", name), "rb") as f:
            assert f.read().endswith(b"\n\n" + b"x" * 1500 + b"\n")


def test_check_during_an_mdbox_import_sees_no_stray_files(wtmp):
    """dboxctl check while an import has filled (and closed) new m.N
    files that its commit has not put in the index yet: they are the
    live writer's (its owner directory links them), not stray files."""
    n = 4000
    mbox = os.path.join(wtmp, "m.mbox")
    with open(mbox, "wb") as f:
        for i in range(n):
            f.write(b"From a@example.com Thu Nov 24 18:22:48 2022\n"
                    b"Subject: %d\n\n" % i + b"x" * 1500 + b"\n\n")
    store = os.path.join(wtmp, "store")
    storage = os.path.join(store, "storage")
    dboxctl("init", store, "--format", "mdbox", "--rotate-size", "4k")
    p = subprocess.Popen([DBOXCTL, "import", store, "Box", mbox],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: p.poll() is not None or len(
            [f for f in os.listdir(storage) if f.startswith("m.")]) >= 20,
            timeout=120, what="20 m.N files")
        p.send_signal(signal.SIGSTOP)
        assert p.poll() is None, "the import ended too early"
        c = dboxctl("check", store, check=False)
        assert b"not in the index" not in c.stdout + c.stderr, c.stdout
        assert c.returncode == 0, (c.stdout, c.stderr)
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert count(store, "Box") == n
    assert dboxctl("check", store).returncode == 0


def soft_nofile(pid):
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def test_soft_fd_limit_is_raised(wtmp):
    """dboxctl raises its soft RLIMIT_NOFILE to the hard one at start."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    mbox = write_mbox(os.path.join(wtmp, "m.mbox"), 20000)

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096))

    p = subprocess.Popen([DBOXCTL, "import", store, "B", mbox],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=limit)
    try:
        seen = None
        # until the running dboxctl shows the raised limit, or it ended
        while p.poll() is None and seen != 4096:
            seen = soft_nofile(p.pid)
        assert seen == 4096
    finally:
        p.kill()
        p.communicate()


@pytest.mark.parametrize("fmt", ["mdbox", "sdbox"])
def test_interrupted_import_leaves_the_store_as_it_was(wtmp, fmt):
    """SIGINT or SIGTERM at random points of an import: the store has all
    of it or none (then it says so and exits non-zero), dboxctl check is
    clean, and a rerun imports everything."""
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    first = write_mbox(os.path.join(wtmp, "first.mbox"), 100)
    dboxctl("import", store, "Box", first)
    n = 6000
    mbox = write_mbox(os.path.join(wtmp, "more.mbox"), n, start=100)
    # how long a full run takes, to spread the signals over it
    probe = os.path.join(wtmp, "probe")
    dboxctl("init", probe, "--format", fmt)
    t0 = time.monotonic()
    dboxctl("import", probe, "Box", mbox)
    full = time.monotonic() - t0
    rng = random.Random(14)
    expected = 100
    interrupted = 0
    for i, sig in enumerate([signal.SIGINT, signal.SIGTERM] * 3):
        p = subprocess.Popen([DBOXCTL, "import", store, "Box", mbox],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # the point of interruption is random, not a synchronisation
        time.sleep(rng.uniform(0.05, full * 0.9))
        p.send_signal(sig)
        out, err = p.communicate(timeout=300)
        if p.returncode == 0:
            expected += n  # finished (or committing) before the signal
        else:
            interrupted += 1
            assert b"interrupted: nothing imported" in err, err
            assert p.returncode == 128 + sig
        assert count(store, "Box") == expected
        chk = dboxctl("check", store, check=False)
        assert chk.returncode == 0, chk.stdout + chk.stderr
    assert interrupted > 0
    assert b"%d messages imported" % n in \
        dboxctl("import", store, "Box", mbox).stdout
    assert count(store, "Box") == expected + n
    assert dboxctl("check", store).returncode == 0


def test_interrupted_import_into_a_new_mailbox_leaves_no_mailbox(wtmp):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", "mdbox")
    mbox = write_mbox(os.path.join(wtmp, "m.mbox"), 50000)
    p = subprocess.Popen([DBOXCTL, "import", store, "New", mbox],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # interrupt once the import is under way: its transaction spools
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "New" not in ls_mailboxes(store):
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    if p.returncode == 0:
        pytest.skip("the import finished before the signal")
    assert b"interrupted: nothing imported" in err
    assert "New" not in ls_mailboxes(store)
    assert dboxctl("check", store).returncode == 0
