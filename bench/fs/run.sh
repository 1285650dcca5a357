#!/bin/sh
# bench/fs/run.sh - reads per second through the async fs layer with 5 ms
# of added latency per operation, at 1, 4, 16 and 64 requests in flight;
# medians of 5 runs; ratio to the single-request rate.  Writes the section
# "Async fs layer" of bench/RESULTS.md.
set -eu
cd "$(dirname "$0")/../.."
scripts/build.sh build
BENCH=build/bench/bench-fs
dir=$(mktemp -d /tmp/bench-fs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for i in $(seq 0 63); do head -c 4096 /dev/urandom > "$dir/f$i"; done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
out=$(mktemp)
single=""
for c in 1 4 16 64; do
	n=$((c * 40)); [ $n -lt 200 ] && n=200
	m=$(for r in 1 2 3 4 5; do "$BENCH" delay:5ms/posix $c $n "$dir"; done | median)
	[ -z "$single" ] && single=$m
	printf '| %s | %s | %.1f |\n' "$c" "$m" "$(echo "$m $single" | awk '{print $1/$2}')" >> "$out"
done
{
	echo "Command: \`bench/fs/run.sh\` (4 KiB preads over 64 files, \`delay:5ms/posix\`, medians of 5 runs)."
	echo
	echo "| requests in flight | reads/s | ratio to 1 |"
	echo "|---|---|---|"
	cat "$out"
} > "$out.md"
cat "$out.md"
/usr/bin/python3 - "$out.md" <<'PY'
import sys
sys.path.insert(0, "bench")
from benchlib import replace_section
replace_section("bench/RESULTS.md", "Async fs layer", open(sys.argv[1]).read())
PY
rm -f "$out" "$out.md"
