#!/bin/sh
# test.sh - run every test of dboxfs on this machine, installing what is
# missing first: the C unit tests on a plain build, under AddressSanitizer +
# UBSan, and the async fs layer under ThreadSanitizer; then the pytest
# suites (real mounts, real SQLite files, the real Dovecot) against the
# sanitized build.  Extra arguments go to pytest (e.g. -k mdbox).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

scripts/setup-deps.sh
scripts/build.sh build
scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
scripts/build.sh build-tsan -Db_sanitize=thread -Db_lundef=false

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
meson test -C build --print-errorlogs --num-processes 2
meson test -C build-asan --print-errorlogs --num-processes 2
meson test -C build-tsan --print-errorlogs --suite fs --num-processes 1
scripts/fuzz.sh

DBOXFS_BUILD="$top/build-asan" /usr/bin/python3 -m pytest -ra -q \
	-p no:cacheprovider tests/py tests/conformance "$@"
