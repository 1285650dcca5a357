#!/bin/sh
# test.sh - run every test of dboxfs on this machine, installing what is
# missing first: the C unit tests on a plain build, under AddressSanitizer +
# UBSan, and the async fs layer under ThreadSanitizer; then the pytest
# suites (real mounts, real SQLite files, the real Dovecot) against the
# sanitized build, and the concurrent mount tests against the TSan build.  Extra arguments go to pytest (e.g. -k mdbox).
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

# The daemon's threads (FUSE workers, committer, followers) on real
# mounts under ThreadSanitizer: the mount tests that run concurrently.
# A report fails the test (the mounts fixture scans the daemon's log).
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
DBOXFS_BUILD="$top/build-tsan" /usr/bin/python3 -m pytest -ra -q \
	-p no:cacheprovider tests/py/test_mount_lifetimes.py \
	tests/py/test_kernel_cache.py \
	tests/py/test_mount_write.py::test_delivery_storm \
	tests/py/test_mount_write.py::test_group_commit_shares_transactions \
	tests/py/test_mount_read.py::test_daemon_survives_abuse \
	tests/py/test_takeover.py::test_deliveries_into_a_new_folder
