"""The tar receiver on the standby: unpacks each stream from the primary into the web root, in
place, as `tar -x` does (a file being unpacked is visible half-written; nothing is deleted).

    python -m harness.contentsync.untar --listen IP --allow IP --root DIR

One connection at a time, only from `--allow`; a stream above MAX_STREAM bytes or idle for
IDLE_TIMEOUT_S is cut. Once tar has finished, one byte tells the sender how it went: 0 unpacked, 1 not.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
from pathlib import Path

from harness.contentsync.push import TAR_PORT

MAX_STREAM = 1 << 30
IDLE_TIMEOUT_S = 10.0


def receive(conn: socket.socket, root: Path) -> bool:
    """Unpack one stream; whether all of it arrived and tar unpacked it (the sender is told)."""
    conn.settimeout(IDLE_TIMEOUT_S)
    received, whole = 0, False
    with subprocess.Popen(["tar", "-C", str(root), "-xf", "-"], stdin=subprocess.PIPE) as tar:
        assert tar.stdin is not None
        try:
            while received <= MAX_STREAM:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    whole = True
                    break
                received += len(chunk)
                tar.stdin.write(chunk)
            else:
                print(f"stream cut: more than {MAX_STREAM} bytes", flush=True)
        except (TimeoutError, ConnectionError, BrokenPipeError) as exc:
            print(f"stream cut: {exc}", flush=True)
        finally:
            try:
                tar.stdin.close()
            except BrokenPipeError:
                pass
    ok = whole and tar.returncode == 0
    try:
        conn.sendall(b"0" if ok else b"1")
    except OSError:
        pass
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--allow", required=True)
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with socket.create_server((args.listen, TAR_PORT)) as server:
        print("listening", flush=True)
        while True:
            conn, (peer, _port) = server.accept()
            with conn:
                if peer == args.allow:
                    receive(conn, args.root)
                else:
                    print(f"refused {peer}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
