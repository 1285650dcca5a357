#!/bin/bash
# make-data.sh - regenerates the real Dovecot index files in this directory
# (used by tests/unit/dovecot/test-dovi-fuzz.c and test-dovi-real.c).
#
# Usage: make-data.sh [OUTDIR]   (default: this directory)
#
# Builds fresh stores with tests/fixtures/dovecot_store.py, changes them
# with doveadm (flags, keywords, saves, copies, expunges, a forced
# dovecot.index write and a forced log rotation, an mdbox purge) and copies
# the index files of a few mailboxes to OUTDIR, together with what Dovecot
# reads from them (expected.txt: `doveadm fetch 'uid flags'` of the mailbox,
# \Recent left out; for the mdbox map the uids of `doveadm dump`).  The
# files are data produced by Dovecot 2.3; they are small on purpose.  After
# regenerating, record the fuzz verdicts again (record-fuzz-verdicts.py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MAKER="$HERE/../../fixtures/dovecot_store.py"
OUT=${1:-$HERE}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d /tmp/dovi-data.XXXXXX)
chmod 0755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
"$MAKER" "$TMP/out" >/dev/null
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
	rm -rf "${OUT:?}/$2"
	mkdir -p "$OUT/$2"
	for n in "$1"/dovecot.index "$1"/dovecot.index.log \
		 "$1"/dovecot.index.log.2 "$1"/dovecot.map.index \
		 "$1"/dovecot.map.index.log "$1"/dovecot.map.index.log.2; do
		[ -e "$n" ] && cp "$n" "$OUT/$2/"
	done
	chmod 0644 "$OUT/$2"/*
}
expected() {	# expected FORMAT MAILBOX DEST
	"$DA" "$1" -f tab fetch 'uid flags' mailbox "$2" all |
		sed -e 's/ *\\Recent//' -e 's/\t /\t/' > "$OUT/$3/expected.txt"
}
copy "$TMP/out/sdbox/mailboxes/INBOX/dbox-Mails" sdbox-inbox
copy "$TMP/out/sdbox/mailboxes/Trash/dbox-Mails" sdbox-trash
copy "$TMP/out/mdbox/mailboxes/INBOX/dbox-Mails" mdbox-inbox
copy "$TMP/out/mdbox/mailboxes/Lists/linux/dbox-Mails" mdbox-lists-linux
copy "$TMP/out/mdbox/storage" mdbox-storage
expected sdbox INBOX sdbox-inbox
expected sdbox Trash sdbox-trash
expected mdbox INBOX mdbox-inbox
expected mdbox Lists/linux mdbox-lists-linux
# the map's records have no flags: Dovecot's own reading of the copy
{ printf 'uid\tflags\n'
  doveadm dump "$OUT/mdbox-storage" |
	sed -n 's/^RECORD: seq=[0-9]*, uid=\([0-9]*\),.*/\1\t/p'
} > "$OUT/mdbox-storage/expected.txt"
echo "make-data.sh: done"
