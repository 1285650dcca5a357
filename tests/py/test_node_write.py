"""The write side asks the kind of the parent directory (node.h
may_create, may_mkdir, unlink): the errno each kind answers on a real
mount."""

import errno
import os

import pytest

from dboxfs_testlib import (DBOXFS, dboxctl, ls_messages, mounts,
                            wtmp)  # noqa: F401
from test_fidelity_folders import outcome

pytestmark = pytest.mark.skipif(not os.path.exists(DBOXFS),
                                reason="dboxfs not built (no libfuse3)")


def make_file(path):
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


@pytest.mark.parametrize("fmt", ["sdbox", "mdbox"])
def test_write_errno_by_parent_kind(wtmp, mounts, fmt):
    store = os.path.join(wtmp, "store")
    dboxctl("init", store, "--format", fmt)
    mnt = os.path.join(wtmp, "mnt")
    m = mounts(store, mnt, "layout=maildir++")
    tmp, new = os.path.join(mnt, "tmp"), os.path.join(mnt, "new")
    with open(os.path.join(tmp, "1.x.host"), "wb") as f:
        f.write(b"Subject: x\n\nx\n")
    os.rename(os.path.join(tmp, "1.x.host"), os.path.join(new, "1.x.host"))
    # cur/ new/ tmp/ hold no directories
    assert outcome(os.mkdir, os.path.join(new, "d")) == errno.EPERM
    assert outcome(os.mkdir, os.path.join(tmp, "d")) == errno.EPERM
    # files in tmp/ and plain files beside a folder come and go
    assert outcome(make_file, os.path.join(tmp, "t")) == 0
    assert outcome(os.unlink, os.path.join(tmp, "t")) == 0
    assert outcome(make_file, os.path.join(mnt, "plain")) == 0
    assert outcome(os.unlink, os.path.join(mnt, "plain")) == 0
    # a plain directory holds files and directories
    assert outcome(os.mkdir, os.path.join(mnt, "pd")) == 0
    assert outcome(os.mkdir, os.path.join(mnt, "pd", "sub")) == 0
    assert outcome(make_file, os.path.join(mnt, "pd", "f")) == 0
    assert outcome(os.unlink, os.path.join(mnt, "pd", "f")) == 0
    # unlink of a message is its expunge
    assert outcome(os.unlink, os.path.join(new, "1.x.host")) == 0
    assert os.listdir(new) == []
    m.stop()
    assert ls_messages(store, "INBOX") == []
