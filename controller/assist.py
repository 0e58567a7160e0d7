"""Failover assist, the controller's end: tell the backups at once that their master's port went down.

Backup agents with `assist` connect to a unix socket (root only) and name the masters they follow
(ha/assist.py has the format). When a switch port goes down (OpenFlow port status: the link, not a
lost advert or a lost controller connection) and stays down for `debounce` seconds, every client
watching an address that ARP placed on that port gets one line naming it. The agent decides what
to do with it; this side only reports what the switch saw.

Everything runs on os-ken's hub (eventlet), like the handlers that call `port_changed`.
"""

from __future__ import annotations

import itertools
import logging
import socket
from pathlib import Path

from os_ken.lib import hub

from controller.locations import Locations
from ha.assist import DEFAULT_DEBOUNCE_S, IDLE_S, MAX_LINE, down_line, parse_watch, split_lines

log = logging.getLogger("halab.assist")
MAX_CLIENTS = 256


class Watchers:
    """Who watches which address, and which ports are down since when: the logic, without sockets."""

    def __init__(self) -> None:
        self.clients: dict[object, frozenset[str]] = {}
        self.down: dict[tuple[int, int], int] = {}  # (dpid, port) -> the token of its going down
        self._tokens = itertools.count(1)

    def port_down(self, key: tuple[int, int]) -> int:
        """The port went down; the token that `still_down` checks once the debounce is over."""
        token = self.down[key] = next(self._tokens)
        return token

    def port_up(self, key: tuple[int, int]) -> None:
        self.down.pop(key, None)

    def still_down(self, key: tuple[int, int], token: int) -> bool:
        """Down since that very event: not up again meanwhile, not down and up and down again."""
        return self.down.get(key) == token

    def notices(self, addresses: list[str]) -> list[tuple[object, str]]:
        """(client, address) for every client watching one of `addresses`."""
        return [(client, a) for client, watched in self.clients.items() for a in addresses if a in watched]


class AssistServer:
    def __init__(self, locations: Locations, debounce: float = DEFAULT_DEBOUNCE_S) -> None:
        self.locations = locations
        self.debounce = debounce
        self.watchers = Watchers()

    def port_changed(self, dp, port: int, down: bool) -> None:
        """From the port status handler: a port went down or came back up."""
        key = (dp.id, port)
        if not down:
            self.watchers.port_up(key)
            return
        token = self.watchers.port_down(key)
        if self.debounce > 0:
            hub.spawn_after(self.debounce, self._tell, dp, port, token)
        else:
            self._tell(dp, port, token)

    def _tell(self, dp, port: int, token: int) -> None:
        if not self.watchers.still_down((dp.id, port), token):
            return
        for client, address in self.watchers.notices(self.locations.at(dp, port)):
            line = down_line(address)
            try:  # never blocking the hub: a client that does not read loses its connection
                raw = getattr(client, "fd", client)  # the plain socket under eventlet's green one
                if raw.send(line, socket.MSG_DONTWAIT) != len(line):
                    raise BlockingIOError
                log.info("port %d of switch %016x down: told a backup that %s is gone", port, dp.id, address)
            except OSError:
                _hang_up(client)

    def serve(self, path: Path) -> None:
        """Accept agents on the unix socket `path` (root only) in a green thread of the hub."""
        path.unlink(missing_ok=True)
        listener = hub.listen(str(path), family=socket.AF_UNIX)
        path.chmod(0o600)
        hub.spawn(self._accept, listener)

    def _accept(self, listener) -> None:
        while True:
            client, _ = listener.accept()
            if len(self.watchers.clients) >= MAX_CLIENTS:
                client.close()
                continue
            hub.spawn(self._serve, client)

    def _serve(self, client) -> None:
        """Read the client's watch lines until it hangs up, sends garbage or stays silent for IDLE_S."""
        self.watchers.clients[client] = frozenset()
        client.settimeout(IDLE_S)
        buffer = b""
        try:
            while data := client.recv(MAX_LINE):
                lines, buffer = split_lines(buffer + data)
                for line in lines:
                    if line:
                        self.watchers.clients[client] = parse_watch(line)
        except (OSError, ValueError):
            pass  # timed out, reset, or not our format: the client starts over
        finally:
            self.watchers.clients.pop(client, None)
            client.close()


def _hang_up(client) -> None:
    try:
        client.shutdown(socket.SHUT_RDWR)  # its reader sees the end and forgets it
    except OSError:
        pass
