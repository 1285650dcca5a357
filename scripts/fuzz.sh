#!/bin/sh
# fuzz.sh [TARGET...] - build the libFuzzer targets of tests/fuzz with
# clang under ASan+UBSan (build dir build-fuzz) and run each one from its
# seed corpus tests/fuzz/corpus/TARGET for DBOXFS_FUZZ_RUNS executions
# (default 20000, at most 60 s each), or for DBOXFS_FUZZ_SECONDS seconds
# each when that is set (a longer run).  Fails if any target crashes,
# leaks or breaks an invariant; the input is kept in build-fuzz/crashes
# (reproduce: build-fuzz/tests/fuzz/fuzz-TARGET FILE).  New inputs found
# go to a scratch directory, not into the tree's corpus.
set -eu
cd "$(dirname "$0")/.."
dir=build-fuzz
runs=${DBOXFS_FUZZ_RUNS:-20000}
secs=${DBOXFS_FUZZ_SECONDS:-}

if [ $# -eq 0 ]; then
	for f in tests/fuzz/fuzz-*.c; do
		t=${f#tests/fuzz/fuzz-}
		set -- "$@" "${t%.c}"
	done
fi
if [ ! -f "$dir/build.ninja" ]; then
	# -Werror stays with the gcc builds: clang warns about other things
	CC=clang meson setup "$dir" -Dfuzz=true -Dfuse=disabled \
		-Dwerror=false -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null
fi
bins=""
for t in "$@"; do
	bins="$bins tests/fuzz/fuzz-$t"
done
# shellcheck disable=SC2086
ninja -C "$dir" -j2 $bins >/dev/null

if [ -n "$secs" ]; then
	limit="-max_total_time=$secs"
else
	limit="-runs=$runs -max_total_time=60"
fi
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
mkdir -p "$dir/crashes"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=""
for t in "$@"; do
	mkdir -p "$scratch/$t"
	start=$(date +%s)
	# shellcheck disable=SC2086
	if "$dir/tests/fuzz/fuzz-$t" $limit -max_len=8192 -timeout=25 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/$t-" \
		"$scratch/$t" "tests/fuzz/corpus/$t" >"$scratch/$t.log" 2>&1
	then
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' \
			"$scratch/$t.log")
		echo "fuzz-$t: $n runs in $(($(date +%s) - start)) s, ok"
	else
		tail -n 40 "$scratch/$t.log" >&2
		echo "fuzz-$t: FAILED (input in $dir/crashes/)" >&2
		failed="$failed $t"
	fi
done
[ -z "$failed" ] || { echo "fuzz.sh: failed:$failed" >&2; exit 1; }
