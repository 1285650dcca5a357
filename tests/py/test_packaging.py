"""The Debian packages build from this tree, are lintian clean, install,
work and purge (issue 11 item 9).  Installing needs root; the packages'
binaries are then the installed ones in /usr, not the build tree's."""

import os
import shutil
import subprocess

import pytest

from dboxfs_testlib import TOP, run, wtmp  # noqa: F401

needs_tools = pytest.mark.skipif(
    shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None
    or shutil.which("lintian") is None,
    reason="needs dpkg-dev, debhelper and lintian (scripts/setup-deps.sh)")


def installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                       capture_output=True)
    return b"install ok installed" in p.stdout


@needs_tools
def test_debs_build_lintian_clean_install_and_purge(wtmp):
    out = os.path.join(wtmp, "debs")
    p = run([os.path.join(TOP, "scripts", "build-deb.sh"), out],
            check=False, timeout=1200)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()[-3000:]
    debs = sorted(n for n in os.listdir(out) if n.endswith(".deb"))
    names = {n.split("_")[0] for n in debs}
    assert {"dboxfs", "libdbox0", "libdbox-dev"} <= names, debs
    # every binary the package installs has its man page, the README is
    # in the package's doc directory
    files = run(["dpkg-deb", "-c", os.path.join(
        out, [n for n in debs if n.startswith("dboxfs_")][0])]).stdout.decode()
    for prog, sect in (("dboxctl", 1), ("dboxfs-dovecot-index", 1),
                       ("dboxfs", 8)):
        assert "/%s\n" % prog in files, prog
        assert "/man%d/%s.%d.gz" % (sect, prog, sect) in files, prog
    assert "./usr/share/doc/dboxfs/README.md" in files
    if os.getuid() != 0:
        pytest.skip("installing the packages needs root")
    if installed("dboxfs") or installed("libdbox0"):
        pytest.skip("dboxfs is installed on this machine already: not "
                    "replacing it")
    pkgs = [os.path.join(out, n) for n in debs
            if n.split("_")[0] in ("dboxfs", "libdbox0")]
    try:
        run(["dpkg", "-i"] + pkgs, timeout=300)
        assert run(["/usr/bin/dboxctl", "--version"]).stdout.startswith(
            b"dboxctl ")
        assert b"dboxfs" in run(["/usr/sbin/dboxfs", "--version"]).stdout
        store = os.path.join(wtmp, "store")
        run(["/usr/bin/dboxctl", "init", store, "--format", "mdbox"])
        assert run(["/usr/bin/dboxctl", "ls", store]).stdout.startswith(
            b"INBOX\t0\t")
    finally:
        run(["dpkg", "--purge", "dboxfs", "libdbox0"], check=False,
            timeout=300)
    assert not installed("dboxfs") and not os.path.exists("/usr/bin/dboxctl")
