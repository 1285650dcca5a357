#!/bin/sh
# build-deb.sh OUTDIR - build the Debian packages (dboxfs, libdbox0,
# libdbox-dev) from this checkout with dpkg-buildpackage, then run lintian
# on them.  The source tree is copied to a scratch directory first (with
# packaging/debian as debian/), so the checkout stays as it is.
# Needs debhelper, dpkg-dev and lintian (scripts/setup-deps.sh installs
# them).  Exit status: 0 built and lintian clean, 1 otherwise.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
top=$(pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

src="$work/dboxfs"
mkdir "$src"
# the tracked files as they are in the work tree (uncommitted edits too)
git ls-files -z --cached --others --exclude-standard |
	(cd "$top" && xargs -0 cp --parents -t "$src" 2>/dev/null) || true
rm -rf "$src/debian"
cp -r packaging/debian "$src/debian"

(cd "$src" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1 || {
	tail -40 "$out/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
}
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
echo "build-deb: packages in $out:"
ls "$out"/*.deb

# lintian: errors and warnings fail; pedantic tags are listed (and
# explained in packaging/debian/lintian-notes)
if command -v lintian >/dev/null; then
	lintian --fail-on error,warning --pedantic --no-tag-display-limit \
		"$out"/*.changes
fi
