"""Shared pytest fixtures of the dboxfs suites (pytest loads this file by
itself; no import needed).

Each block below belongs to one area of the tests and is self-contained.
Add new fixtures as new blocks; don't change another block's fixtures
without talking to its owner."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

# ---------------------------------------------------------------------------
# Stores written by the real Dovecot (tests/fixtures/dovecot_store.py).
# Owner: the Dovecot index reader (test_dovecot_index.py).  Reusable by
# anyone who needs real sdbox/mdbox stores and doveadm on them.
# ---------------------------------------------------------------------------

_TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MAKE_DOVECOT_STORE = os.path.join(_TOP, "tests", "fixtures",
                                  "dovecot_store.py")


def dovecot_installed():
    """True if the Dovecot daemon and doveadm are installed."""
    return (shutil.which("dovecot") is not None and
            shutil.which("doveadm") is not None)


def skip_without_dovecot():
    if not dovecot_installed():
        pytest.skip("Dovecot is not installed (needs the dovecot and "
                    "doveadm programs: dovecot-core, dovecot-imapd)")


class DovecotStores:
    """The output of dovecot_store.py OUT: an sdbox store OUT/sdbox
    and an mdbox store OUT/mdbox written by Dovecot, and doveadm on them
    (OUT/dovecot/doveadm-store, no running Dovecot needed)."""

    def __init__(self, top, out):
        self.top = top          # private temporary directory
        self.out = out

    def root(self, fmt):
        """Store root of "sdbox" or "mdbox"."""
        return os.path.join(self.out, fmt)

    def doveadm(self, fmt, *args, input=None, check=True, timeout=120):
        """Runs doveadm on one store; returns the CompletedProcess.
        Global doveadm options (-o, -f) go first in args."""
        cmd = [os.path.join(self.out, "dovecot", "doveadm-store"), fmt]
        p = subprocess.run(cmd + [str(a) for a in args], input=input,
                           capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("doveadm %s %s failed (%d): %s" % (
                fmt, " ".join(map(str, args)), p.returncode,
                p.stderr.decode(errors="replace")[-2000:]))
        return p

    def fetch(self, fmt, fields, *query):
        """`doveadm -f json fetch FIELDS QUERY` (default query: all
        mailboxes, all messages) as a list of dicts."""
        p = self.doveadm(fmt, "-f", "json", "fetch", fields,
                         *(query or ("all",)))
        return json.loads(p.stdout.decode("utf-8", "surrogateescape"))

    def messages_json(self, fmt):
        """What dovecot_store.py recorded about every message."""
        with open(os.path.join(self.out, "%s.messages.json" % fmt)) as f:
            return json.load(f)

    def remove(self):
        shutil.rmtree(self.top, ignore_errors=True)


def make_dovecot_stores():
    """Builds new stores (about 4 s) in a private directory below /tmp
    that the unprivileged store user can reach.  Returns a DovecotStores;
    the caller calls .remove()."""
    top = tempfile.mkdtemp(prefix="dboxfs-dovecot-stores.", dir="/tmp")
    os.chmod(top, 0o755)
    out = os.path.join(top, "out")
    p = subprocess.run([MAKE_DOVECOT_STORE, out], capture_output=True,
                       timeout=300)
    if p.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        raise AssertionError("dovecot_store.py failed: %s" %
                             p.stderr.decode(errors="replace")[-3000:])
    return DovecotStores(top, out)


@pytest.fixture(scope="session")
def dovecot_stores():
    """Stores built once per test session.  Shared: treat them as
    read-only (doveadm fetch is fine); tests that change a store use
    dovecot_stores_factory instead."""
    skip_without_dovecot()
    stores = make_dovecot_stores()
    yield stores
    stores.remove()


@pytest.fixture
def dovecot_stores_factory():
    """Call it to get fresh private stores (about 4 s each); all are
    removed after the test."""
    skip_without_dovecot()
    made = []

    def make():
        made.append(make_dovecot_stores())
        return made[-1]

    yield make
    for s in made:
        s.remove()
