"""Gratuitous ARP: tell every neighbour's ARP cache that a virtual address now lives here."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6


def gratuitous_arp_frame(mac: bytes, address: IPv4Address) -> bytes:
    """An ARP request for `address` from `address` (sender = target), broadcast: RFC 5227's announcement."""
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, address.packed, b"\0" * 6, address.packed)
    return eth + arp


def send_gratuitous_arps(ifname: str, mac: bytes, addresses: list[IPv4Address]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((ifname, 0))
        for address in addresses:
            s.send(gratuitous_arp_frame(mac, address))
