"""The periodic sync on the primary: every `period` seconds, the whole web root to the standby.

    python -m harness.contentsync.push --method tar|rsync --src DIR --target IP --period S --log FILE

tar: `tar -c` of the root streamed over TCP to the standby's receiver (harness.contentsync.untar),
which unpacks it in place; files the root no longer has stay on the standby. rsync: `rsync -a
--delete` to the standby's rsync daemon, which writes each file under a temporary name and
renames it. A cycle starts `period` seconds after the previous one started, or at once when that
one took longer. One JSON line per cycle {"start", "end", "ok", "bytes"}; "first cycle done" once.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TAR_PORT = 8730
RSYNC_PORT = 873
CYCLE_TIMEOUT_S = 60.0


def tar_cycle(src: Path, target: str) -> int:
    """Stream a tar of `src` to the receiver; the bytes sent."""
    sent = 0
    with socket.create_connection((target, TAR_PORT), timeout=CYCLE_TIMEOUT_S) as conn, \
            subprocess.Popen(["tar", "-C", str(src), "-cf", "-", "."], stdout=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        while chunk := tar.stdout.read(1 << 16):
            conn.sendall(chunk)
            sent += len(chunk)
        conn.shutdown(socket.SHUT_WR)
        unpacked = conn.recv(1)  # once the receiver's tar is done: b"0" unpacked, b"1" not
        if tar.wait() not in (0, 1):  # 1: a file changed or went while tar read it (the writer is busy)
            raise OSError(f"tar exited {tar.returncode}")
        if unpacked != b"0":
            raise OSError("the standby could not unpack the stream (see its untar log)")
    return sent


#: rsync's quick check skips a file whose size and mtime match; by default it compares mtimes in
#: whole seconds, so a file rewritten at the same size within the second of the copy it already
#: sent is never sent again (seen here: a change 3.7 s old missing at the crash). A negative
#: window compares nanoseconds too (rsync 3.1.3 and later).
EXACT_MTIME = "--modify-window=-1"


def rsync_cycle(src: Path, target: str) -> int:
    """`rsync -a --delete` of `src` into the standby's module; the bytes it sent."""
    done = subprocess.run(["rsync", "-a", "--delete", EXACT_MTIME, "--stats", f"--timeout={CYCLE_TIMEOUT_S:.0f}",
                           f"{src}/",
                           f"rsync://{target}:{RSYNC_PORT}/www/"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"rsync exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return sum(sent_bytes(done.stdout))


def sent_bytes(stats: str) -> list[int]:
    """"Total bytes sent" of each rsync --stats in `stats`."""
    return [int(n.replace(",", "")) for n in re.findall(r"Total bytes sent: ([\d,]+)", stats)]


CYCLES = {"tar": tar_cycle, "rsync": rsync_cycle}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=list(CYCLES), required=True)
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--period", type=float, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cycle = CYCLES[args.method]
    with args.log.open("a", buffering=1) as log:
        first = True
        while True:
            start = time.monotonic()
            try:
                sent, ok = cycle(args.src, args.target), True
            except OSError as exc:
                print(f"cycle failed: {exc}", flush=True)
                sent, ok = 0, False
            log.write(json.dumps({"start": start, "end": time.monotonic(), "ok": ok, "bytes": sent}) + "\n")
            if first and ok:
                print("first cycle done", flush=True)
                first = False
            time.sleep(max(0.0, start + args.period - time.monotonic()))


if __name__ == "__main__":
    sys.exit(main())
