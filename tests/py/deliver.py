#!/usr/bin/python3
"""deliver.py MAILDIR PREFIX COUNT MODE ACKLOG - a maildir deliverer for the
tests: for i in range(COUNT) writes tmp/<PREFIX>.<i>, fsyncs it, and moves
it into new/ by rename (MODE "rename"), by link+unlink ("link"), or
alternating ("mixed").  After each move returned success it appends the
name to ACKLOG (flushed), so a test can tell acknowledged deliveries from
the others after a crash.  Exits at the first error, printing it."""

import os
import sys


def payload(name):
    """The bytes of message `name`: derived from the name alone, of
    varying size, with hostile content in some."""
    n = sum(name.encode()) * 7919 % 6000
    extra = b"\n\x01\x03\n" if n % 3 == 0 else b""
    line = (name.encode() + b" ") * 4 + b"\n"
    return b"Subject: " + name.encode() + b"\n\n" + extra + line * (n // len(line) + 1)


def main():
    maildir, prefix, count, mode, acklog = sys.argv[1:6]
    with open(acklog, "a", buffering=1) as ack:
        for i in range(int(count)):
            name = "%s.%d" % (prefix, i)
            tmp = os.path.join(maildir, "tmp", name)
            dst = os.path.join(maildir, "new", name)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            data = payload(name)
            half = len(data) // 2
            os.write(fd, data[:half])
            os.pwrite(fd, data[half:], half)
            os.fsync(fd)
            os.close(fd)
            use_link = mode == "link" or (mode == "mixed" and i % 2)
            if use_link:
                os.link(tmp, dst)
                ack.write(name + "\n")
                os.unlink(tmp)
            else:
                os.rename(tmp, dst)
                ack.write(name + "\n")


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        print("deliver: %s" % e, file=sys.stderr)
        sys.exit(1)
