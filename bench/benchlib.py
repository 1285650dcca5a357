"""Helpers shared by the benchmark drivers."""

import os
import re
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BUILD = os.environ.get("DBOXFS_BUILD", os.path.join(TOP, "build"))
DBOXCTL = os.path.join(BUILD, "tools", "dboxctl", "dboxctl")
EXAMPLES = "/usr/share/doc/libfuse3-dev/examples"


def run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, check=True, timeout=timeout,
                          capture_output=True, **kw)


def dboxctl(*args):
    return run([DBOXCTL] + list(args), timeout=3600)


def build_passthrough(work):
    """libfuse's passthrough_ll, built from the libfuse3-dev examples."""
    exe = os.path.join(work, "passthrough_ll")
    if not os.path.exists(exe):
        src = os.path.join(EXAMPLES, "passthrough_ll.c")
        run(["cc", "-O2", "-I", EXAMPLES, src, "-o", exe] +
            subprocess.check_output(["pkg-config", "--cflags", "--libs",
                                     "fuse3"]).decode().split())
    return exe


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def mount(cmd, mnt):
    """Starts a FUSE daemon in the foreground and waits for its mount."""
    proc = subprocess.Popen(cmd + ["-f"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not mounted(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("mount failed: %s" % cmd)
        time.sleep(0.01)
    return proc


def umount(proc, mnt):
    subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def replace_section(path, title, body):
    """Replaces (or appends) the '## title' section of a markdown file."""
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = "## %s\n\n%s\n" % (title, body.rstrip("\n"))
    pat = re.compile(r"^## %s\n.*?(?=^## |\Z)" % re.escape(title), re.S | re.M)
    if pat.search(text):
        text = pat.sub(block + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def gen_messages(n, seed=7):
    """n realistic-looking messages as (maildir base, bytes), the same for
    a seed in every run and every benchmark."""
    import random
    rng = random.Random(seed)
    words = (b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
             b"eiusmod tempor incididunt ut labore et dolore magna").split()
    for i in range(n):
        lines = rng.randint(5, 120)
        body = b"\n".join(b" ".join(rng.choice(words) for _ in range(10))
                          for _ in range(lines))
        yield ("%d.M%dP1.bench" % (1700000000 + i, i),
               b"From: x@example.org\nSubject: bench %d\n\n%s\n" % (i, body))
