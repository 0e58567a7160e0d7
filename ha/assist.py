"""Failover assist, the agent's end: hear from the switch's controller that a master's port went down.

A backup notices a dead master only when Master_Down_Interval (three adverts and a skew) has run
out; the switch sees the master's port go down at once (OpenFlow port status). With `assist`, an
agent keeps one connection to the controller's unix socket and names the masters it follows:

    agent -> controller   {"watch": ["10.0.0.1"]}\\n      (again every REFRESH_S, and on each change)
    controller -> agent   {"down": "10.0.0.1"}\\n         (the port where ARP placed 10.0.0.1 went down)

A notice only shortens detection: the agent's state machine still decides. Without the
controller (not there, gone, frozen) nothing changes but the speed. The socket is trusted for
being root's alone (mode 0600, checked before connecting), as the fencing socket is.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

from ha import announce, netlink
from ha.statusfile import state_root

DEFAULT_SOCKET = state_root() / "assist.sock"
#: A unix socket's path is shorter than this, with its final NUL (sun_path).
UNIX_PATH_MAX = 108
#: A line is at most this long, and names at most MAX_WATCH addresses: a peer cannot grow our buffers.
MAX_LINE = 4096
MAX_WATCH = 64
#: The agent says what it watches at least this often; the controller drops a client silent for IDLE_S.
REFRESH_S = 5.0
IDLE_S = 3 * REFRESH_S
#: A port must stay down this long before the backups hear of it: a shorter flap moves nothing.
DEFAULT_DEBOUNCE_S = 0.001
MAX_DEBOUNCE_S = 10.0
#: After a failed connection, try again this much later.
RETRY_S = 1.0


def watch_line(addresses: frozenset[str]) -> bytes:
    return json.dumps({"watch": sorted(addresses)}).encode() + b"\n"


def parse_watch(line: bytes) -> frozenset[str]:
    """The addresses a `watch` line names; ValueError for anything else."""
    message = json.loads(line)
    addresses = message.get("watch") if isinstance(message, dict) else None
    if not isinstance(addresses, list) or len(addresses) > MAX_WATCH or not all(isinstance(a, str) for a in addresses):
        raise ValueError(f"expected {{\"watch\": [at most {MAX_WATCH} addresses]}}")
    return frozenset(addresses)


def down_line(address: str) -> bytes:
    return json.dumps({"down": address}).encode() + b"\n"


def parse_down(line: bytes) -> str:
    message = json.loads(line)
    address = message.get("down") if isinstance(message, dict) else None
    if not isinstance(address, str):
        raise ValueError('expected {"down": ADDRESS}')
    return address


def split_lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines in `buffer` and what is left; ValueError when a line outgrows MAX_LINE."""
    *lines, rest = buffer.split(b"\n")
    if len(rest) > MAX_LINE or any(len(line) > MAX_LINE for line in lines):
        raise ValueError(f"a line longer than {MAX_LINE} bytes")
    return lines, rest


def announce_self(links: list[netlink.Link]) -> None:
    """A gratuitous ARP of each link's own IPv4 address: the controller locates nodes by ARP, and a
    node that only ever answered (never asked) would not be found. Best effort."""
    for link in links:
        try:
            announce.announce(link.name, link.index, link.mac, [netlink.primary_address(link.index, 4)])
        except (OSError, ValueError):
            pass  # no address (yet): found once it ARPs


class AssistLink:
    """One connection to the controller's assist socket, made again (RETRY_S later) when it fails.

    `watch(sock)` and `unwatch(sock)` tell the agent's loop which socket to wait on."""

    def __init__(self, path: Path, watch: Callable[[socket.socket], None] = lambda _s: None,
                 unwatch: Callable[[socket.socket], None] = lambda _s: None) -> None:
        self.path = path
        self._watch, self._unwatch = watch, unwatch
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.watched: frozenset[str] = frozenset()
        self.retry_at = 0.0
        self.refresh_at = 0.0

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def due(self) -> float:
        """When `step` has something to do."""
        return self.refresh_at if self.connected else self.retry_at

    def step(self, now: float) -> bool:
        """Connect when due, or say again what we watch; True when it has just connected."""
        if self.sock is None:
            if now < self.retry_at:
                return False
            self.retry_at = now + RETRY_S
            self.sock = self._connect()
            if self.sock is None:
                return False
            self._send(now)
            return self.sock is not None
        if now >= self.refresh_at:
            self._send(now)
        return False

    def watch(self, addresses: frozenset[str], now: float) -> None:
        """Name the masters to hear about (at most MAX_WATCH), now if connected."""
        addresses = frozenset(sorted(addresses)[:MAX_WATCH])
        if addresses != self.watched:
            self.watched = addresses
            if self.sock is not None:
                self._send(now)

    def read(self) -> list[str]:
        """The addresses whose port went down, from what the controller sent; [] and closed on
        end of stream or anything malformed."""
        if self.sock is None:
            return []
        try:
            data = self.sock.recv(MAX_LINE)
            if not data:
                raise ValueError("the controller closed the connection")
            lines, self.buffer = split_lines(self.buffer + data)
            return [parse_down(line) for line in lines if line]
        except BlockingIOError:
            return []
        except (OSError, ValueError):
            self.close()
            return []

    def close(self) -> None:
        if self.sock is not None:
            self._unwatch(self.sock)
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _connect(self) -> socket.socket | None:
        try:
            info = os.stat(self.path)
            if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
                return None  # not a socket of ours closed to others: not the controller we trust
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(0.2)
            try:
                sock.connect(str(self.path))
            except OSError:
                sock.close()
                return None
            sock.setblocking(False)
            self._watch(sock)
            return sock
        except OSError:
            return None

    def _send(self, now: float) -> None:
        """Best effort and never blocking: a controller that does not read loses the connection."""
        assert self.sock is not None
        line = watch_line(self.watched)
        try:
            if self.sock.send(line) != len(line):
                raise BlockingIOError
            self.refresh_at = now + REFRESH_S
        except OSError:
            self.close()
