"""The writer on the primary: creates, changes and deletes files of the web root at a fixed rate.

    python -m harness.contentsync.writer --root DIR --stage DIR --log FILE --prepare N
    python -m harness.contentsync.writer --root DIR --stage DIR --log FILE --rate R --seconds S

A file is written whole in `stage` (same file system) and renamed into the root, so the primary
never shows a part of one: whatever part the standby shows, its sync made. Each operation is one
JSON line {"t", "op", "name", "version"}, t taken just before it shows on the primary, flushed at once: a
crash of the host loses no line of what happened before it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from harness.contentsync.content import render, size_of, verify

#: Shares of the operations: change a file, create one, delete one (the root keeps its size).
MIX = (("write", 0.5), ("create", 0.25), ("delete", 0.25))


class Writer:
    def __init__(self, root: Path, stage: Path, log: Path, seed: int) -> None:
        self.root, self.stage = root, stage
        self.log = log.open("a", buffering=1)
        self.rng = random.Random(seed)
        self.files: dict[str, int] = {}
        for path in root.iterdir():
            found = verify(path.read_bytes())
            if found:
                self.files[found[0]] = found[1]
        self.next_number = max((int(n[5:10]) for n in self.files), default=0)

    def _note(self, t: float, op: str, name: str, version: int) -> None:
        self.log.write(json.dumps({"t": t, "op": op, "name": name, "version": version}) + "\n")

    def create(self) -> None:
        self.next_number += 1
        self.write(f"page-{self.next_number:05d}.html", 1)

    def write(self, name: str, version: int) -> None:
        staged = self.stage / name
        staged.write_bytes(render(name, version, size_of(int(name[5:10]))))
        t = time.monotonic()  # just before it shows: no reader can see it earlier
        os.replace(staged, self.root / name)
        self.files[name] = version
        self._note(t, "write", name, version)

    def delete(self, name: str) -> None:
        t = time.monotonic()
        (self.root / name).unlink()
        del self.files[name]
        self._note(t, "delete", name, 0)

    def step(self) -> None:
        op = self.rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
        if op == "create" or not self.files:
            self.create()
        elif op == "write":
            name = self.rng.choice(sorted(self.files))
            self.write(name, self.files[name] + 1)
        else:
            self.delete(self.rng.choice(sorted(self.files)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--stage", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--prepare", type=int, help="create this many files at once, then exit")
    parser.add_argument("--rate", type=float, default=10.0, help="operations per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    writer = Writer(args.root, args.stage, args.log, args.seed)
    if args.prepare is not None:
        for _ in range(args.prepare):
            writer.create()
        return 0
    print("writing", flush=True)
    start = time.monotonic()
    for i in range(int(args.rate * args.seconds)):
        time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
        writer.step()
    return 0


if __name__ == "__main__":
    sys.exit(main())
