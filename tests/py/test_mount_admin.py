"""What an admin meets when mounting: the source and type that df,
findmnt and mount -a see, refusals of bad mount points, the log lines,
and the permissions the kernel enforces for other users."""

import collections
import ctypes
import errno
import os
import pwd
import re
import subprocess

import pytest

from dboxfs_testlib import (DBOXFS, dboxctl, make_maildir, mounts, run,
                            wait_for, wtmp)  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")


def small_store(wtmp, fmt="mdbox", mode=0o700):
    body = b"Subject: secret\n\nonly for root\n"
    src = make_maildir(os.path.join(wtmp, "src"),
                       {"1700000000.M1.r,S=%d" % len(body): body})
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    dboxctl("import", store, "INBOX", src)
    os.chmod(store, mode)
    return store


def mount_lines(mnt):
    with open("/proc/self/mountinfo") as f:
        return [ln for ln in f if ln.split()[4] == os.path.realpath(mnt)]


def test_source_type_and_mount_a(wtmp, mounts):
    """fsname is the store, type fuse.dboxfs: mount -a of an fstab line
    for a mounted store sees it mounted and stacks nothing."""
    store = small_store(wtmp)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt)
    out = run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", mnt]).stdout.split()
    assert out == [store.encode(), b"fuse.dboxfs"]
    fstab = os.path.join(wtmp, "fstab")
    with open(fstab, "w") as f:
        f.write("%s %s fuse.dboxfs defaults,nofail 0 0\n" % (store, mnt))
    p = run(["mount", "-a", "-v", "-T", fstab], check=False)
    assert p.returncode == 0, p.stderr
    assert b"already mounted" in p.stdout + p.stderr
    assert len(mount_lines(mnt)) == 1
    # the line is written beside the request loop (it counts messages)
    wait_for(lambda: "dboxfs: mounted" in m.output(), what="mount's log")
    log = m.output()
    assert log.count("dboxfs: mounted %s on %s" % (store, mnt)) == 1, log
    assert "1 messages" in log and "dboxfs: dboxfs" not in log
    assert m.stop() == 0
    assert "dboxfs: unmounting %s" % store in m.output()


def test_bad_mount_points_refused(wtmp, mounts):
    store = small_store(wtmp)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt)
    # a second dboxfs on the same mount point
    p = subprocess.run([DBOXFS, store, mnt], capture_output=True, timeout=60)
    assert p.returncode != 0
    assert b"mounted there already" in p.stderr
    assert len(mount_lines(mnt)) == 1
    # a regular file (the kernel would mount over it; every access EIO)
    f = os.path.join(wtmp, "file")
    open(f, "w").close()
    p = subprocess.run([DBOXFS, store, f], capture_output=True, timeout=60)
    assert p.returncode != 0 and b"not a directory" in p.stderr
    assert not mount_lines(f)
    p = subprocess.run([DBOXFS, store, os.path.join(wtmp, "none")],
                       capture_output=True, timeout=60)
    assert p.returncode != 0 and b"No such file" in p.stderr


def as_nobody(cmd):
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    return subprocess.run(cmd, preexec_fn=drop, capture_output=True,
                          timeout=60)


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_allow_other_enforces_permissions(wtmp, mounts, fmt):
    """With allow_other, another user gets what the store's owner and
    modes give it (default_permissions), not everything."""
    os.chmod(wtmp, 0o755)
    store = small_store(wtmp, fmt)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, "allow_other")
    name = os.listdir(os.path.join(mnt, "cur"))[0]
    msg = os.path.join(mnt, "cur", name)
    st = os.stat(msg)
    assert st.st_uid == 0 and st.st_mode & 0o077 == 0
    for cmd in (["cat", msg],
                ["ls", os.path.join(mnt, "cur")],
                ["rm", "-f", msg],
                ["mkdir", os.path.join(mnt, ".Evil")],
                ["sh", "-c", "echo x > %s/tmp/x" % mnt]):
        p = as_nobody(cmd)
        assert p.returncode != 0, cmd
        assert b"Permission denied" in p.stderr, (cmd, p.stderr)
    assert os.path.exists(msg)
    assert not os.path.exists(os.path.join(mnt, ".Evil"))
    assert len(os.listdir(os.path.join(mnt, "cur"))) == 1


