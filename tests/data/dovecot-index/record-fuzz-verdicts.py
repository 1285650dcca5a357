#!/usr/bin/python3
"""record-fuzz-verdicts.py READER - writes fuzz-verdicts.txt next to this
file: for each variant of test_fuzz_against_recorded_verdicts
(tests/py/test_dovecot_index.py) what the reference reader of Dovecot's
index format (READER: dovecot-index-reader.py of the dbox specs, a Python
reader standing in for Dovecot, which repairs rather than refuses) makes
of it.  Run it by hand after make-data.sh; the tests never run it.

It also runs the C reader ($DBOXFS_BUILD) on every variant and stops if the
two disagree: the verdicts are only recorded while they agree.  Variants
where the reference knowingly differs from Dovecot, or crashes, are
recorded as "skip"."""

import contextlib
import importlib.util
import io
import json
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "py"))
import test_dovecot_index as t  # noqa: E402

ROUNDS = 1500


def load_reader(path):
    spec = importlib.util.spec_from_file_location("index_reader", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reader_quirk(ref, d):
    """Inputs where the reference knowingly differs from Dovecot (and
    from the C reader): a HEADER_UPDATE chunk running past its record (the
    reference's slice assignment then changes the length of its base
    header) and a keyword name containing NUL (Dovecot cuts the name
    there, the reference keeps it)."""
    for name in os.listdir(d):
        if ".log" not in name:
            continue
        try:
            lf = ref.LogFile(os.path.join(d, name))
        except Exception:
            continue
        pos = lf.hdr_size
        while pos + 8 <= lf.sync_offset:
            size = ref.decode_log_size(lf.data[pos:pos + 4])
            if size < 8:
                break
            kind = ref.real_type(struct.unpack_from("<I", lf.data,
                                                    pos + 4)[0])
            p = lf.data[pos + 8:pos + size]
            if kind == ref.T_KEYWORD_UPDATE and len(p) >= 4 and \
                    b"\0" in p[4:4 + struct.unpack_from("<H", p, 2)[0]]:
                return True
            i = 0
            while kind == ref.T_HEADER_UPDATE and i + 4 <= len(p):
                off, sz = struct.unpack_from("<HH", p, i)
                end = min(off + sz, 120)
                if off < end and len(p) - (i + 4) < end - off:
                    return True
                i = ref.align(i + 4 + sz, 4)
            pos += size
    return False


def reader_verdict(ref, d):
    """(status, JSON) of the reference, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["reader", "--format", "json", d]
    try:
        with contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            rc = ref.main()
    except Exception as e:      # the reference crashed on this input
        return "crash", repr(e)
    finally:
        sys.argv = argv
    return ("ok", json.loads(out.getvalue())) if rc == 0 else \
        ("unusable", err.getvalue())


def main(argv):
    if len(argv) != 2:
        print(__doc__.split("\n")[0], file=sys.stderr)
        return 64
    ref = load_reader(argv[1])
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, victim in t.fuzz_variants(os.path.join(tmp, "w"), ROUNDS):
            d = os.path.dirname(victim)
            status, r = reader_verdict(ref, d)
            if status == "crash" or reader_quirk(ref, d):
                lines.append("%d skip" % i)
                continue
            crc, c = t.c_index(d)
            want = t.verdict(status, r)
            got = t.verdict("ok" if crc == 0 else "unusable", c)
            if got != want:
                print("variant %d (%s): C %s, reference %s" % (
                    i, victim, got, want), file=sys.stderr)
                return 1
            lines.append("%d %s" % (i, want))
    with open(os.path.join(HERE, "fuzz-verdicts.txt"), "w") as f:
        f.write("# verdicts for test_fuzz_against_recorded_verdicts, written"
                " by record-fuzz-verdicts.py\n# variant: ok SHA1-PREFIX "
                "(of the reading), unusable, or skip\n")
        f.write("# data %s\n" % t.data_digest())
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
