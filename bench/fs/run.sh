#!/bin/sh
# bench/fs/run.sh - reads per second through the async fs layer with 5 ms
# of added latency per operation (delay:5ms/posix), at 1, 4, 16 and 64
# requests in flight; medians of 5 runs; ratio to the single-request rate
# (goal: >= 12 at 16).  Prints the table and writes it as the section
# "Async FS layer" of bench/RESULTS.md.
#
#   bench/fs/run.sh              builds in ./build (scripts/build.sh)
#   BUILD=/path bench/fs/run.sh  uses that build directory instead
set -eu
cd "$(dirname "$0")/../.."
if [ -n "${BUILD:-}" ]; then
	ninja -C "$BUILD" bench/bench-fs >/dev/null
else
	BUILD=build
	scripts/build.sh "$BUILD"
fi
BENCH=$BUILD/bench/bench-fs
CONFIG=delay:5ms/posix
RUNS=5

dir=$(mktemp -d /tmp/bench-fs.XXXXXX)
out=$(mktemp /tmp/bench-fs-out.XXXXXX)
trap 'rm -rf "$dir" "$out" "$out.md"' EXIT
# 64 files of 4 KiB, file i filled with 'a' + i % 26 (bench-fs checks it)
i=0
while [ $i -lt 64 ]; do
	c=$(printf "\\$(printf %o $((97 + i % 26)))")
	head -c 4096 /dev/zero | tr '\0' "$c" > "$dir/f$i"
	i=$((i + 1))
done

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

single=""
for conc in 1 4 16 64; do
	# about 0.5 s of reads per run at the ideal rate
	n=$((conc * 100))
	runs=$(r=0; while [ $r -lt $RUNS ]; do "$BENCH" $CONFIG $conc $n "$dir"
		r=$((r + 1)); done)
	m=$(echo "$runs" | median)
	[ -n "$single" ] || single=$m
	printf '| %s | %s | %s | %.1f | %s |\n' "$conc" "$n" "$m" \
		"$(echo "$m $single" | awk '{ print $1 / $2 }')" \
		"$(echo "$runs" | sort -n | tr '\n' ' ' | sed 's/ $//')" >> "$out"
done
# the two backends without added latency (reads from the page cache):
# what the layer itself costs per request
backends=$(mktemp /tmp/bench-fs-backends.XXXXXX)
for cfg in posix uring; do
	runs=$(r=0; while [ $r -lt $RUNS ]; do "$BENCH" $cfg 64 200000 "$dir"
		r=$((r + 1)); done)
	printf '| %s | %s | %s |\n' "$cfg" "$(echo "$runs" | median)" \
		"$(echo "$runs" | sort -n | tr '\n' ' ' | sed 's/ $//')" >> "$backends"
done
{
	echo "Command: \`bench/fs/run.sh\` (from the top of the tree; \`BUILD=dir\` to use another build)."
	echo
	echo "4 KiB preads spread over 64 files through \`$CONFIG\`, CONCURRENCY"
	echo "requests kept in flight (each completion submits the next), default"
	echo "settings except max_workers = 64; median of $RUNS runs; ratio to the"
	echo "single-request rate (goal: >= 12 at 16).  The ideal is"
	echo "CONCURRENCY / 5 ms = 200 reads/s per request in flight."
	echo "Machine: $(nproc) CPUs, $(uname -sr); $(date -u +%Y-%m-%d)."
	echo
	echo "| in flight | reads per run | reads/s (median) | ratio to 1 | all runs |"
	echo "|---|---|---|---|---|"
	cat "$out"
	echo
	echo "Without added latency (page cache), 64 in flight, 200000 reads per run;"
	echo "uring reads what is cached at once on the worker (preadv2 RWF_NOWAIT),"
	echo "so both do the same work here: this is the cost of the layer itself."
	echo
	echo "| backend | reads/s (median) | all runs |"
	echo "|---|---|---|"
	cat "$backends"
	rm -f "$backends"
} > "$out.md"
cat "$out.md"
/usr/bin/python3 - "$out.md" <<'PY'
import sys
sys.path.insert(0, "bench")
from benchlib import replace_section
replace_section("bench/RESULTS.md", "Async FS layer", open(sys.argv[1]).read())
PY