def test_allow_other_enforces_directory_modes(wtmp, mounts):
    """The modes chmod gives the root, cur/ and tmp/ are what the kernel
    checks for another user, also after a remount; chmod back takes the
    rights away again."""
    os.chmod(wtmp, 0o755)
    store = small_store(wtmp)
    mnt = os.path.join(wtmp, "mnt")
    cur, tmp = os.path.join(mnt, "cur"), os.path.join(mnt, "tmp")
    m = mounts(store, mnt, "allow_other")
    assert as_nobody(["ls", cur]).returncode != 0
    os.chmod(mnt, 0o755)
    os.chmod(cur, 0o755)
    os.chmod(tmp, 0o1777)
    m.stop()
    m = mounts(store, mnt, "allow_other")
    p = as_nobody(["ls", cur])
    assert p.returncode == 0 and len(p.stdout.split()) == 1, p.stderr
    p = as_nobody(["sh", "-c", "echo x > %s/x" % tmp])
    assert p.returncode == 0, p.stderr
    assert os.stat(os.path.join(tmp, "x")).st_uid == \
        pwd.getpwnam("nobody").pw_uid
    os.chmod(cur, 0o700)
    p = as_nobody(["ls", cur])
    assert p.returncode != 0 and b"Permission denied" in p.stderr
    m.stop()


def test_syslog_lines_when_daemonized(wtmp):
    """Without -f the daemon logs to syslog: one line at mount, one at
    unmount, each naming the program once (syslog adds "dboxfs[PID]:")."""
    import socket
    if os.path.exists("/dev/log"):
        pytest.skip("a syslog daemon owns /dev/log here")
    store = small_store(wtmp)
    mnt = os.path.join(wtmp, "mnt")
    os.makedirs(mnt)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    sock.settimeout(30)
    try:
        run([DBOXFS, store, mnt], timeout=60)
        try:
            pids = [int(p) for p in run(
                ["pgrep", "-f", "^%s %s %s$" % (DBOXFS, store, mnt)],
                check=False).stdout.split()]
            assert len(pids) == 1
            first = sock.recv(4096).decode()
        finally:
            run(["fusermount3", "-u", mnt], check=False)
        lines = [first]
        while "unmounting" not in lines[-1]:
            lines.append(sock.recv(4096).decode())
    finally:
        sock.close()
        os.unlink("/dev/log")
    wait_for(lambda: not os.path.exists("/proc/%d" % pids[0]) or
             open("/proc/%d/stat" % pids[0]).read().split()[2] == "Z",
             timeout=30, what="daemon exit")
    assert "dboxfs[%d]: mounted %s on %s" % (pids[0], store, mnt) in lines[0]
    assert "1 messages" in lines[0]
    assert all("dboxfs: " not in ln for ln in lines), lines


def requests(m, since):
    """Requests of each kind the daemon received after `since` characters
    of its output (-o debug)."""
    return collections.Counter(
        re.findall(r"opcode: (\w+) \(\d+\)", m.output()[since:]))


def deliver(mnt, name):
    path = os.path.join(mnt, "tmp", name)
    with open(path, "wb") as f:
        f.write(b"Subject: " + name.encode() + b"\n\nbody\n")
    os.rename(path, os.path.join(mnt, "new", name))


