"""Raw VRRP sockets (IP protocol 112) for one interface and one IP version.

IPv4 raw sockets hand us the IP header (TTL, source, destination); IPv6 ones do not, so the
hop limit and destination come as ancillary data. Sending, the kernel builds the IP header;
we set TTL / hop limit 255 and the source address, and add the checksum ourselves.
"""

from __future__ import annotations

import functools
import select
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from ha.vrrp import sockfilter
from ha.vrrp.packet import PROTO_VRRP, Address

MULTICAST = {4: IPv4Address("224.0.0.18"), 6: IPv6Address("ff02::12")}
TTL = 255
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


@dataclass(frozen=True)
class Received:
    payload: bytes
    src: Address
    dst: Address
    ttl: int | None  # None: the header was unreadable


class Transport:
    """The interface's VRRP sockets: the main one, and one for the adverts of the masters its backups
    follow (ha.vrrp.sockfilter: so that a flood cannot crowd them out of the queue). Both sit
    behind one epoll descriptor, which is what the agent's loop waits on."""

    def __init__(self, ifname: str, ifindex: int, version: int) -> None:
        self.ifname, self.ifindex, self.version = ifname, ifindex, version
        self.sock = self._open()
        self.followed: frozenset[Address] = frozenset()
        self._follow_sock: socket.socket | None = None
        self._poll = select.epoll()
        self._poll.register(self.sock.fileno(), select.EPOLLIN)

    def _open(self) -> socket.socket:
        family = socket.AF_INET if self.version == 4 else socket.AF_INET6
        ifname, ifindex, version = self.ifname, self.ifindex, self.version
        s = socket.socket(family, socket.SOCK_RAW, PROTO_VRRP)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        if version == 4:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            mreqn = struct.pack("4s4si", MULTICAST[4].packed, b"\0" * 4, ifindex)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                         MULTICAST[6].packed + struct.pack("@I", ifindex))
        s.setblocking(False)
        return s

    def fileno(self) -> int:
        return self._poll.fileno()

    def close(self) -> None:
        self._poll.close()
        self.sock.close()
        if self._follow_sock is not None:
            self._follow_sock.close()

    def follow(self, masters: frozenset[Address]) -> None:
        """Give these sources' packets a queue of their own (none: one queue for all)."""
        if masters == self.followed:
            return
        if not masters:
            sockfilter.detach(self.sock)
            if self._follow_sock is not None:
                self._poll.unregister(self._follow_sock.fileno())
                self._follow_sock.close()
                self._follow_sock = None
        else:
            if self._follow_sock is None:
                self._follow_sock = self._open()
                self._poll.register(self._follow_sock.fileno(), select.EPOLLIN)
            # The new queue first, then the old one lets go: a packet in between lands in both
            # (a duplicate advert is harmless), never in neither.
            sockfilter.attach(self._follow_sock, sockfilter.program(masters, keep_listed=True))
            sockfilter.attach(self.sock, sockfilter.program(masters, keep_listed=False))
        self.followed = masters

    def receive(self) -> Received | None:
        """One packet, the followed masters' first; None when there is nothing left to read."""
        for sock in (self._follow_sock, self.sock):
            if sock is None:
                continue
            try:
                data, anc, _flags, addr = sock.recvmsg(2048, 256)
            except BlockingIOError:
                continue
            return self._parse(data, anc, addr)
        return None

    def _parse(self, data: bytes, anc: list, addr: tuple) -> Received:
        if self.version == 4:
            if len(data) < 20 or data[0] >> 4 != 4:
                return Received(data, IPv4Address(0), IPv4Address(0), None)
            ihl = (data[0] & 0x0F) * 4
            return Received(data[ihl:], _v4(data[12:16]), _v4(data[16:20]), data[8])
        ttl, dst = None, IPv6Address(0)
        for level, kind, value in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                ttl = struct.unpack("@i", value[:4])[0]
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                dst = IPv6Address(value[:16])
        return Received(data, ip_address(addr[0].split("%")[0]), dst, ttl)

    def send(self, payload: bytes, src: Address, dst: Address) -> None:
        if self.version == 4:
            pktinfo = struct.pack("=I4s4s", self.ifindex, src.packed, b"\0" * 4)
            self.sock.sendmsg([payload], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, (str(dst), 0))
        else:
            pktinfo = src.packed + struct.pack("@I", self.ifindex)
            self.sock.sendmsg([payload], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0,
                              (str(dst), 0, 0, self.ifindex))


@functools.lru_cache(maxsize=1024)
def _v4(raw: bytes) -> IPv4Address:
    """One address object per address: a master's adverts carry the same source object each time,
    so the agent's per-wake-up comparisons of whom it follows stop at identity (64 instances at
    advert_int 0.1 s: 640 adverts a second)."""
    return IPv4Address(raw)
