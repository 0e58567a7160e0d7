"""Interface facts and address changes through netlink (pyroute2), for the agents on a host."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_address

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from ha.vrrp.packet import Address


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: bytes
    up: bool


def link(name: str) -> Link:
    """The interface `name`, or ValueError naming it."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise ValueError(f"interface {name!r} does not exist on this host")
        msg = ipr.get_links(found[0])[0]
    mac = bytes.fromhex(msg.get_attr("IFLA_ADDRESS").replace(":", ""))
    up = msg.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
    return Link(found[0], name, mac, up)


def primary_address(ifindex: int, version: int) -> Address:
    """The interface's first address of that IP version (link-local for IPv6), the VRRP source."""
    with IPRoute() as ipr:
        for msg in ipr.get_addr(index=ifindex):
            addr = ip_address(msg.get_attr("IFA_ADDRESS"))
            if addr.version == version and (version == 4 or addr.is_link_local):
                return addr
    raise ValueError(f"interface index {ifindex} has no IPv{version} {'link-local ' if version == 6 else ''}address")


_shared: IPRoute | None = None


def _ipr() -> IPRoute:
    """One netlink socket for address changes, kept open: a takeover should not wait to open one."""
    global _shared
    if _shared is None:
        _shared = IPRoute()
    return _shared


def warm_up() -> None:
    """Open the shared socket and let pyroute2 build its message classes now: done lazily at the
    first takeover, that costs milliseconds of outage."""
    _ipr().get_addr(index=1)


def add_addresses(ifindex: int, addresses: tuple[IPv4Interface | IPv6Interface, ...]) -> None:
    ipr = _ipr()
    for a in addresses:
        try:
            # a VIP must be usable at once: no duplicate address detection for IPv6
            ipr.addr("add", index=ifindex, address=str(a.ip), prefixlen=a.network.prefixlen,
                     flags=IFA_F_NODAD if a.version == 6 else 0)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise


def remove_addresses(ifindex: int, addresses: tuple[IPv4Interface | IPv6Interface, ...]) -> None:
    ipr = _ipr()
    for a in addresses:
        try:
            ipr.addr("del", index=ifindex, address=str(a.ip), prefixlen=a.network.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EADDRNOTAVAIL:
                raise


class LinkMonitor:
    """Link up/down events from the kernel (RTMGRP_LINK), for the agent's selector: no polling.

    The socket is our own and pyroute2 only parses: pyroute2's own sockets read ahead into an
    internal queue, which a selector cannot see, so events would wait for the next packet.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)
        self.marshal = MarshalRtnl()

    def fileno(self) -> int:
        return self.sock.fileno()

    def changes(self) -> list[tuple[str, bool]]:
        """(interface, up) for every link message waiting."""
        found = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return found
            for msg in self.marshal.parse(data):
                if msg["event"] in ("RTM_NEWLINK", "RTM_DELLINK"):
                    up = msg["event"] == "RTM_NEWLINK" and msg.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
                    found.append((msg.get_attr("IFLA_IFNAME"), up))

    def close(self) -> None:
        self.sock.close()