@pytest.mark.parametrize("opts", [(), ("allow_other",)])
def test_default_permissions_only_with_other_users(wtmp, mounts, opts):
    """A mount made by root without allow_other is used by root alone
    (the kernel lets in only the mount owner's uids and gids), who passes
    every mode check: no default_permissions, so no GETATTR of the
    directory to refresh its mode after each rename or create into it
    (one of 3 requests per flag rename, 3 of 10 per delivery).  With
    allow_other the kernel checks the modes, and asks for them."""
    store = small_store(wtmp)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "debug", *opts)
    deliver(mnt, "warm")
    n = 20
    since = len(m.output())
    for i in range(n):
        deliver(mnt, "d%d" % i)
    delivered = requests(m, since)
    assert delivered["RENAME"] == n and delivered["CREATE"] == n
    os.rename(os.path.join(mnt, "new", "warm"),
              os.path.join(mnt, "cur", "warm:2,"))
    name = os.path.join(mnt, "cur", "warm:2,")
    since = len(m.output())
    for i in range(n):
        nxt = os.path.join(mnt, "cur", "warm:2," + ("FS" if i % 2 else "S"))
        os.rename(name, nxt)
        name = nxt
    renamed = requests(m, since)
    assert renamed["RENAME"] == n
    if opts:
        assert delivered["GETATTR"] >= 2 * n and renamed["GETATTR"] >= n
    else:
        assert delivered["GETATTR"] == 0, delivered
        assert renamed["GETATTR"] == 0, renamed
    assert len(os.listdir(os.path.join(mnt, "new"))) == n
    sopts = mount_lines(mnt)[0].split(" - ")[1].split()[2].split(",")
    assert ("default_permissions" in sopts) == bool(opts), sopts


LIBC = ctypes.CDLL(None, use_errno=True)


def access_errno(path, mode):
    """access(2)'s answer: 0 or its errno (os.access gives only a bool)."""
    ctypes.set_errno(0)
    if LIBC.access(os.fsencode(path), mode) == 0:
        return 0
    return ctypes.get_errno()


@pytest.mark.parametrize("ro", [False, True])
def test_root_access_answers_as_native(wtmp, mounts, ro):
    """Without default_permissions access(2) and chdir ask the daemon
    (ACCESS), which answers as the kernel answers root on a local
    filesystem (a file of the message's mode beside it): read and write
    anything, search any directory, execute only what has an execute
    bit, so no message; on -o ro W_OK is EROFS (the VFS's).  Exec of a
    message fails (the kernel's own check), of an executable file
    runs."""
    store = small_store(wtmp)
    mnt = os.path.join(wtmp, "mnt")
    tool = os.path.join(mnt, "tool")
    m = mounts(store, mnt)
    with open(tool, "w") as f:
        f.write("#!/bin/sh\necho ran\n")
    os.chmod(tool, 0o700)
    m.stop()
    m = mounts(store, mnt, "debug", *(["ro"] if ro else []))
    cur = os.path.join(mnt, "cur")
    msg = os.path.join(cur, os.listdir(cur)[0])
    native = os.path.join(wtmp, "native")
    open(native, "w").close()
    os.chmod(native, os.stat(msg).st_mode & 0o7777)
    for mode in (os.F_OK, os.R_OK, os.W_OK, os.X_OK, os.R_OK | os.W_OK,
                 os.R_OK | os.X_OK):
        want = access_errno(native, mode)
        if ro and mode & os.W_OK:
            want = errno.EROFS
        assert access_errno(msg, mode) == want, mode
    assert access_errno(msg, os.X_OK) == errno.EACCES
    for d in (mnt, cur):
        assert access_errno(d, os.R_OK | os.X_OK) == 0
    assert run(["sh", "-c", "cd %s && pwd" % cur]).stdout.strip() == \
        cur.encode()
    with pytest.raises(PermissionError):
        subprocess.run([msg], timeout=60)
    assert access_errno(tool, os.X_OK) == 0
    assert run([tool]).stdout == b"ran\n"
    assert requests(m, 0)["ACCESS"] > 0


@pytest.mark.parametrize("opts", [(), ("default_permissions",)])
def test_root_without_dac_capabilities(wtmp, mounts, opts):
    """The one difference of a root mount without default_permissions
    (README, dboxfs.8): a root process that dropped CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH reads another user's 0600 file, which ext4
    would refuse it; -o default_permissions has the modes checked."""
    store = small_store(wtmp)
    mnt = os.path.join(wtmp, "mnt")
    mounts(store, mnt, *opts)
    path = os.path.join(mnt, "nobodys")
    with open(path, "w") as f:
        f.write("x\n")
    os.chown(path, pwd.getpwnam("nobody").pw_uid, 0)
    os.chmod(path, 0o600)
    p = run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
             "cat", path], check=False)
    if opts:
        assert p.returncode != 0 and b"Permission denied" in p.stderr
    else:
        assert p.returncode == 0 and p.stdout == b"x\n", p.stderr
