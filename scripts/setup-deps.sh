#!/bin/sh
# setup-deps.sh - install what building and testing dboxfs needs, from
# Debian's packages only (the maildir clients too: the tests drive
# them).  Idempotent: installs nothing when all is there.
set -eu

PKGS="build-essential meson ninja-build pkg-config
libsqlite3-dev zlib1g-dev libzstd-dev liblz4-dev liblzma-dev libbz2-dev nettle-dev
libfuse3-dev liburing-dev fuse3 python3-pytest dovecot-core dovecot-imapd
util-linux rsync procps strace debhelper dpkg-dev lintian
safecat maildrop procmail mblaze notmuch maildir-utils isync
clang libclang-rt-dev"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup-deps: installing:$missing" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
