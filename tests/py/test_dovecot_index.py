"""libdbox's reader of Dovecot's own index files (dboxfs-dovecot-index)
against the real Dovecot: `doveadm dump` (Dovecot's index code reading the
same files: dovecot.index with its logs replayed), `doveadm fetch` and
`doveadm mailbox status`, and against what the test itself stored.

Stores are written by Dovecot (tests/fixtures/dovecot_store.py) and then
changed with doveadm: flags and keywords, saves, copies and moves, expunges
(mdbox: expunged-but-not-purged, then purged), forced dovecot.index writes,
forced log rotations, a force-resync, mailbox creation with a non-ASCII
name.  After every step, for every mailbox of both formats:
  * the C tool's reading of each index (and of the mdbox map) equals
    doveadm dump's: uid validity, next uid, index id, the keyword list,
    every record's uid, flags, keywords, mdbox map_uid and save date, the
    map's file_id, offset, size and refcount, and the log position read to;
  * the C store view equals `doveadm -f json fetch 'uid flags mailbox guid'`
    (\\Recent ignored) and `doveadm mailbox status`; mdbox GUIDs and
    refcounts equal doveadm's, every refcount is the number of mailbox
    records pointing at it, and the (file_id, offset, size) of every
    message points at a dbox entry whose metadata holds that GUID (sdbox:
    u.<uid> does);
  * a reader that only follows the logs incrementally (--follow) has the
    same state as a fresh load.
Plus the corner cases of dovecot-index.md section 6 on real files, and a
fuzz of real files (tests/data/dovecot-index) against the verdicts
recorded in fuzz-verdicts.txt there.

The build directory is $DBOXFS_BUILD (default: build/ of this tree)."""

import hashlib
import json
import os
import random
import re
import select
import shutil
import struct
import subprocess
import tempfile

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("DBOXFS_BUILD", os.path.join(TOP, "build"))
TOOL = os.path.join(BUILD, "tools", "dovi", "dboxfs-dovecot-index")
DATA = os.path.join(TOP, "tests", "data", "dovecot-index")
VERDICTS = os.path.join(DATA, "fuzz-verdicts.txt")
FORMATS = ("sdbox", "mdbox")
SYSTEM_FLAGS = [(0x01, "\\Answered"), (0x02, "\\Flagged"),
                (0x04, "\\Deleted"), (0x08, "\\Seen"), (0x10, "\\Draft")]


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.access(TOOL, os.X_OK):
        pytest.fail("%s is not built (meson setup/ninja in $DBOXFS_BUILD)"
                    % TOOL)


# ---------------------------------------------------------------- runners

