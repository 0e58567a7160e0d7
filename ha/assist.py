"""Failover assist, the agent's end: hear from the switch's controller that a master's port went down.

A backup notices a dead master only when Master_Down_Interval (three adverts and a skew) has run
out; the switch sees the master's port go down at once (OpenFlow port status). With `assist`, an
agent keeps one connection to the controller's unix socket and says whom it stands in for:

    agent -> controller  {"watch": [{"master": "10.0.0.1", "group": 51, "priority": 100,
                                     "address": "10.0.0.2"}]}\n     (every REFRESH_S, and on each change)
    controller -> agent  {"down": "10.0.0.1", "group": 51}\n   (the port where ARP placed 10.0.0.1 went down)

A group is a VRRP instance's VRID (0: a heartbeat pair). Of the backups of one group only the
first in line hears of it, the one VRRP would elect: the highest priority, then the highest
address. So two backups never take over together; the others follow its adverts as usual.

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
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import TYPE_CHECKING

from ha import announce
from ha.statusfile import state_root

if TYPE_CHECKING:  # pyroute2 is slow to import, and the controller and `halab` need only the format
    from ha import netlink

DEFAULT_SOCKET = state_root() / "assist.sock"
#: A unix socket's path is shorter than this, with its final NUL (sun_path).
UNIX_PATH_MAX = 108
SOCKET_PATH = f"an absolute path shorter than {UNIX_PATH_MAX} bytes"
SOCKET_ALLOWED = f"{SOCKET_PATH}: the controller's assist socket"
#: A line is at most this long, and names at most MAX_WATCH masters: a peer cannot grow our buffers.
MAX_LINE = 4096
MAX_WATCH = 32
#: The agent says what it watches at least this often; the controller drops a client silent for IDLE_S.
REFRESH_S = 5.0
IDLE_S = 3 * REFRESH_S
#: A port must stay down this long before the backups hear of it: a shorter flap moves nothing.
DEFAULT_DEBOUNCE_S = 0.001
MAX_DEBOUNCE_S = 10.0
#: The group of a heartbeat pair (a VRRP instance's is its VRID).
HEARTBEAT_GROUP = 0
#: After a failed connection, try again this much later.
RETRY_S = 1.0


def socket_path_ok(value: str) -> bool:
    return value.startswith("/") and len(value.encode()) < UNIX_PATH_MAX


@dataclass(frozen=True, order=True)
class Watch:
    """A backup's standing request: tell me if `master` goes, for `group` (its VRID, or 0)."""

    master: str
    group: int
    priority: int
    address: str  # the backup's own: second in line to the priority, as in a VRRP election

    @property
    def rank(self) -> tuple[int, IPv4Address]:
        return self.priority, IPv4Address(self.address)


def watch_line(watches: frozenset[Watch]) -> bytes:
    return json.dumps({"watch": [vars(w) for w in sorted(watches)]}).encode() + b"\n"


def parse_watch(line: bytes) -> frozenset[Watch]:
    """The watches a `watch` line names; ValueError for anything else."""
    message = json.loads(line)
    items = message.get("watch") if isinstance(message, dict) else None
    if not isinstance(items, list) or len(items) > MAX_WATCH:
        raise ValueError(f"expected {{\"watch\": [at most {MAX_WATCH} watches]}}")
    return frozenset(_watch(item) for item in items)


def _watch(item: object) -> Watch:
    if not isinstance(item, dict) or set(item) != {"master", "group", "priority", "address"}:
        raise ValueError("a watch has master, group, priority and address")
    master, group, priority, address = item["master"], item["group"], item["priority"], item["address"]
    if (not isinstance(group, int) or not isinstance(priority, int) or isinstance(group, bool)
            or isinstance(priority, bool) or not 0 <= group <= 255 or not 0 <= priority <= 255
            or not isinstance(master, str) or not isinstance(address, str)):
        raise ValueError("a watch's group and priority are 0 to 255, its master and address strings")
    for a in (master, address):
        if ip_address(a).version != 4:
            raise ValueError(f"{a}: IPv4 only")
    return Watch(master, group, priority, address)


def down_line(master: str, group: int) -> bytes:
    return json.dumps({"down": master, "group": group}).encode() + b"\n"


def parse_down(line: bytes) -> tuple[str, int]:
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("down"), str) \
            or not isinstance(message.get("group"), int):
        raise ValueError('expected {"down": ADDRESS, "group": GROUP}')
    return message["down"], message["group"]


def split_lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines in `buffer` and what is left; ValueError when a line outgrows MAX_LINE."""
    *lines, rest = buffer.split(b"\n")
    if len(rest) > MAX_LINE or any(len(line) > MAX_LINE for line in lines):
        raise ValueError(f"a line longer than {MAX_LINE} bytes")
    return lines, rest


def announce_self(links: list[netlink.Link]) -> None:
    """A gratuitous ARP of each link's own IPv4 address: the controller locates nodes by ARP, and a
    node that only ever answered (never asked) would not be found. Best effort."""
    from ha import netlink

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
        self.watched: frozenset[Watch] = frozenset()
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

    def watch(self, watches: frozenset[Watch], now: float) -> None:
        """Say whom we stand in for (at most MAX_WATCH), now if connected."""
        watches = frozenset(sorted(watches)[:MAX_WATCH])
        if watches != self.watched:
            self.watched = watches
            if self.sock is not None:
                self._send(now)

    def read(self) -> list[tuple[str, int]]:
        """(master, group) of each notice the controller sent; on end of stream or a malformed
        line, the notices before it, and the connection closed."""
        if self.sock is None:
            return []
        notices: list[tuple[str, int]] = []
        try:
            data = self.sock.recv(MAX_LINE)
            if not data:
                raise ValueError("the controller closed the connection")
            lines, self.buffer = split_lines(self.buffer + data)
            for line in lines:
                if line:
                    notices.append(parse_down(line))
        except BlockingIOError:
            pass
        except (OSError, ValueError):
            self.close()
        return notices

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
            sock.setblocking(False)  # a controller too busy to accept (its queue full) must not stall the loop
            if sock.connect_ex(str(self.path)) != 0:  # EAGAIN, ECONNREFUSED, ...: try again later
                sock.close()
                return None
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
