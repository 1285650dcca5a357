"""Differential conformance harness (issue 10): the same maildir-client
system calls on a native maildir on the local filesystem and on a dboxfs
mount, compared after every step.

A step is one operation (a tuple such as ("rename", "tmp/a", "new/a", 0)),
run on the native tree and on the mount.  After it the harness compares

- the result of the call: its value (bytes read, a listing) or its errno;
- the listing of every directory (names and types, d_type vs lstat);
- of every entry: st_mode, st_nlink, st_mtime, and for regular files
  st_size and the bytes;
- st_ino stability: a file keeps its inode across steps on each side
  (the numbers differ between the sides, the pairing must not).

Times set to "now" by a call cannot be equal on both sides (the calls run
one after the other), so a time that changed during a step on the native
side must lie within that step's window on the mount side too; the pair
is then remembered as equivalent for later steps.

Everything the spec lets the mount do differently is in ALLOWED below;
every other difference is a failure.  Tests may also pass `tolerate`, ids
of rules in TOLERABLE (differences found by this harness that are bugs
being fixed), so that one known bug does not hide all the others."""

import ctypes
import errno
import os
import stat
import time

# ---------------------------------------------------------------- calls

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                            ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def renameat2(src, dst, flags):
    if _libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD,
                       os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src)


def _write_all(fd, data, off=None):
    if off is None:
        os.write(fd, data)
    else:
        os.pwrite(fd, data, off)


def _open_do_close(path, flags, mode, body):
    """open, body(fd), close; an error names the call that failed."""
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        raise OSError(e.errno, "open") from None
    try:
        return body(fd)
    finally:
        os.close(fd)


def op_create(side, rel, data, mode=0o600, fsync=False, excl=True):
    """A deliverer's tmp file: open(O_CREAT[|O_EXCL]), write, [fsync]."""
    def body(fd):
        _step(_write_all, "write", fd, data)
        if fsync:
            _step(os.fsync, "fsync", fd)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if excl else os.O_TRUNC)
    return _open_do_close(side.p(rel), flags, mode, body)


def op_pwrite(side, rel, off, data, fsync=False):
    def body(fd):
        _step(_write_all, "write", fd, data, off)
        if fsync:
            _step(os.fsync, "fsync", fd)
    return _open_do_close(side.p(rel), os.O_WRONLY, 0, body)


def op_open(side, rel, how):
    """Open and close: "r", "w", "rw", "append", "trunc"."""
    flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR,
             "append": os.O_WRONLY | os.O_APPEND,
             "trunc": os.O_WRONLY | os.O_TRUNC}[how]
    return _open_do_close(side.p(rel), flags, 0, lambda fd: None)


def op_truncate(side, rel, n):
    os.truncate(side.p(rel), n)


def op_read(side, rel):
    with open(side.p(rel), "rb") as f:
        return f.read()


def op_rename(side, src, dst, flags=0):
    renameat2(side.p(src), side.p(dst), flags)


def op_link(side, src, dst):
    os.link(side.p(src), side.p(dst))


def op_unlink(side, rel):
    os.unlink(side.p(rel))


def op_chmod(side, rel, mode):
    os.chmod(side.p(rel), mode)


def op_utime(side, rel, ns=None):
    """ns: (atime_ns, mtime_ns), or None for "now"."""
    if ns is None:
        os.utime(side.p(rel))
    else:
        os.utime(side.p(rel), ns=ns)


def op_mkdir(side, rel, mode=0o777):
    os.mkdir(side.p(rel), mode)


def op_rmdir(side, rel):
    os.rmdir(side.p(rel))


def op_listdir(side, rel):
    # names compared with their flag letters sorted (ALLOWED["flag-order"])
    return sorted(os.path.basename(flag_order(os.path.join(rel, n)))
                  for n in os.listdir(side.p(rel)))