def run_tool(*args, input=None):
    p = subprocess.run([TOOL] + [str(a) for a in args], input=input,
                       capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def c_index(path, map_path=None):
    """(exit status, JSON or None) of the C tool on one index."""
    args = [path] + (["--map", map_path] if map_path else [])
    rc, out, err = run_tool(*args)
    return rc, (json.loads(out) if rc == 0 else err)


def c_ok(path, map_path=None):
    """The C tool's JSON of an index it must be able to read."""
    rc, j = c_index(path, map_path)
    assert rc == 0, "%s: C exit %d: %s" % (path, rc, j)
    return j


def comparable(j):
    """The fields of the C JSON that fix a reading (fuzz verdicts)."""
    info = j["info"]
    return {
        "uid_validity": j["uid_validity"], "next_uid": j["next_uid"],
        "indexid": j["indexid"], "keywords": j["keywords"],
        "messages": j["messages"], "map": j.get("map"),
        "info": {k: info.get(k) for k in
                 ("index_file", "reset", "replayed_from", "replayed_to")},
        "index_ignored": "index_ignored" in info,
        "warning": "warning" in info,
        "error_count": j.get("error_count", len(j["errors"])),
    }


# ------------------------------------------------ Dovecot's own reading

DUMP_HEADER = {"index id": "indexid", "uid validity": "uid_validity",
               "next uid": "next_uid", "messages count": "count",
               "log file seq": "log_seq", "log file head offset": "log_head"}
DUMP_FIELD = re.compile(r"^\s*: (\w+)\s*= (\d+)")


def doveadm_dump(path):
    """`doveadm dump DIR`: Dovecot opens the index read-only (dovecot.index
    and the logs replayed onto it, or the logs alone) and prints its
    header, keywords and records.  Returns them as a dict; records carry
    uid, flags, keyword names and the mdbox extensions (map_uid,
    save_date; in the map file_id, offset, size, refcount)."""
    p = doveadm_dump_run(path)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    d = {"keywords": [], "records": []}
    section, rec = None, None
    for line in p.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.startswith("-- "):
            section = line.split()[1]
            continue
        if section == "INDEX:":
            key, _, value = line.partition(" = ")
            key = key.rstrip(" .")
            if key in DUMP_HEADER:
                d[DUMP_HEADER[key]] = int(value.split()[0])
        elif section == "Keywords" and " = " in line:
            d["keywords"].append(line.split(" = ", 1)[1])
        elif line.startswith("RECORD: "):
            m = re.match(r"RECORD: seq=\d+, uid=(\d+), flags=0x([0-9a-f]+)",
                         line)
            rec = {"uid": int(m.group(1)), "flags": int(m.group(2), 16),
                   "keywords": []}
            d["records"].append(rec)
        elif rec is not None and line.startswith(" - ext "):
            dump_ext(d, rec, line)
        elif rec is not None and DUMP_FIELD.match(line):
            k, v = DUMP_FIELD.match(line).groups()
            rec[k] = int(v)
    return d


def doveadm_dump_run(path):
    return subprocess.run(["doveadm", "dump", path], capture_output=True,
                          timeout=120, cwd="/")


def dump_ext(d, rec, line):
    """One extension line of a record: ' - ext N NAME : VALUE (HEX)'."""
    name = line.split()[3]
    raw = bytes.fromhex(line[line.rindex("(") + 1:line.rindex(")")])
    if name == "keywords":
        # dump prints the bitmap at the size the extension had when it
        # was registered, not grown: only the first len(raw) * 8 count
        rec["keyword_bits"] = len(raw) * 8
        rec["keywords"] = [d["keywords"][i] for i in range(len(raw) * 8)
                           if raw[i // 8] >> (i % 8) & 1]
    elif name == "ref":
        rec["refcount"] = struct.unpack("<H", raw)[0]
    elif name == "guid":
        rec["guid"] = raw.hex()


def assert_same_as_dovecot(path, map_path=None):
    """The C tool's reading of one index == Dovecot's (doveadm dump);
    returns the C JSON."""
    c = c_ok(path, map_path)
    dump = doveadm_dump(path)
    where = path
    for key in ("uid_validity", "next_uid", "indexid", "keywords"):
        assert c[key] == dump[key], "%s: %s: C %r, Dovecot %r" % (
            where, key, c[key], dump[key])
    assert c["info"]["replayed_to"] == [dump["log_seq"], dump["log_head"]], \
        where
    assert c["info"]["index_file"] == any(
        os.path.exists(os.path.join(path, n))
        for n in ("dovecot.index", "dovecot.map.index")), where
    assert c["errors"] == [] and "warning" not in c["info"], (where, c)
    assert len(c["messages"]) == dump["count"] == len(dump["records"])
    for got, want in zip(c["messages"], dump["records"]):
        got = dict(got)
        bits = want.get("keyword_bits", 0)
        got["keywords"] = [k for k in got["keywords"]
                           if c["keywords"].index(k) < bits]
        for key in ("uid", "flags", "keywords", "map_uid", "save_date"):
            assert got.get(key) == want.get(key), "%s uid %d: %s: C %r, " \
                "Dovecot %r" % (where, want["uid"], key, got.get(key),
                                want.get(key))
    if map_path:
        check_map_against_dovecot(c["map"], map_path)
    return c


def check_map_against_dovecot(cmap, map_path):
    dump = doveadm_dump(map_path)
    assert cmap["uid_validity"] == dump["uid_validity"]
    assert cmap["next_uid"] == dump["next_uid"]
    want = [{k: r.get(k) for k in ("file_id", "offset", "size", "refcount")}
            for r in dump["records"]]
    for r, uid in zip(want, (r["uid"] for r in dump["records"])):
        r["map_uid"] = uid
    assert cmap["records"] == want, map_path


def mailbox_dirs(root):
    """{storage name: index directory} of every mailbox of a store."""
    base = os.path.join(root, "mailboxes")
    found = {}
    for d, dirs, _ in os.walk(base):
        if "dbox-Mails" in dirs:
            found[os.path.relpath(d, base)] = os.path.join(d, "dbox-Mails")
        dirs[:] = [x for x in dirs if x != "dbox-Mails"]
    return found


def flag_names(m):
    return [n for bit, n in SYSTEM_FLAGS if m["flags"] & bit] + \
        m["keywords"]


def metadata_guid(entry):
    """The G line of a dbox message entry's metadata block."""
    pos = entry.rfind(b"\n\x01\x03\n")
    assert pos >= 0, "no dbox metadata block"
    for line in entry[pos + 4:].split(b"\n"):
        if line.startswith(b"G"):
            return line[1:].decode()
    raise AssertionError("no G line in the metadata")


# ---------------------------------------------------------------- checks

def check_indexes(stores, fmt):
    """Every mailbox index (with the map for mdbox): C == Dovecot.  mdbox:
    every map record's refcount is the number of mailbox records that
    point at it (0: expunged, not yet purged)."""
    root = stores.root(fmt)
    map_path = os.path.join(root, "storage") if fmt == "mdbox" else None
    results = {}
    for name, d in sorted(mailbox_dirs(root).items()):
        results[name] = assert_same_as_dovecot(d, map_path)
    if map_path:
        assert_same_as_dovecot(map_path)
        refs = {}
        for j in results.values():
            for m in j["messages"]:
                refs[m["map_uid"]] = refs.get(m["map_uid"], 0) + 1
        records = next(iter(results.values()))["map"]["records"]
        assert {r["map_uid"]: r["refcount"] for r in records} == \
            {r["map_uid"]: refs.get(r["map_uid"], 0) for r in records}
        assert set(refs) <= {r["map_uid"] for r in records}
    return results


def c_store(root, fmt):
    rc, out, err = run_tool("--store", root, "--type", fmt)
    assert rc == 0, err
    return json.loads(out)


def check_against_doveadm(stores, fmt):
    """The C store view == doveadm fetch, for every message."""
    root = stores.root(fmt)
    view = c_store(root, fmt)
    assert view["errors"] == []
    fields = "uid flags mailbox guid" + (" refcount" if fmt == "mdbox"
                                         else "")
    want = {}
    for m in stores.fetch(fmt, fields):
        flags = [f for f in m["flags"].split() if f != "\\Recent"]
        want[(m["mailbox"], int(m["uid"]))] = (flags, m["guid"],
                                               m.get("refcount"))
    got = {}
    for box in view["mailboxes"]:
        assert box["hidden"] == 0, box["name"]
        for m in box["messages"]:
            got[(box["name"], m["uid"])] = m
    assert sorted(got) == sorted(want)
    check_mailbox_status(stores, fmt, view)
    if fmt == "mdbox":
        check_map_header(root, view["map"], got.values())
    for key, m in got.items():
        flags, guid, refcount = want[key]
        assert flag_names(m) == flags, key
        if fmt == "mdbox":
            assert m["refcount"] == int(refcount), key
            check_mdbox_entry(root, m, guid, key)
        else:
            with open(m["file"], "rb") as f:
                assert metadata_guid(f.read()) == guid, key
    return view


def mailbox_status(stores, fmt):
    """{mailbox: (messages, uidnext, uidvalidity, guid)} from doveadm."""
    p = stores.doveadm(fmt, "-f", "tab", "mailbox", "status",
                       "messages uidnext uidvalidity guid", "*")
    lines = p.stdout.decode("utf-8").splitlines()
    head = lines[0].split("\t")
    status = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split("\t")))
        status[row["mailbox"]] = (int(row["messages"]), int(row["uidnext"]),
                                  int(row["uidvalidity"]), row["guid"])
    return status


def check_mailbox_status(stores, fmt, view):
    """Every mailbox of the C store view as `doveadm mailbox status`."""
    got = {b["name"]: (len(b["messages"]), b["next_uid"], b["uid_validity"],
                       b["guid"]) for b in view["mailboxes"]}
    assert got == mailbox_status(stores, fmt)


def check_map_header(root, map_info, messages):
    """highest_file_id: no m.N file and no message beyond it."""
    files = [int(n[2:]) for n in os.listdir(os.path.join(root, "storage"))
             if n.startswith("m.") and n[2:].isdigit()]
    highest = map_info["highest_file_id"]
    assert files and max(files) <= highest
    assert all(m["file_id"] <= highest for m in messages)


def check_mdbox_entry(root, m, guid, key):
    """(file_id, offset, size) is the message's dbox entry."""
    path = os.path.join(root, "storage", "m.%d" % m["file_id"])
    with open(path, "rb") as f:
        f.seek(m["offset"])
        entry = f.read(m["size"])
    assert len(entry) == m["size"] and entry[:3] == b"\x01\x02N", key
    assert metadata_guid(entry) == guid, key
    # the guid extension holds 128-bit GUIDs; others are hashed into it
    if len(guid) == 32 and all(c in "0123456789abcdef" for c in guid):
        assert m["guid"] == guid, key


def check_all(stores):
    for fmt in FORMATS:
        check_indexes(stores, fmt)
        check_against_doveadm(stores, fmt)


# ---------------------------------------------------------------- tests

# What tests/fixtures/dovecot_store.py stores: {mailbox: {uid: flags}}
PRISTINE = {
    "INBOX": {1: ["\\Seen"], 3: ["\\Seen"], 5: []},
    "Foo": {1: ["\\Seen"]},
    "Lists/linux": {1: ["\\Answered", "\\Flagged", "$Label1"]},
    "Entwürfe": {1: ["\\Draft", "work"]},
    "Trash": {},
    "Imported/INBOX": {1: ["\\Seen"]},
}


def test_pristine_stores(dovecot_stores):
    """dovecot_store.py's stores: both checks; the uids, flags and
    keywords the fixture stored; the imported message's GUID (its maildir
    base name) and received date (its mtime); and the mailbox names
    (modified UTF-7 on disk) decoded to what Dovecot shows."""
    check_all(dovecot_stores)
    for fmt in FORMATS:
        view = c_store(dovecot_stores.root(fmt), fmt)
        names = {b["storage_name"]: b["name"] for b in view["mailboxes"]}
        assert names["Entw&APw-rfe"] == "Entwürfe"
        assert set(names) == {"INBOX", "Foo", "Lists/linux", "Trash",
                              "Entw&APw-rfe", "Imported/INBOX"}
        assert {b["name"]: {m["uid"]: flag_names(m) for m in b["messages"]}
                for b in view["mailboxes"]} == PRISTINE
        assert [(m["guid"], m["date.received.unixtime"]) for m in
                dovecot_stores.fetch(fmt, "guid date.received.unixtime",
                                     "mailbox", "Imported/INBOX", "all")] == \
            [("1600000000.M8P1.fixture", "1600000000")]
        status = {}
        with open(os.path.join(dovecot_stores.out,
                               "%s.mailboxes.txt" % fmt)) as f:
            for line in f.read().splitlines()[1:]:
                box, msgs, uidnext, uidvalidity, guid = line.split("\t")
                status[box] = (int(msgs), int(uidnext), int(uidvalidity),
                               guid)
        for b in view["mailboxes"]:
            assert status[b["name"]] == (len(b["messages"]), b["next_uid"],
                                         b["uid_validity"], b["guid"])


def save(stores, fmt, box, subject):
    msg = ("Subject: %s\nMessage-ID: <%s@dovi.test>\n\nbody of %s\n" %
           (subject, subject.replace(" ", "."), subject)).encode()
    stores.doveadm(fmt, "save", "-m", box, input=msg)


FORCE_WRITE = ("-o", "mail_index_rewrite_max_log_bytes=1")
# With a tiny rotate size Dovecot rotates a non-empty log when it opens
# it and again after writing the change: twice per doveadm run.  On an
# empty (just rotated) log only the second happens: one rotation, and the
# new .log continues the old one.
ROTATE = ("-o", "mail_index_log_rotate_max_size=1")
FORCE_ROTATE = ROTATE + FORCE_WRITE

# Each step changes both stores the same way (purge: mdbox only).
STEPS = [
    ("keywords and flags",
     [("flags", "add", "\\Flagged $Label2 todo", "mailbox", "INBOX", "all"),
      ("flags", "add", "FOO", "mailbox", "INBOX", "uid", "3"),
      ("flags", "add", "foo", "mailbox", "INBOX", "uid", "5"),
      ("flags", "remove", "\\Seen", "mailbox", "INBOX", "uid", "1")]),
    ("saves", [("save", "INBOX", "new one"), ("save", "INBOX", "new two"),
               ("save", "Foo", "foo three")]),
    ("flag replace (keyword reset)",
     [("flags", "replace", "\\Answered work", "mailbox", "INBOX", "uid",
       "6")]),
    ("copy and move",
     [("copy", "Foo", "mailbox", "INBOX", "uid", "1:3"),
      ("move", "Lists/linux", "mailbox", "Foo", "uid", "2")]),
    ("expunge (mdbox: refcount 0, not purged)",
     [("expunge", "mailbox", "INBOX", "uid", "3"),
      ("expunge", "mailbox", "Foo", "all")]),
    ("forced dovecot.index write",
     [FORCE_WRITE + ("flags", "add", "\\Draft", "mailbox", "INBOX",
                     "uid", "1")]),
    ("more changes in the log only",
     [("flags", "remove", "todo", "mailbox", "INBOX", "all"),
      ("save", "INBOX", "after write")]),
    ("forced log rotation",
     [ROTATE + ("flags", "add", "\\Seen", "mailbox", "INBOX", "all"),
      FORCE_ROTATE + ("flags", "add", "rotated", "mailbox", "Lists/linux",
                      "all")]),
    ("single log rotation",
     [ROTATE + ("flags", "add", "single", "mailbox", "INBOX", "all")]),
    ("changes after the rotation",
     [("save", "INBOX", "after rotation"),
      ("flags", "remove", "\\Seen", "mailbox", "INBOX", "uid", "5")]),
    ("many keywords (header and bitmap grow)",
     [("flags", "add", " ".join("kw%02d" % i for i in range(40)),
       "mailbox", "INBOX", "uid", "1"),
      ("flags", "remove", "kw07 kw33", "mailbox", "INBOX", "uid", "1")]),
    ("purge (mdbox)", [("purge",)]),
    ("new mailbox with a non-ASCII name",
     [("mailbox", "create", "Neu/Ünter"),
      ("save", "Neu/Ünter", "unter one"),
      ("copy", "Neu/Ünter", "mailbox", "INBOX", "uid", "1")]),
    ("force-resync (reset log)",
     [("force-resync", "INBOX"), ("flags", "add", "after-resync",
                                   "mailbox", "INBOX", "all")]),
    ("rotation of the map (mdbox) and expunges",
     [FORCE_ROTATE + ("expunge", "mailbox", "Lists/linux", "uid", "1"),
      FORCE_ROTATE + ("purge",)]),
]


def apply_step(stores, fmt, ops):
    for op in ops:
        if op[0] == "save":
            save(stores, fmt, op[1], op[2])
        elif op[-1] == "purge" and len(op) <= 5:
            if fmt == "mdbox":
                stores.doveadm(fmt, *op)
        else:
            stores.doveadm(fmt, *op)


class Follower:
    """The C tool in --follow mode: one refresh per line written, one JSON
    line back (a request/response protocol, no timing involved)."""

    def __init__(self, *args):
        self.p = subprocess.Popen([TOOL] + list(args) + ["--follow"],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.first = self.read()

    def read(self):
        # bounded wait so that a hung tool fails the test instead of
        # hanging it; one line per request, so nothing is buffered ahead
        ready, _, _ = select.select([self.p.stdout], [], [], 120)
        assert ready, "the follower did not answer within 120 s"
        line = self.p.stdout.readline()
        assert line, "the follower died"
        return json.loads(line)

    def refresh(self):
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        return self.read()

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(timeout=30) == 0


def strip_changed(view):
    v = dict(view)
    v.pop("changed", None)
    return v


def same_state(followed, fresh):
    keys = ("uid_validity", "next_uid", "indexid", "keywords", "messages",
            "map")
    return {k: followed.get(k) for k in keys} == \
        {k: fresh.get(k) for k in keys}


def changed_boxes(before, after):
    """Storage names of the mailboxes whose view differs (or are new)."""
    def boxes(view):
        return {b["storage_name"]: {k: v for k, v in b.items()
                                    if k != "guid"}
                for b in view["mailboxes"]}
    old, new = boxes(before), boxes(after)
    return sorted(n for n in new if old.get(n) != new[n])


def check_follow_path(title, follower, now):
    """A rotation is followed into the new .log without reloading (the
    replay start stays where the first load began); a force-resync (reset
    log) makes the follower reload from the reset log."""
    before = follower.first["info"]
    if title == "single log rotation":
        assert now["info"]["replayed_from"] == before["replayed_from"]
        assert now["info"]["replayed_to"][0] == before["replayed_to"][0] + 1
    if title == "force-resync (reset log)":
        assert now["info"]["reset"]
        assert now["info"]["replayed_from"][0] > before["replayed_to"][0]
    follower.first = now


def test_operations(dovecot_stores_factory):
    """Step by step changes by Dovecot; after each: C == doveadm dump ==
    doveadm fetch and mailbox status, and incremental following == a fresh load, reporting exactly
    the mailboxes that changed."""
    stores = dovecot_stores_factory()
    followers = {}
    for fmt in FORMATS:
        root = stores.root(fmt)
        inbox = os.path.join(root, "mailboxes", "INBOX", "dbox-Mails")
        map_args = ["--map", os.path.join(root, "storage")] \
            if fmt == "mdbox" else []
        store_f = Follower("--store", root, "--type", fmt)
        followers[fmt] = [store_f, Follower(inbox, *map_args), inbox,
                          map_args, strip_changed(store_f.first)]
    try:
        for title, ops in STEPS:
            for fmt in FORMATS:
                apply_step(stores, fmt, ops)
            for fmt in FORMATS:
                store_f, index_f, inbox, map_args, before = followers[fmt]
                followed = store_f.refresh()
                idx_followed = index_f.refresh()
                check_indexes(stores, fmt)
                view = check_against_doveadm(stores, fmt)
                assert strip_changed(followed) == view, \
                    "%s after '%s': followed store != fresh" % (fmt, title)
                assert followed["changed"] == changed_boxes(before, view), \
                    "%s after '%s': changed" % (fmt, title)
                followers[fmt][4] = view
                fresh = c_index(inbox, *map_args[1:])[1]
                assert same_state(idx_followed, fresh), \
                    "%s after '%s': followed INBOX != fresh" % (fmt, title)
                check_follow_path(title, index_f, idx_followed)
    finally:
        for fmt in FORMATS:
            followers[fmt][0].close()
            followers[fmt][1].close()


def test_follow_reports_exact_changes(dovecot_stores_factory):
    """--follow: nothing changed -> no mailbox reported; a change in one
    mailbox -> only that one (sdbox: mailboxes share nothing)."""
    stores = dovecot_stores_factory()
    root = stores.root("sdbox")
    f = Follower("--store", root, "--type", "sdbox")
    try:
        assert f.refresh()["changed"] == []
        stores.doveadm("sdbox", "flags", "add", "\\Draft", "mailbox",
                       "Lists/linux", "all")
        assert f.refresh()["changed"] == ["Lists/linux"]
        assert f.refresh()["changed"] == []
        stores.doveadm("sdbox", "mailbox", "create", "Brand new")
        view = f.refresh()
        assert view["changed"] == ["Brand new"]
        assert "Brand new" in [b["name"] for b in view["mailboxes"]]
    finally:
        f.close()


# ------------------------------------------------- section 6 corner cases

class WorkedStores:
    """Stores after STEPS[:10] (dovecot.index written, two rotations, a
    .log.2 that doesn't reach back to a reset log, dovecot.index.backup),
    plus a snapshot of each INBOX index taken after STEPS[:7] (a
    dovecot.index and a single reset .log) with what Dovecot read from it
    then."""

    def __init__(self, stores, snapshots, snapshot_state):
        self.stores = stores
        self.snapshots = snapshots
        self.snapshot_state = snapshot_state


@pytest.fixture(scope="module")
def worked_stores():
    from conftest import make_dovecot_stores, skip_without_dovecot
    skip_without_dovecot()
    stores = make_dovecot_stores()
    snapshots, state = {}, {}
    for i, (title, ops) in enumerate(STEPS[:10]):
        for fmt in FORMATS:
            apply_step(stores, fmt, ops)
        if i == 6:
            for fmt in FORMATS:
                snapshots[fmt] = copy_index_dir(
                    inbox_dir(stores, fmt),
                    os.path.join(stores.top, "snapshot-" + fmt))
                state[fmt] = dovecot_state(snapshots[fmt])
    yield WorkedStores(stores, snapshots, state)
    stores.remove()


def copy_index_dir(src, dst):
    os.makedirs(dst)
    for n in os.listdir(src):
        if n.startswith("dovecot."):
            shutil.copy(os.path.join(src, n), dst)
    return dst


@pytest.fixture
def scratch():
    d = tempfile.mkdtemp(prefix="dovi-scratch.")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def inbox_dir(stores, fmt):
    return os.path.join(stores.root(fmt), "mailboxes", "INBOX",
                        "dbox-Mails")


STATE_KEYS = ("uid", "flags", "keywords", "map_uid", "save_date")


def dovecot_state(path):
    """(messages, keywords) of an index directory as Dovecot reads it."""
    dump = doveadm_dump(path)
    assert all(r.get("keyword_bits", 0) >= len(dump["keywords"])
               for r in dump["records"]), "dump cut the keywords short"
    return ([{k: r[k] for k in STATE_KEYS if k in r}
             for r in dump["records"]], dump["keywords"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_dovecot_index(worked_stores, scratch, fmt):
    """6.2: no dovecot.index, complete chain (a reset .log): the log alone
    gives the state Dovecot read from the whole snapshot, and the state
    Dovecot reads from the log alone.  6.1: no dovecot.index and the chain
    doesn't reach a reset log any more (after rotations): the reader
    refuses, as Dovecot can't compute the state from the index files
    either."""
    snap = worked_stores.snapshots[fmt]
    assert os.path.exists(os.path.join(snap, "dovecot.index"))
    d = copy_index_dir(snap, os.path.join(scratch, "complete"))
    os.unlink(os.path.join(d, "dovecot.index"))
    j = assert_same_as_dovecot(d)
    assert j["info"]["reset"]
    assert (j["messages"], j["keywords"]) == \
        worked_stores.snapshot_state[fmt]

    d = copy_index_dir(inbox_dir(worked_stores.stores, fmt),
                       os.path.join(scratch, "lost"))
    os.unlink(os.path.join(d, "dovecot.index"))
    rc, err = c_index(d)
    assert rc == 1 and "log file seq" in err and "missing" in err, err


@pytest.mark.parametrize("fmt", FORMATS)
def test_stale_index(worked_stores, scratch, fmt):
    """6.3: an older dovecot.index (Dovecot's own .backup) replays to the
    current state when the log chain covers it."""
    src = inbox_dir(worked_stores.stores, fmt)
    want = dovecot_state(src)
    d = copy_index_dir(src, os.path.join(scratch, "x"))
    backup = os.path.join(d, "dovecot.index.backup")
    if not os.path.exists(backup):
        pytest.skip("Dovecot wrote no dovecot.index.backup here")
    os.replace(backup, os.path.join(d, "dovecot.index"))
    j = assert_same_as_dovecot(d)
    assert j["info"]["index_file"]
    assert j["info"]["replayed_from"][0] < j["info"]["replayed_to"][0]
    assert (j["messages"], j["keywords"]) == want


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_dovecot_index(worked_stores, scratch, fmt):
    """6.5: truncated file, broken extension name, wrong version, wrong
    endianness.  Records cut off: the reader keeps the header and the
    records there are, as Dovecot's fsck does, and reports the complaint
    Dovecot makes (messages_count too large); whatever it shows is as in
    the undamaged index.  Header damaged: Dovecot doesn't use the file
    either, and as the logs no longer reach back to a reset log (the
    rotations), the reader refuses, as without a dovecot.index."""
    src = inbox_dir(worked_stores.stores, fmt)
    good = {m["uid"]: m for m in c_ok(src)["messages"]}
    with open(os.path.join(src, "dovecot.index"), "rb") as f:
        orig = f.read()
    header_size = struct.unpack_from("<I", orig, 4)[0]
    damage = {
        "truncated": orig[:-3],
        "half": orig[:len(orig) // 2],
        "ext name": orig[:136] + b"/" + orig[137:],
        "major": b"\x08" + orig[1:],
        "big-endian": orig[:12] + b"\x00" + orig[13:],
        "no records": orig[:header_size],
    }
    for what, data in damage.items():
        d = copy_index_dir(src, os.path.join(scratch, what))
        with open(os.path.join(d, "dovecot.index"), "wb") as f:
            f.write(data)
        rc, j = c_index(d)
        dovecot = doveadm_dump_run(d)
        complaint = dovecot.stderr.decode(errors="replace")
        if what in ("truncated", "no records"):
            assert rc == 0, (what, j)
            assert len(j["errors"]) == 1, (what, j["errors"])
            assert "messages_count too large" in j["errors"][0], what
            assert ": %s\n" % j["errors"][0] in complaint, (what, complaint)
            assert j["info"]["index_file"], what
            assert j["messages"], what
            for m in j["messages"]:
                assert m == good[m["uid"]], (what, m)
        else:
            assert rc == 1 and "log file seq" in j, (what, j)
            assert "Corrupted index file" in complaint or \
                "\nmessages count ........... = 0\n" in \
                dovecot.stdout.decode(errors="replace"), (what, complaint)


@pytest.mark.parametrize("fmt", FORMATS)
def test_partial_transaction(worked_stores, scratch, fmt):
    """3.5: a transaction still being written is not applied; complete,
    it is."""
    src = inbox_dir(worked_stores.stores, fmt)
    want = dovecot_state(src)
    d = copy_index_dir(src, os.path.join(scratch, "x"))
    log = os.path.join(d, "dovecot.index.log")
    # a flag update of uid 1 in a 2-record transaction, cut in the middle
    flag = struct.pack("<IIBBBB", 1, 0xffffffff, 0x10, 0, 0, 0)
    size = lambda n: bytes([0x80 | (n // 4 >> 21 & 0x7f),
                            0x80 | (n // 4 >> 14 & 0x7f),
                            0x80 | (n // 4 >> 7 & 0x7f),
                            0x80 | (n // 4 & 0x7f)])
    rec = size(20) + struct.pack("<I", 0x4) + flag
    boundary = size(12) + struct.pack("<II", 0x10080000, 12 + 2 * 20)
    with open(log, "ab") as f:
        f.write(boundary + rec)
    j = assert_same_as_dovecot(d)
    assert (j["messages"], j["keywords"]) == want
    with open(log, "ab") as f:
        f.write(rec)
    j = assert_same_as_dovecot(d)
    assert all(m["flags"] & 0x10 for m in j["messages"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_lost_history_and_indexid(worked_stores, scratch, fmt):
    """6.1 and 6.4: dovecot.index pointing into a .log.2 that is gone, and
    an indexid mismatch: the reader refuses."""
    src = inbox_dir(worked_stores.stores, fmt)
    d = copy_index_dir(src, os.path.join(scratch, "lost"))
    with open(os.path.join(d, "dovecot.index"), "r+b") as f:
        hdr = bytearray(f.read(120))
        seq = struct.unpack_from("<I", hdr, 60)[0]
        struct.pack_into("<II", hdr, 64, 44, 44)    # inside seq - 1 ...
        struct.pack_into("<I", hdr, 60, seq - 1)
        f.seek(0)
        f.write(hdr)
    for n in ("dovecot.index.log.2",):
        if os.path.exists(os.path.join(d, n)):
            os.unlink(os.path.join(d, n))
    rc, err = c_index(d)
    assert rc == 1 and "missing" in err, err
    d = copy_index_dir(src, os.path.join(scratch, "indexid"))
    with open(os.path.join(d, "dovecot.index"), "r+b") as f:
        f.seek(16)
        f.write(b"\x01\x02\x03\x04")
    rc, err = c_index(d)
    assert rc == 1, err


# ------------------------------------------------------------------ fuzz

FUZZ_SEED = 20240601


def mutate(rng, data):
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 and data:
        return data[:rng.randrange(len(data))]
    for _ in range(rng.randint(1, 3)):
        if not data:
            break
        o = rng.randrange(len(data))
        if kind == 3:
            data[o] = rng.randrange(256)
        else:
            data[o] ^= 1 << rng.randrange(8)
    return data


def fuzz_variants(work, rounds):
    """Writes variant i into work (a copy of one of the real index
    directories with one file truncated or bit-flipped) and yields
    (i, the changed file); the same variants on every run."""
    rng = random.Random(FUZZ_SEED)
    cases = [os.path.join(DATA, n) for n in sorted(os.listdir(DATA))
             if os.path.isdir(os.path.join(DATA, n))]
    for i in range(rounds):
        src = rng.choice(cases)
        shutil.rmtree(work, ignore_errors=True)
        copy_index_dir(src, work)
        files = sorted(n for n in os.listdir(work) if n.startswith("dovecot."))
        victim = os.path.join(work, rng.choice(files))
        with open(victim, "rb") as f:
            data = f.read()
        with open(victim, "wb") as f:
            f.write(mutate(rng, data))
        yield i, victim


def verdict(status, j):
    """"ok HASH" (HASH: of the reading's comparable fields) or
    "unusable"."""
    if status != "ok":
        return status
    text = json.dumps(comparable(j), sort_keys=True).encode()
    return "ok " + hashlib.sha1(text).hexdigest()[:16]


def data_digest():
    """Of the real index files the variants are made from."""
    h = hashlib.sha1()
    for d in sorted(os.listdir(DATA)):
        if not os.path.isdir(os.path.join(DATA, d)):
            continue
        for n in sorted(os.listdir(os.path.join(DATA, d))):
            if n.startswith("dovecot."):
                h.update(("%s/%s\0" % (d, n)).encode())
                with open(os.path.join(DATA, d, n), "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def read_verdicts():
    """(data digest, {variant: verdict}) of fuzz-verdicts.txt."""
    digest, verdicts = None, {}
    with open(VERDICTS) as f:
        for line in f:
            if line.startswith("# data "):
                digest = line.split()[2]
            elif line.strip() and not line.startswith("#"):
                i, v = line.rstrip("\n").split(" ", 1)
                verdicts[int(i)] = v
    return digest, verdicts


def test_fuzz_against_recorded_verdicts(scratch):
    """Real index files (tests/data/dovecot-index), truncated and bit-
    flipped: the C reader gives, for every variant, the verdict recorded
    in fuzz-verdicts.txt (the same reading, or a refusal; recorded from
    the spec's reference reader with record-fuzz-verdicts.py) and never
    exits with anything but 0 or 1.  DOVI_PYFUZZ=N runs N variants; those
    past the recorded ones are checked for their exit status only."""
    digest, recorded = read_verdicts()
    assert digest == data_digest(), \
        "tests/data/dovecot-index changed: record fuzz-verdicts.txt again"
    rounds = int(os.environ.get("DOVI_PYFUZZ", str(len(recorded))))
    stats = {}
    for i, victim in fuzz_variants(os.path.join(scratch, "w"), rounds):
        rc, j = c_index(os.path.dirname(victim))
        assert rc in (0, 1), "variant %d (%s): exit %d: %s" % (
            i, victim, rc, j)
        want = recorded.get(i, "skip")
        if want == "skip":
            stats["not recorded"] = stats.get("not recorded", 0) + 1
            continue
        got = verdict("ok" if rc == 0 else "unusable", j)
        kind = got.split()[0]
        stats[kind] = stats.get(kind, 0) + 1
        assert got == want, "variant %d (%s): C %s (%s), recorded %s" % (
            i, victim, got, j if rc else "", want)
    print("fuzz:", stats)
    assert stats.get("ok", 0) > min(rounds, len(recorded)) // 2
