"""The tests run from a fresh clone with nothing beside it: no file under
tests/ reaches outside the tree for a store maker, a reader or a spec
(the sibling ../shared directory of the development machine, or any
absolute /work path), and the Dovecot store fixtures are the tree's own."""

import os
import re

import conftest
import dboxfs_testlib

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TESTS = os.path.join(TOP, "tests")
# "../shared", "/work/...", or "shared" as a path component in code such
# as os.path.join(os.path.dirname(TOP), "shared", "spec")
OUTSIDE = re.compile(r"""\.\./shared\b|/work/|["']shared["']""")


def text_files():
    for d, dirs, files in os.walk(TESTS):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for n in files:
            path = os.path.join(d, n)
            with open(path, "rb") as f:
                data = f.read()
            if b"\0" not in data:       # index files and other data
                yield path, data.decode("utf-8", "replace")


def test_no_test_reads_outside_the_tree():
    me = os.path.abspath(__file__)
    found = []
    for path, text in text_files():
        if path == me:
            continue
        for no, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append("%s:%d: %s" % (os.path.relpath(path, TOP), no,
                                            line.strip()))
    assert not found, "tests must not use files outside the tree:\n" + \
        "\n".join(found)


def test_dovecot_store_makers_are_in_the_tree():
    for maker in (conftest.MAKE_DOVECOT_STORE, dboxfs_testlib.MAKE_STORE):
        assert os.path.realpath(maker).startswith(TESTS + os.sep), maker
        assert os.access(maker, os.X_OK), maker


def test_the_guard_sees_what_it_guards_against():
    assert OUTSIDE.search('SPEC = os.path.join(os.path.dirname(TOP), '
                          '"shared", "spec")')
    assert OUTSIDE.search("run ../shared/spec/make-dovecot-store.sh")
    assert OUTSIDE.search('BUILD = "/work/main/build"')
    assert not OUTSIDE.search("helpers shared by the tests")
