#!/bin/sh
# demo.sh - the main job: install what is missing, build, make a demo mdbox
# store from a generated sample mailbox, mount it with dboxfs, show it with
# ordinary tools, and unmount.  DEMO_DIR (default /tmp/dboxfs-demo) keeps
# the store afterwards; KEEP_MOUNTED=1 leaves it mounted.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

scripts/setup-deps.sh
scripts/build.sh build
DBOXCTL=$top/build/tools/dboxctl/dboxctl
DBOXFS=$top/build/fusefs/dboxfs

demo=${DEMO_DIR:-/tmp/dboxfs-demo}
rm -rf "$demo"
mkdir -p "$demo"
/usr/bin/python3 scripts/sample-mail.py "$demo/sample"

echo "== dboxctl init + import (one transaction per import)"
"$DBOXCTL" init "$demo/store" --format mdbox
"$DBOXCTL" import "$demo/store" INBOX "$demo/sample/inbox"
"$DBOXCTL" import "$demo/store" Lists/linux "$demo/sample/linux"
"$DBOXCTL" import "$demo/store" Archive "$demo/sample/archive.mbox"
"$DBOXCTL" ls "$demo/store"
"$DBOXCTL" check "$demo/store" && echo "check: clean"

echo "== dboxfs $demo/store $demo/mnt"
mkdir -p "$demo/mnt"
"$DBOXFS" "$demo/store" "$demo/mnt" -f &
pid=$!
cleanup() {
	if [ "${KEEP_MOUNTED:-0}" != 1 ]; then
		fusermount3 -u "$demo/mnt" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
i=0
until mountpoint -q "$demo/mnt"; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "mount did not appear" >&2; exit 1; }
	kill -0 "$pid" 2>/dev/null || { echo "dboxfs exited" >&2; exit 1; }
	sleep 0.05
done

cd "$demo/mnt"
echo "== ls -la (maildir++ layout: INBOX at the root, .Folder dirs)"
ls -la
echo "== find . -type f | head"
find . -type f | sort | head
echo "== messages per folder"
for d in . .[!.]*; do
	[ -d "$d/cur" ] || continue
	printf '%-16s %s\n' "$d" "$(ls "$d/cur" "$d/new" | grep -vc ':$\|^$')"
done
echo "== grep -rl 'Subject: .*kernel' ."
grep -rl 'Subject: .*kernel' . | head -3
first=$(ls cur | head -1)
echo "== cat cur/$first"
cat "cur/$first"
echo "== xattrs of cur/$first"
for a in guid uid mailbox file; do
	printf 'user.dbox.%s = ' "$a"
	/usr/bin/python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.dbox." + sys.argv[2]).decode())' "cur/$first" "$a"
done
echo "== df -h ."
df -h . | tail -1
cd /
[ "${KEEP_MOUNTED:-0}" = 1 ] && echo "left mounted on $demo/mnt (fusermount3 -u $demo/mnt)"
exit 0
