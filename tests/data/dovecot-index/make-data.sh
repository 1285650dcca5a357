#!/bin/bash
# make-data.sh - regenerates the real Dovecot index files in this directory
# (used by tests/unit/dovecot/test-dovi-fuzz.c and test-dovi-real.c).
#
# Usage: make-data.sh [SPEC_DIR]   (default /work/shared/spec)
#
# Builds fresh stores with SPEC_DIR/make-dovecot-store.sh, changes them with
# doveadm (flags, keywords, saves, copies, expunges, a forced dovecot.index
# write and a forced log rotation, an mdbox purge) and copies the index
# files of a few mailboxes here, together with what the reference reader
# says about them (expected.txt, `dovecot-index-reader.py --format
# doveadm`; for the mdbox mailbox with --map).  The files are data produced
# by Dovecot 2.3; they are small on purpose.
set -euo pipefail
SPEC=${1:-/work/shared/spec}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/dovi-data.XXXXXX)
chmod 0755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
"$SPEC/make-dovecot-store.sh" "$TMP/out" >/dev/null
DA="$TMP/out/dovecot/doveadm-store"
msg() { printf 'Subject: %s\n\nbody %s\n' "$1" "$1"; }
for f in sdbox mdbox; do
	"$DA" $f flags add '\Flagged $Label2 todo' mailbox INBOX all
	"$DA" $f flags add 'FOO' mailbox INBOX uid 3
	"$DA" $f flags add 'foo' mailbox INBOX uid 5
	for i in 1 2 3; do msg "new $i" | "$DA" $f save -m INBOX; done
	"$DA" $f flags replace '\Answered work' mailbox INBOX uid 6
	"$DA" $f copy Foo mailbox INBOX uid 7
	"$DA" $f -o mail_index_rewrite_max_log_bytes=1 \
		flags remove '\Seen' mailbox INBOX uid 1
	"$DA" $f expunge mailbox INBOX uid 3
	"$DA" $f -o mail_index_log_rotate_max_size=1 \
		-o mail_index_rewrite_max_log_bytes=1 \
		flags add '\Deleted' mailbox INBOX uid 5
	msg "after rotation" | "$DA" $f save -m INBOX
	"$DA" $f flags remove 'todo' mailbox INBOX uid 1:6
	"$DA" $f move Trash mailbox Foo all
done
"$DA" mdbox -o mail_index_log_rotate_max_size=1 purge
copy() {	# copy SRCDIR DEST
	rm -rf "${HERE:?}/$2"
	mkdir -p "$HERE/$2"
	for n in "$1"/dovecot.index "$1"/dovecot.index.log \
		 "$1"/dovecot.index.log.2 "$1"/dovecot.map.index \
		 "$1"/dovecot.map.index.log "$1"/dovecot.map.index.log.2; do
		[ -e "$n" ] && cp "$n" "$HERE/$2/"
	done
	chmod 0644 "$HERE/$2"/*
}
copy "$TMP/out/sdbox/mailboxes/INBOX/dbox-Mails" sdbox-inbox
copy "$TMP/out/sdbox/mailboxes/Trash/dbox-Mails" sdbox-trash
copy "$TMP/out/mdbox/mailboxes/INBOX/dbox-Mails" mdbox-inbox
copy "$TMP/out/mdbox/mailboxes/Lists/linux/dbox-Mails" mdbox-lists-linux
copy "$TMP/out/mdbox/storage" mdbox-storage
REF="/usr/bin/python3 $SPEC/dovecot-index-reader.py --format doveadm"
for d in sdbox-inbox sdbox-trash; do
	$REF "$HERE/$d" > "$HERE/$d/expected.txt"
done
for d in mdbox-inbox mdbox-lists-linux; do
	$REF "$HERE/$d" > "$HERE/$d/expected.txt"
done
$REF "$HERE/mdbox-storage" > "$HERE/mdbox-storage/expected.txt"
echo "make-data.sh: done"
