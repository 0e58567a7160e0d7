"""The reader on the standby: looks at the web root every few milliseconds, as a web server
would, and notes when each version of each file first shows, a part of one, and a file gone.

    python -m harness.contentsync.reader --root DIR --log FILE [--interval 0.005] [--seconds 60]

One JSON line {"t", "kind", "name", "version"} per observation (kind: seen, partial, gone),
flushed at once. Only files whose inode, size, mtime or ctime changed are read again; names starting
with a dot are rsync's files in progress, which no web server would serve.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from harness.contentsync.content import SIZES, verify

MAX_FILE = 2 * max(SIZES)


class Reader:
    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log.open("a", buffering=1)
        self.keys: dict[str, tuple[int, int, int, int]] = {}
        self.shown: dict[str, tuple[str, int]] = {}  # name -> (kind, version) last noted

    def _note(self, t: float, kind: str, name: str, version: int = 0) -> None:
        if self.shown.get(name) != (kind, version):
            self.shown[name] = (kind, version)
            self.log.write(json.dumps({"t": t, "kind": kind, "name": name, "version": version}) + "\n")

    def poll(self) -> None:
        """One look at the root; each observation is timed once it is made (never before it could be)."""
        present = set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                present.add(entry.name)
                try:
                    st = entry.stat(follow_symlinks=False)
                    key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)  # tar's mtimes are whole seconds
                    if self.keys.get(entry.name) == key:
                        continue
                    with open(entry.path, "rb") as f:
                        data = f.read(MAX_FILE + 1)
                except FileNotFoundError:
                    present.discard(entry.name)
                    continue
                t = time.monotonic()
                self.keys[entry.name] = key
                found = verify(data)
                if found is None:
                    self._note(t, "partial", entry.name)
                else:
                    self._note(t, "seen", entry.name, found[1])
        t = time.monotonic()
        for name in [n for n in self.keys if n not in present]:
            del self.keys[name]
            self._note(t, "gone", name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("--seconds", type=float, default=60.0, help="stop by itself after this long")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    reader = Reader(args.root, args.log)
    reader.poll()
    print("watching", flush=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        time.sleep(args.interval)
        reader.poll()
    return 0


if __name__ == "__main__":
    sys.exit(main())
