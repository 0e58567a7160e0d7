"""Gratuitous ARP and unsolicited NA: tell every neighbour's cache that a virtual address now lives here."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6


def gratuitous_arp_frame(mac: bytes, address: IPv4Address) -> bytes:
    """An ARP request for `address` from `address` (sender = target), broadcast: RFC 5227's announcement."""
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, address.packed, b"\0" * 6, address.packed)
    return eth + arp


def send_gratuitous_arps(ifname: str, mac: bytes, addresses: list[IPv4Address], repeat: int = 1) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((ifname, 0))
        _send_arps(s, mac, addresses, repeat)


def _send_arps(s: socket.socket, mac: bytes, addresses: list[IPv4Address], repeat: int) -> None:
    for _ in range(repeat):
        for address in addresses:
            s.send(gratuitous_arp_frame(mac, address))


ALL_NODES = IPv6Address("ff02::1")
ND_NEIGHBOR_ADVERT = 136


def unsolicited_na(mac: bytes, target: IPv6Address) -> bytes:
    """ICMPv6 Neighbor Advertisement, Override set, with our link-layer address (RFC 4861 7.2.6).

    The kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets.
    """
    flags = 0x20000000  # Override
    return struct.pack("!BBHI16sBB6s", ND_NEIGHBOR_ADVERT, 0, 0, flags, target.packed, 2, 1, mac)


def send_unsolicited_nas(ifname: str, ifindex: int, mac: bytes, addresses: list[IPv6Address],
                         repeat: int = 1) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        for _ in range(repeat):
            for address in addresses:
                s.sendto(unsolicited_na(mac, address), (str(ALL_NODES), 0, 0, ifindex))


def announce(ifname: str, ifindex: int, mac: bytes, addresses: list[IPv4Address | IPv6Address],
             repeat: int = 1) -> None:
    """`repeat` gratuitous ARPs for each IPv4 address, unsolicited NAs for each IPv6 one, once (an
    Announcer keeps its socket for the next time)."""
    announcer = Announcer(ifname, ifindex, mac)
    try:
        announcer.announce(addresses, repeat)
    finally:
        announcer.close()


class Announcer:
    """`announce` for one interface, over a packet socket kept open: opening and closing one costs
    milliseconds (the kernel waits for an RCU grace period), which a takeover must not wait for."""

    def __init__(self, ifname: str, ifindex: int, mac: bytes) -> None:
        self.ifname, self.ifindex, self.mac = ifname, ifindex, mac
        self._packet: socket.socket | None = None

    def announce(self, addresses: list[IPv4Address | IPv6Address], repeat: int = 1) -> None:
        v4 = [a for a in addresses if a.version == 4]
        v6 = [a for a in addresses if a.version == 6]
        if v4:
            try:
                _send_arps(self._socket(), self.mac, v4, repeat)
            except OSError:
                self.close()  # the interface was replaced, say: open a new socket once, then give up
                _send_arps(self._socket(), self.mac, v4, repeat)
        if v6:
            send_unsolicited_nas(self.ifname, self.ifindex, self.mac, v6, repeat)

    def open(self) -> None:
        """Open the socket now, before any takeover needs it."""
        self._socket()

    def _socket(self) -> socket.socket:
        if self._packet is None:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: it sends, it never receives
            try:
                s.bind((self.ifname, 0))
            except OSError:
                s.close()
                raise
            self._packet = s
        return self._packet

    def close(self) -> None:
        if self._packet is not None:
            self._packet.close()
            self._packet = None
