"""The running lab's control socket: how `halab fault|vip|status|probe|capture|down` reach it from any shell.

A unix socket in the root-only state directory, mode 0600, answering only its own user (the
peer's uid is checked with SO_PEERCRED). One request per connection, a JSON line of at most
MAX_REQUEST bytes ({"argv": [...]} or {"argv": ["down"]}), read within IDLE_TIMEOUT_S; one JSON
line back ({"rc": N, "out": "..."}). Requests run one at a time, through the same verbs as the prompt.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HalabError
from harness.labinfo import NO_LAB

if TYPE_CHECKING:  # the server's side imports the lab when it starts: a client (`request`) stays light
    from harness.livelab import LiveLab

MAX_REQUEST = 64 * 1024
MAX_ANSWER = 16 * 1024 * 1024  # a status of a large lab is well below
IDLE_TIMEOUT_S = 5.0
#: A verb may take long (a flap of many periods); the client waits this long for its answer.
ANSWER_TIMEOUT_S = 900.0


class ControlServer:
    def __init__(self, live: LiveLab, path: Path, on_down: Callable[[], None]) -> None:
        self.live, self.path, self.on_down = live, path, on_down
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> ControlServer:
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(8)
        sock.settimeout(0.5)  # so that close() is noticed
        self._sock = sock
        from harness.lab import start_thread

        self._thread = start_thread(threading.Thread(target=self._serve, name="halab-control", daemon=True))
        return self

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    pass  # the client went away: nothing to tell it

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(IDLE_TIMEOUT_S)
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
        if uid not in (0, os.geteuid()):
            _send(conn, 2, "Not your lab: only its owner (or root) may control it.")
            return
        data = _read_line(conn, MAX_REQUEST)
        if data is None:
            _send(conn, 2, f"Request larger than {MAX_REQUEST} bytes.")
            return
        try:
            argv = json.loads(data)["argv"]
            if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            _send(conn, 2, 'Bad request: expected {"argv": ["verb", ...]}.')
            return
        conn.settimeout(None)
        if argv == ["ping"]:
            _send(conn, 0, "ready")
        elif argv == ["down"]:
            _send(conn, 0, "tearing the lab down")
            self._closing.set()
            self.on_down()
        else:
            from harness import verbs

            _send(conn, *verbs.execute(self.live, argv))


def _read_line(conn: socket.socket, limit: int) -> bytes | None:
    """Bytes up to a newline or the peer's close; None past `limit` bytes."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            return None
    return data


def _send(conn: socket.socket, rc: int, out: str) -> None:
    conn.sendall(json.dumps({"rc": rc, "out": out}).encode() + b"\n")


def request(path: Path, argv: list[str], timeout: float = ANSWER_TIMEOUT_S) -> tuple[int, str]:
    """Send one verb to the running lab; (exit code, text). A HalabError when no lab answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(json.dumps({"argv": argv}).encode() + b"\n")
            data = _read_line(s, MAX_ANSWER) or b""
    except (FileNotFoundError, ConnectionRefusedError):
        raise NO_LAB from None
    except TimeoutError:
        raise HalabError(f"The lab did not answer within {timeout:g} s.", "See `halab ls`; `halab down` stops it.") \
            from None
    try:
        answer = json.loads(data)
        return int(answer["rc"]), str(answer["out"])
    except (ValueError, KeyError, TypeError):
        raise HalabError("The lab's answer was cut short (did it stop?).", "See `halab ls`.") from None
