#!/usr/bin/python3
"""sample-mail.py DIR - writes a generated sample mailbox for the demo:
DIR/inbox (maildir, mixed flags, some unread in new/), DIR/linux (maildir
of a mailing list) and DIR/archive.mbox (mboxrd).  Deterministic."""

import email.utils
import os
import random
import sys
import time

PEOPLE = ["Alice <alice@example.org>", "Bob <bob@example.org>",
          "Carol <carol@example.net>", "Dave <dave@example.com>"]
TOPICS = ["lunch on friday", "quarterly report", "re: the kernel build",
          "holiday photos", "server migration", "invoice 2024-117"]
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua").split()


def message(rng, i, subject, when, to="Me <me@example.org>"):
    body = "\n".join(" ".join(rng.choice(WORDS) for _ in range(12))
                     for _ in range(rng.randint(3, 30)))
    return ("From: %s\nTo: %s\nSubject: %s\nDate: %s\n"
            "Message-ID: <sample-%d@example.org>\n\n%s\n" % (
                rng.choice(PEOPLE), to, subject,
                email.utils.formatdate(when), i, body)).encode()


def maildir(path, msgs):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for base, data, flags, when, new in msgs:
        name = os.path.join(path, "new", base) if new else \
            os.path.join(path, "cur", base + ":2," + flags)
        with open(name, "wb") as f:
            f.write(data)
        os.utime(name, (when, when))


def main(out):
    rng = random.Random(1)
    t0 = 1700000000
    inbox = []
    for i in range(30):
        when = t0 + i * 3600
        data = message(rng, i, rng.choice(TOPICS), when)
        base = "%d.M%dP100.sample,S=%d" % (when, i, len(data))
        inbox.append((base, data, rng.choice(["S", "RS", "FS", "", "S"]),
                      when, i >= 27))
    maildir(os.path.join(out, "inbox"), inbox)
    linux = []
    for i in range(20):
        when = t0 + 50000 + i * 600
        data = message(rng, 100 + i, "[PATCH %d/20] kernel: fix %s" % (
            i + 1, rng.choice(WORDS)), when, "linux-kernel@vger.example")
        linux.append(("%d.M%dP200.sample" % (when, i), data, "S", when, False))
    maildir(os.path.join(out, "linux"), linux)
    with open(os.path.join(out, "archive.mbox"), "wb") as f:
        for i in range(10):
            when = t0 - 86400 * (10 - i)
            data = message(rng, 200 + i, "old news %d" % i, when)
            data = data.replace(b"\n\n", b"\n\nFrom the archive:\n", 1)
            f.write(b"From archive@example.org %s\n" %
                    time.asctime(time.gmtime(when)).encode())
            f.write(data.replace(b"\nFrom ", b"\n>From ") + b"\n")


if __name__ == "__main__":
    main(sys.argv[1])
