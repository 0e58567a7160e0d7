"""Interface facts (pyroute2) and address changes (by hand) through netlink, for the agents on a host."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
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


def warm_up() -> None:
    """Open the address socket and let pyroute2 build its message classes now (for the link
    lookups): done lazily at the first takeover, that costs milliseconds of outage."""
    with IPRoute() as ipr:
        ipr.get_addr(index=1)
    _addresses()


# Address changes are written by hand on a netlink socket of our own: 0.04 ms a change against
# pyroute2's 0.33 ms (medians of 30, idle machine; more under load), and a takeover waits for them.
RTM_NEWADDR, RTM_DELADDR = 20, 21
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFA_ADDRESS, IFA_LOCAL = 1, 2
NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
ATTRIBUTE = struct.Struct("=HH")  # length, type
#: How long an address change may take before the agent hears of it as an error.
ANSWER_TIMEOUT_S = 1.0


class _AddressSocket:
    """One netlink socket for address changes, kept open: a takeover should not wait to open one."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.sock.settimeout(ANSWER_TIMEOUT_S)
        self.seq = 0
        self.lock = threading.Lock()

    def change(self, kind: int, ifindex: int, address: IPv4Interface | IPv6Interface) -> int:
        """Send one change and wait for its answer: 0, or the kernel's errno."""
        with self.lock:
            self.seq = self.seq % 0xFFFFFFFF + 1
            self.sock.send(address_message(kind, self.seq, ifindex, address))
            while True:
                answer = self.sock.recv(65536)
                _length, kind_, _flags, seq, _port = NLMSG_HEADER.unpack_from(answer)
                if kind_ == NLMSG_ERROR and seq == self.seq:  # an older, abandoned answer is skipped
                    return -struct.unpack_from("=i", answer, NLMSG_HEADER.size)[0]


def address_message(kind: int, seq: int, ifindex: int, address: IPv4Interface | IPv6Interface) -> bytes:
    """RTM_NEWADDR or RTM_DELADDR for `address` on `ifindex`, asking for an answer; a new IPv6
    address is usable at once (no duplicate address detection)."""
    packed = address.ip.packed
    attributes = b"".join(ATTRIBUTE.pack(ATTRIBUTE.size + len(packed), t) + packed for t in (IFA_LOCAL, IFA_ADDRESS))
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    body = IFADDRMSG.pack(family, address.network.prefixlen, IFA_F_NODAD if address.version == 6 else 0, 0,
                          ifindex) + attributes
    flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if kind == RTM_NEWADDR else 0)
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), kind, flags, seq, 0) + body


_address_socket: _AddressSocket | None = None


def _addresses() -> _AddressSocket:
    global _address_socket
    if _address_socket is None:
        _address_socket = _AddressSocket()
    return _address_socket


def add_addresses(ifindex: int, addresses: tuple[IPv4Interface | IPv6Interface, ...]) -> None:
    """Add each address (one already there is fine); NetlinkError for anything else."""
    for a in addresses:
        code = _addresses().change(RTM_NEWADDR, ifindex, a)
        if code not in (0, errno.EEXIST):
            raise NetlinkError(code, f"adding {a} to interface {ifindex}: {os.strerror(code)}")


def remove_addresses(ifindex: int, addresses: tuple[IPv4Interface | IPv6Interface, ...]) -> None:
    """Remove each address (one already gone is fine); NetlinkError for anything else."""
    for a in addresses:
        code = _addresses().change(RTM_DELADDR, ifindex, a)
        if code not in (0, errno.EADDRNOTAVAIL):
            raise NetlinkError(code, f"removing {a} from interface {ifindex}: {os.strerror(code)}")


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
