"""Round trips with the real Dovecot 2.3, both directions.

libdbox -> Dovecot: a store made by `dboxctl import` is read by
`doveadm force-resync` + `doveadm fetch`: same bytes, GUIDs, received dates.

Dovecot -> libdbox: stores written by Dovecot (tests/fixtures/dovecot_store.py,
plus hostile messages saved with doveadm, an mdbox with rotated files, expunged
and purged messages) are indexed and exported by dboxctl with byte-identical
messages, the GUIDs and received dates doveadm reports, and nothing is
written into the Dovecot tree."""

import hashlib
import os

import pytest

from dboxfs_testlib import (HOSTILE, Doveadm, big_message, dboxctl,
                            doveadm_view, dovecot_tree, export_maildir,
                            ls_mailboxes, ls_messages, make_maildir,
                            needs_dovecot, tree_state,
                            wtmp)  # noqa: F401  (fixtures)

pytestmark = needs_dovecot

MAILBOXES = ["INBOX", "Entwürfe", "Lists/linux", "a&b"]


def source_messages():
    msgs = {"%d.M%dP1.src,S=%d" % (1700000000 + i, i, len(data)): data
            for i, data in enumerate(HOSTILE.values())}
    msgs["1700000100.M100P1.src"] = big_message()
    return msgs


def our_messages(store, mailbox, *extra):
    """{guid: (bytes, received)} read back with dboxctl cat."""
    res = {}
    for row in ls_messages(store, mailbox, *extra):
        data = dboxctl(*extra, "cat", store, mailbox, row["uid"]).stdout
        assert len(data) == row["size"]
        res[row["guid"]] = (data, row["received"])
    return res


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dboxctl_store_read_by_dovecot(wtmp, fmt):
    src = make_maildir(os.path.join(wtmp, "src"), source_messages(),
                       mtimes={b: 1600000000 + i for i, b in
                               enumerate(sorted(source_messages()))})
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt, "--rotate-size", "64k")
    for box in MAILBOXES:
        dboxctl("import", store, box, src)
    assert dboxctl("check", store).returncode == 0
    if fmt == "mdbox":
        # rotation happened: each 20 MB message got a file of its own
        # and the small ones share files
        sizes = sorted(os.path.getsize(os.path.join(store, "storage", f))
                       for f in os.listdir(os.path.join(store, "storage"))
                       if f.startswith("m."))
        assert sum(s > 20 << 20 for s in sizes) == len(MAILBOXES)
        assert len(sizes) > len(MAILBOXES)
    expected = {}
    for box in MAILBOXES:
        for guid, (data, received) in our_messages(store, box).items():
            expected[guid] = (box, data, received)
    assert len(expected) == len(MAILBOXES) * len(source_messages())

    da = Doveadm(wtmp, store, fmt)
    da.force_resync("*" if fmt == "sdbox" else "INBOX")
    got = da.fetch("mailbox guid date.received.unixtime size.physical text")
    seen = {}
    for m in got:
        seen[m["guid"]] = (m["mailbox"], m["text"],
                           int(m["date.received.unixtime"]))
        assert int(m["size.physical"]) == len(m["text"])
    assert set(seen) == set(expected)
    for guid, (box, data, received) in expected.items():
        assert seen[guid][0] == box, guid
        assert seen[guid][1] == data, (box, guid)
        assert seen[guid][2] == received, (box, guid)


# ---------------------------------------------------------------- Dovecot -> us

@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_dovecot_store_exported_by_dboxctl(dovecot_tree, fmt):
    top, out = dovecot_tree
    root = os.path.join(out, fmt)
    expected = doveadm_view(out, fmt)   # doveadm updates its cache file
    before = tree_state(root)
    idx = ["--index", os.path.join(top, fmt + "-index.sqlite")]
    boxes = ls_mailboxes(root, *idx)
    for box, msgs in expected.items():
        assert box in boxes, box
        got = our_messages(root, box, *idx)
        assert set(got) == set(msgs), box
        for guid, (data, received) in msgs.items():
            assert got[guid][0] == data, (box, guid)
            assert got[guid][1] == received, (box, guid)
        # and through export, as files
        dest = os.path.join(top, "export-%s-%s" % (fmt, hashlib.sha1(
            box.encode()).hexdigest()[:8]))
        files = export_maildir(root, box, dest, *idx)
        assert sorted(d for d, _, _, _ in files.values()) == \
            sorted(d for d, _ in msgs.values())
        for data, _, _, mtime in files.values():
            assert mtime in {r for d, r in msgs.values() if d == data}
    for box, info in boxes.items():
        assert info["messages"] == len(expected.get(box, {})), box
    # a Dovecot tree is only read
    assert tree_state(root) == before