def op_fsync_dir(side, rel):
    fd = os.open(side.p(rel), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def op_stat(side, rel):
    os.lstat(side.p(rel))


def op_remount(side):
    """Unmount and mount again (the native side has nothing to do)."""
    if side.remount is not None:
        side.remount()


def _step(fn, what, *args):
    try:
        return fn(*args)
    except OSError as e:
        raise OSError(e.errno, what) from None


OPS = {name[3:]: fn for name, fn in globals().items()
       if name.startswith("op_")}

# Calls that write into an existing file (refused on messages, spec 2).
WRITING = {"pwrite", "truncate", "open"}


def call(side, op):
    """Runs op on side; returns ("ok", value) or ("err", "call:ERRNO")."""
    try:
        return ("ok", OPS[op[0]](side, *op[1:]))
    except OSError as e:
        what = e.strerror if e.strerror in ("open", "write", "fsync") else op[0]
        return ("err", "%s:%s" % (what, errno.errorcode.get(e.errno, e.errno)))


# ---------------------------------------------------------------- trees

class Side:
    """One tree the client works on: the native maildir or the mount."""

    def __init__(self, name, root, remount=None):
        self.name, self.root, self.remount = name, root, remount

    def p(self, rel):
        return os.path.join(self.root, rel) if rel else self.root


def snapshot(root):
    """{relpath: entry} of everything below root ("" is root itself);
    entry = dict(type, mode, nlink, mtime, ino, size, data, dtype)."""
    out = {}

    def add(rel, path, dtype):
        st = os.lstat(path)
        e = {"type": stat.S_IFMT(st.st_mode), "mode": st.st_mode,
             "nlink": st.st_nlink, "mtime": st.st_mtime_ns,
             "ino": st.st_ino, "dtype": dtype}
        if stat.S_ISREG(st.st_mode):
            e["size"] = st.st_size
            try:
                with open(path, "rb") as f:
                    e["data"] = f.read()
            except OSError as err:
                e["data"] = "read:" + errno.errorcode.get(err.errno, "?")
        out[rel] = e
        return e

    def walk(rel, path):
        with os.scandir(path) as it:
            ents = list(it)
        for d in ents:
            r = os.path.join(rel, d.name) if rel else d.name
            if d.is_dir(follow_symlinks=False):
                dtype = stat.S_IFDIR
            elif d.is_file(follow_symlinks=False):
                dtype = stat.S_IFREG
            else:
                dtype = None
            e = add(r, d.path, dtype)
            if e["type"] == stat.S_IFDIR:
                walk(r, d.path)

    add("", root, stat.S_IFDIR)
    walk("", root)
    return {flag_order(rel): e for rel, e in out.items()}


def flag_order(rel):
    """ALLOWED["flag-order"] (spec 2: "FLAGS are the maildir letters in
    ASCII order"): names in cur/ and new/ compare with their flag letters
    sorted."""
    if not is_message_path(rel) or ":2," not in rel:
        return rel
    head, _, flags = rel.rpartition(":2,")
    return head + ":2," + "".join(sorted(flags))


def mirror_tree(src_root, dst_root):
    """Makes dst_root (empty) hold the directories and files of
    src_root with their modes and times (the starting point of the
    native side is what a fresh mount shows)."""
    snap = snapshot(src_root)
    for rel in sorted(snap):
        e = snap[rel]
        path = os.path.join(dst_root, rel) if rel else dst_root
        if e["type"] == stat.S_IFDIR:
            os.makedirs(path, exist_ok=True)
        elif e["type"] == stat.S_IFREG:
            with open(path, "wb") as f:
                f.write(e["data"])
    for rel in sorted(snap, reverse=True):
        e = snap[rel]
        path = os.path.join(dst_root, rel) if rel else dst_root
        os.chmod(path, stat.S_IMODE(e["mode"]))
        os.utime(path, ns=(e["mtime"], e["mtime"]))


# ------------------------------------------------------- spec allow-list

def box_of(rel):
    """(folder, area) of a path: area is "cur", "new", "tmp" for what is
    directly in those directories, else None."""
    parts = rel.split("/")
    if len(parts) >= 2 and parts[-2] in ("cur", "new", "tmp"):
        return "/".join(parts[:-2]), parts[-2]
    return None, None


def is_message_path(rel):
    return box_of(rel)[1] in ("cur", "new")


def is_spec_file(rel):
    return os.path.basename(rel) == "dovecot-keywords"


# The differences that the spec maildir-view.md (the
# contract of the mount, section numbers below) allows.  Each is a
# predicate on one difference record d = dict(what, path, native, mount,
# op, step); tests/conformance/README.md lists the same.
ALLOWED = {
    # spec 2: "st_ino is stable for the life of the message (derived from
    # mailbox and uid)": numbers differ from the native ones, so only the
    # pairing is compared (see Harness._check_inodes) ...
    "ino-numbers": lambda d: False,
    # ... and a file becomes a message (a uid in a mailbox) when it is
    # renamed or linked from tmp/ into cur/ or new/, or moved into another
    # mailbox: it gets that message's inode number then.  (A file created
    # in cur/ or new/, by cp or rsync, has its message's number from the
    # start: it keeps it when it is committed at its close or rename.)
    "ino-new-message": lambda d: d["what"] == "ino" and d.get("delivered"),
    # spec 2: messages' "st_nlink is 1": a link() delivery makes the
    # message its own file, the tmp/ name stays a separate file.
    "nlink-messages": lambda d: (d["what"] == "nlink" and
                                 d["mount"] == 1 and d["native"] > 1 and
                                 d["type"] == stat.S_IFREG),
    "ino-linked": lambda d: d["what"] == "ino" and d.get("linked"),
    # ... and so a plain rename of one of the two names onto the other,
    # which natively is a no-op (one file), replaces the target on the
    # mount: the native side is made to do the same (Harness.run)
    "rename-linked": lambda d: False,
    # spec 2: "Files in cur/ and new/ are immutable: opening one for
    # writing fails with EACCES" (the native call is then not made).
    "eacces-messages": lambda d: False,
    # spec 2: st_mtime of a message is its received time, which dbox
    # keeps in whole seconds (mtime compared truncated, Harness._mtime_ok).
    "mtime-seconds": lambda d: False,
    # spec 2: "a folder exposes that mapping as a read-only
    # dovecot-keywords file".
    "dovecot-keywords": lambda d: (d["what"] in ("only-mount", "entry") and
                                   is_spec_file(d["path"])),
    # spec 2: flag letters in ASCII order (see flag_order)
    "flag-order": lambda d: False,
    # POSIX leaves st_size of directories to the filesystem (ext4 grows
    # them by blocks): not compared.
    "dir-size": lambda d: False,
}

# Differences that are bugs (issue 10 items and bugs this harness found);
# a test lists the ids it tolerates so that one bug does not hide others.
TOLERABLE = {
    # tmp/ and the mount root (any directory but cur/ new/) report mtime
    # in whole seconds (checked in Harness._entry)
    "dir-mtime-seconds": lambda d: False,
    # tmp/ and folder directories keep their mtime when entries are
    # created or removed in them (cur/ and new/ are right)
    "dir-mtime-stale": lambda d: (d["what"] == "mtime" and
                                  d["type"] == stat.S_IFDIR and
                                  os.path.basename(d["path"]) not in
                                  ("cur", "new")),
    # cur/ and new/ of a mailbox move their mtime together: a change in
    # one (or a mkdir/rmdir beside them) moves the other's too
    "dir-mtime-shared": lambda d: (d["what"] == "mtime" and
                                   d["type"] == stat.S_IFDIR and
                                   os.path.basename(d["path"]) in
                                   ("cur", "new") and
                                   d["raw"][1] > d["raw"][0]),
    # a delivered message gets the store's default mode, not the mode of
    # its tmp/ file (the native side is then set to the mount's mode so
    # that the difference is reported once, at the delivery)
    # (a message delivered by link shares its native inode with the tmp/
    # name, so there the difference stays as long as both names do)
    "delivered-mode": lambda d: d["what"] == "mode" and (
        (d["op"][0] in ("rename", "link") and d["op"][2] == d["path"] and
         box_of(d["op"][1])[1] == "tmp") or
        (is_message_path(d["path"]) and d.get("nlink_n", 1) > 1) or
        (is_message_path(d["path"]) and d["mount"] == "0o100600")),
}

# What the harness does after excusing a TOLERABLE difference, so that
# the same difference is not reported again at every later step.
RESYNC = {
    "delivered-mode": lambda h, d: d["nlink_n"] == 1 and os.chmod(
        h.native.p(d["path"]), int(d["mount"], 8) & 0o7777),
}


# ---------------------------------------------------------------- harness

class ConformanceError(AssertionError):
    pass


SLACK_NS = 50_000_000   # coarse kernel clocks lag time.time_ns()


class Harness:
    """Runs steps on `native` and `mount` (Sides) and compares."""

    def __init__(self, native, mount, seed=None, tolerate=(), log=None):
        self.native, self.mount = native, mount
        self.seed = seed
        self.tolerate = set(tolerate)
        self.history = []
        self.step_no = 0
        self.equiv = {}          # native time -> set of mount times
        self.n2m, self.m2n = {}, {}
        self.log = log
        self.snap_n = snapshot(native.root)
        self.snap_m = snapshot(mount.root)
        for rel, e in self.snap_n.items():
            if rel in self.snap_m:
                self.equiv.setdefault(e["mtime"], set()).add(
                    self.snap_m[rel]["mtime"])
        self._pair(set(), set())
        self.compare(("start",), None, None, (0, 0), (0, 0))

    # -- running
    def run_unchecked(self, op):
        """Runs op on both sides without comparing (bulk set-up; call
        rebase() after)."""
        self.history.append(op)
        call(self.mount, op)
        call(self.native, op)

    def run(self, op):
        """Runs one step on both sides and compares; returns the result
        of the mount side."""
        self.step_no += 1
        self.history.append(op)
        tm0 = time.time_ns()
        rm = call(self.mount, op)
        tm1 = time.time_ns()
        skipped = (op[0] in WRITING and rm[0] == "err" and
                   rm[1].endswith(":EACCES") and
                   is_message_path(op[1]) and op[1] in self.snap_n and
                   self.snap_n[op[1]]["type"] == stat.S_IFREG)
        tn0 = time.time_ns()
        if rm[0] != "err" and self._linked_pair(op):
            # ALLOWED["rename-linked"]: natively a no-op; the mount's
            # two files: the target is replaced
            call(self.native, ("unlink", op[2]))
        # ALLOWED["eacces-messages"]: the native write is not made
        rn = rm if skipped else call(self.native, op)
        tn1 = time.time_ns()
        self.compare(op, rn, rm, (tn0, tn1), (tm0, tm1))
        return rm

    def _linked_pair(self, op):
        """True for a plain rename between two names of one native file
        (a link() delivery: natively only link() makes them): two files
        on the mount (spec 2, "st_nlink is 1"), also once the message
        went back into tmp/ and both names are there."""
        if op[0] != "rename" or (len(op) > 3 and op[3]) or op[1] == op[2]:
            return False
        a, b = self.snap_n.get(op[1]), self.snap_n.get(op[2])
        return (a is not None and b is not None and
                a["type"] == b["type"] == stat.S_IFREG and
                a["ino"] == b["ino"])

    def steps(self, ops):
        for op in ops:
            self.run(op)

    # -- comparing
    def compare(self, op, rn, rm, win_n, win_m):
        diffs = []
        if rn != rm:
            diffs.append({"what": "result", "path": None, "native": rn,
                          "mount": rm, "type": None})
        old_n = self.snap_n
        self.snap_n = snapshot(self.native.root)
        self.snap_m = snapshot(self.mount.root)
        sn, sm = self.snap_n, self.snap_m
        for rel in sorted(set(sn) | set(sm)):
            en, em = sn.get(rel), sm.get(rel)
            if en is None:
                diffs.append({"what": "only-mount", "path": rel,
                              "native": None, "mount": _brief(em),
                              "type": em["type"]})
                continue
            if em is None:
                diffs.append({"what": "only-native", "path": rel,
                              "native": _brief(en), "mount": None,
                              "type": en["type"]})
                continue
            diffs += self._entry(rel, en, em, win_n, win_m)
        for side, snap in (("native", sn), ("mount", sm)):
            for rel, e in snap.items():
                if rel and e["dtype"] != e["type"]:
                    diffs.append({"what": "d_type(%s)" % side, "path": rel,
                                  "native": e["type"], "mount": e["dtype"],
                                  "type": e["type"]})
        diffs += self._check_inodes(op, old_n)
        bad = []
        for d in diffs:
            d["op"], d["step"] = op, self.step_no
            rule = self._excused(d)
            if rule is None:
                bad.append(d)
        if bad:
            raise ConformanceError(self._report(bad))

    def rebase(self):
        """After calls made outside run() (another process on each side):
        takes the times of both trees as they are now as equivalent."""
        self.snap_n = snapshot(self.native.root)
        self.snap_m = snapshot(self.mount.root)
        for rel, e in self.snap_n.items():
            if rel in self.snap_m:
                self.equiv.setdefault(e["mtime"], set()).add(
                    self.snap_m[rel]["mtime"])
        # inode numbers freed meanwhile may be used again by other files
        self.n2m, self.m2n = {}, {}
        self._pair(set(), set())

    def _excused(self, d):
        for name, pred in ALLOWED.items():
            if pred(d):
                return name
        for name in sorted(self.tolerate):
            if TOLERABLE[name](d):
                if name in RESYNC:
                    RESYNC[name](self, d)
                    self.snap_n = snapshot(self.native.root)
                return name
        return None

    def _entry(self, rel, en, em, win_n, win_m):
        out = []

        def diff(what, a, b):
            out.append({"what": what, "path": rel, "native": a,
                        "mount": b, "type": en["type"],
                        "nlink_n": en["nlink"]})
        if en["type"] != em["type"]:
            diff("type", en["type"], em["type"])
            return out
        if en["mode"] != em["mode"]:
            diff("mode", oct(en["mode"]), oct(em["mode"]))
        if en["nlink"] != em["nlink"]:
            diff("nlink", en["nlink"], em["nlink"])
        if en["type"] == stat.S_IFREG:
            if en["size"] != em["size"]:
                diff("size", en["size"], em["size"])
            if en["data"] != em["data"]:
                diff("data", _short(en["data"]), _short(em["data"]))
        floor = is_message_path(rel) or (
            en["type"] == stat.S_IFDIR and "dir-mtime-seconds" in self.tolerate)
        if not self._mtime_ok(en["mtime"], em["mtime"], win_n, win_m, floor):
            diff("mtime", _ts(en["mtime"]), _ts(em["mtime"]))
            out[-1]["raw"] = (en["mtime"], em["mtime"])
        return out

    def _mtime_ok(self, tn, tm, win_n, win_m, message):
        ok = {tn} | self.equiv.get(tn, set())
        if message:
            # ALLOWED["mtime-seconds"]
            ok |= {t - t % 1_000_000_000 for t in ok}
        if tm in ok:
            return True
        if (win_n[0] - SLACK_NS <= tn <= win_n[1] + SLACK_NS and
                win_m[0] - SLACK_NS - (1_000_000_000 if message else 0)
                <= tm <= win_m[1] + SLACK_NS):
            # set to "now" by this step on both sides
            self.equiv.setdefault(tn, set()).add(tm)
            return True
        return False

    def _pair(self, delivered, linked):
        """Pairs native and mount inodes by path; returns differences
        with what was paired before."""
        out = []
        nlinks = {}
        for rel, e in self.snap_n.items():
            nlinks[e["ino"]] = nlinks.get(e["ino"], 0) + 1
        seen_m = {}
        for rel, en in self.snap_n.items():
            em = self.snap_m.get(rel)
            if em is None or em["type"] != en["type"]:
                continue
            n, m = en["ino"], em["ino"]
            d = {"what": "ino", "path": rel, "type": en["type"],
                 "delivered": rel in delivered,
                 "linked": nlinks[n] > 1 or rel in linked}
            if n in self.n2m and self.n2m[n] != m:
                out.append(dict(d, native="same file as before",
                                mount="inode %d, was %d" % (m, self.n2m[n])))
            elif m in self.m2n and self.m2n[m] != n:
                out.append(dict(d, native="another file",
                                mount="inode %d reused" % m))
            if m in seen_m and seen_m[m] != n and en["type"] == stat.S_IFREG:
                out.append(dict(d, native="two files",
                                mount="one inode %d (also %s)" % (
                                    m, seen_m[m])))
            seen_m.setdefault(m, n)
        # forget what is gone, then pair what is here now
        live_n = {e["ino"] for e in self.snap_n.values()}
        live_m = {e["ino"] for e in self.snap_m.values()}
        self.n2m = {n: m for n, m in self.n2m.items()
                    if n in live_n and nlinks[n] == 1}
        self.m2n = {m: n for m, n in self.m2n.items()
                    if m in live_m and self.n2m.get(n) == m}
        for rel, en in self.snap_n.items():
            em = self.snap_m.get(rel)
            if em is None or em["type"] != en["type"] or \
                    nlinks[en["ino"]] > 1:
                continue
            self.n2m[en["ino"]] = em["ino"]
            self.m2n[em["ino"]] = en["ino"]
        return out

    def _check_inodes(self, op, old_n):
        delivered, linked = set(), set()
        if op[0] in ("rename", "link"):
            src, dst = op[1], op[2]
            if _mailbox_change(src, dst):
                delivered.add(dst)
                if op[0] == "rename" and len(op) > 3 and \
                        op[3] & RENAME_EXCHANGE:
                    delivered.add(src)
            if op[0] == "link":
                linked.add(dst)
        if op[0] == "rename" and len(op) > 1 and \
                old_n.get(op[1], {}).get("type") == stat.S_IFDIR:
            # a folder moved: every message in it is in another mailbox
            pre = op[2] + "/"
            delivered |= {r for r in self.snap_n if r.startswith(pre)}
        return self._pair(delivered, linked)

    def _report(self, bad):
        lines = ["%d difference(s) at step %d: %r" % (
            len(bad), self.step_no, bad[0]["op"])]
        if self.seed is not None:
            lines.append("seed %r (DBOXFS_CONFORMANCE_SEED=%s reproduces)"
                         % (self.seed, self.seed))
        for d in bad[:30]:
            lines.append("  %-12s %-32s native=%r mount=%r" % (
                d["what"], d["path"], d["native"], d["mount"]))
        log = os.environ.get("DBOXFS_CONFORMANCE_LOG")
        if log:
            with open(log, "w") as f:
                f.write("".join(repr(op) + "\n" for op in self.history))
            lines.append("all steps written to " + log)
        lines.append("last steps:")
        for op in self.history[-25:]:
            lines.append("  " + _op_text(op))
        return "\n".join(lines)


def _mailbox_change(src, dst):
    """True if a rename src -> dst makes a message of another mailbox
    (tmp/ -> cur/new, or into another folder)."""
    fs, as_ = box_of(src)
    fd, ad = box_of(dst)
    if ad not in ("cur", "new"):
        return False
    return as_ not in ("cur", "new") or fs != fd


def _brief(e):
    return {k: (oct(v) if k == "mode" else v) for k, v in e.items()
            if k in ("type", "mode", "size")}


def _short(data):
    if isinstance(data, bytes) and len(data) > 60:
        return data[:40] + b"...(%d bytes)" % len(data)
    return data


def _ts(ns):
    return "%d.%09d" % divmod(ns, 1_000_000_000)


def _op_text(op):
    return "(" + ", ".join(repr(a) if not isinstance(a, bytes) or len(a) < 40
                           else "b'...%d bytes'" % len(a)
                           for a in op) + ")"
