#!/usr/bin/python3
"""copier.py SRC DST ACKLOG - copies every file of directory SRC (sorted by
name) into directory DST as cp does: create under the final name, write
in chunks, close.  After each close returned it appends the name to
ACKLOG (flushed), so a test can tell the files whose copy was complete
from the others after a crash.  Exits at the first error, printing it."""

import os
import sys

CHUNK = 16384


def main():
    src, dst, acklog = sys.argv[1:4]
    with open(acklog, "a", buffering=1) as ack:
        for name in sorted(os.listdir(src)):
            with open(os.path.join(src, name), "rb") as f:
                data = f.read()
            fd = os.open(os.path.join(dst, name),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            for off in range(0, len(data), CHUNK):
                os.write(fd, data[off:off + CHUNK])
            os.close(fd)
            ack.write(name + "\n")


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
