"""Failover assist, the controller's end: tell a backup at once that its master's port went down.

Backup agents with `assist` connect to a unix socket (root only) and say whom they stand in for
(ha/assist.py has the format). When a switch port goes down (OpenFlow port status: the link, not
a lost advert or a lost controller connection) and stays down for `debounce` seconds, for every
address ARP placed on that port and every group watching it, the first backup in line (the one
VRRP would elect) gets one line. The agent decides what to do with it; this side only reports
what the switch saw.

os-ken runs it on its hub: native threads here (a thread per client, a timer per port going
down), so the shared state sits behind one lock.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from pathlib import Path

from os_ken.lib import hub

from controller.locations import Locations
from controller.unixsock import restrict
from ha.assist import DEFAULT_DEBOUNCE_S, IDLE_S, MAX_LINE, Watch, down_line, parse_watch, split_lines

log = logging.getLogger("halab.assist")
MAX_CLIENTS = 256


class Watchers:
    """Who stands in for whom, and which ports are down since when: the logic, without sockets."""

    def __init__(self) -> None:
        self.clients: dict[object, frozenset[Watch]] = {}
        self.down: dict[tuple[int, int], int] = {}  # (dpid, port) -> the token of its going down
        self._tokens = itertools.count(1)
        self.lock = threading.Lock()

    def port_down(self, key: tuple[int, int]) -> int:
        """The port went down; the token that `still_down` checks once the debounce is over."""
        with self.lock:
            token = self.down[key] = next(self._tokens)
        return token

    def port_up(self, key: tuple[int, int]) -> None:
        with self.lock:
            self.down.pop(key, None)

    def still_down(self, key: tuple[int, int], token: int) -> bool:
        """Down since that very event: not up again meanwhile, not down and up and down again."""
        with self.lock:
            return self.down.get(key) == token

    def notices(self, masters: list[str]) -> list[tuple[object, str, int]]:
        """(client, master, group): for each of `masters` and each group watching it, the first
        backup in line (highest priority, then highest address)."""
        with self.lock:
            best: dict[tuple[str, int], tuple[Watch, object]] = {}
            for client, watches in self.clients.items():
                for w in watches:
                    if w.master in masters and ((w.master, w.group) not in best
                                                or w.rank > best[w.master, w.group][0].rank):
                        best[w.master, w.group] = (w, client)
        return [(client, master, group) for (master, group), (_w, client) in sorted(best.items(), key=str)]


class AssistServer:
    def __init__(self, locations: Locations, debounce: float = DEFAULT_DEBOUNCE_S) -> None:
        self.locations = locations
        self.debounce = debounce
        self.watchers = Watchers()

    def port_changed(self, dpid: int, port: int, down: bool) -> None:
        """From the port status handler: a port went down or came back up."""
        key = (dpid, port)
        if not down:
            self.watchers.port_up(key)
            return
        token = self.watchers.port_down(key)
        if self.debounce > 0:
            hub.spawn_after(self.debounce, self._tell, key, token)
        else:
            self._tell(key, token)

    def _tell(self, key: tuple[int, int], token: int) -> None:
        if not self.watchers.still_down(key, token):
            return
        for client, master, group in self.watchers.notices(self.locations.at(*key)):
            line = down_line(master, group)
            try:  # never blocking: a client that does not read loses its connection
                if client.send(line, socket.MSG_DONTWAIT) != len(line):
                    raise BlockingIOError
                log.info("port %d of switch %016x down: told the first backup of group %d that %s is gone",
                         key[1], key[0], group, master)
            except OSError:
                _hang_up(client)

    def serve(self, path: Path, owner: int | None = None) -> None:
        """Accept agents on the unix socket `path` (root's, and `owner`'s)."""
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        restrict(path, owner)
        listener.listen(64)
        hub.spawn(self._accept, listener)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError as exc:  # out of file descriptors, say: wait, not die
                log.warning("assist: accept failed: %s", exc)
                time.sleep(0.1)
                continue
            with self.watchers.lock:
                full = len(self.watchers.clients) >= MAX_CLIENTS
                if not full:
                    self.watchers.clients[client] = frozenset()
            if full:
                client.close()
                continue
            hub.spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        """Read the client's watch lines until it hangs up, sends garbage or stays silent for IDLE_S."""
        client.settimeout(IDLE_S)
        buffer = b""
        try:
            while data := client.recv(MAX_LINE):
                lines, buffer = split_lines(buffer + data)
                for line in lines:
                    if line:
                        watches = parse_watch(line)
                        with self.watchers.lock:
                            self.watchers.clients[client] = watches
        except (OSError, ValueError):
            pass  # timed out, reset, or not our format: the client starts over
        finally:
            with self.watchers.lock:
                self.watchers.clients.pop(client, None)
            client.close()


def _hang_up(client: socket.socket) -> None:
    try:
        client.shutdown(socket.SHUT_RDWR)  # its reader sees the end and forgets it
    except OSError:
        pass
