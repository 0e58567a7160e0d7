"""The VRRPv3 advertisement on the wire (RFC 9568 section 5), small and exact.

     0                   1                   2                   3
    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
    |(rsvd) |     Max Adver Int     |          Checksum             |
    |                       IPvX Address(es)                        |

The checksum covers the VRRP message and, for IPv6 always, a pseudo-header. For IPv4,
implementations disagree: keepalived and FRR add the IPv4 pseudo-header by default, RFC 9568
and some vendors do not. `encode` takes the form as an argument; `decode` accepts both.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from ha.inet import internet_checksum

VERSION = 3
TYPE_ADVERTISEMENT = 1
PROTO_VRRP = 112
HEADER_LEN = 8
MAX_ADVER_INT_CS = 0x0FFF  # 12 bits of centiseconds: 40.95 s

Address = IPv4Address | IPv6Address


class PacketError(ValueError):
    """A packet the agent must drop; `reason` is a short counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Advert:
    vrid: int
    priority: int
    max_adver_int_cs: int
    addresses: tuple[Address, ...]

    @property
    def interval(self) -> float:
        """Max_Adver_Int in seconds."""
        return self.max_adver_int_cs / 100


def checksum(message: bytes, src: Address, dst: Address, pseudo_header: bool = True) -> int:
    """Internet checksum of `message` (its checksum field zero), with or without the pseudo-header."""
    pseudo = b""
    if pseudo_header:
        if src.version == 4:
            pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, PROTO_VRRP, len(message))
        else:
            pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(message), PROTO_VRRP)
    return internet_checksum(pseudo + message)


def encode(adv: Advert, src: Address, dst: Address, pseudo_header: bool = True) -> bytes:
    """The VRRP message (the IP payload). IPv6 always carries the pseudo-header."""
    if not 1 <= adv.vrid <= 255 or not 0 <= adv.priority <= 255:
        raise ValueError(f"vrid {adv.vrid} / priority {adv.priority} out of range")
    if not 0 < adv.max_adver_int_cs <= MAX_ADVER_INT_CS:
        raise ValueError(f"max_adver_int {adv.max_adver_int_cs} cs out of range 1..{MAX_ADVER_INT_CS}")
    if any(a.version != src.version for a in adv.addresses) or not 0 < len(adv.addresses) <= 255:
        raise ValueError("addresses must be 1 to 255 of the source's IP version")
    head = struct.pack("!BBBBH", VERSION << 4 | TYPE_ADVERTISEMENT, adv.vrid, adv.priority, len(adv.addresses),
                       adv.max_adver_int_cs)
    body = b"".join(a.packed for a in adv.addresses)
    ck = checksum(head + b"\0\0" + body, src, dst, pseudo_header or src.version == 6)
    return head + struct.pack("!H", ck) + body


def decode(data: bytes, src: Address, dst: Address) -> Advert:
    """Parse and validate a VRRP message; raise PacketError for anything to drop."""
    if len(data) < HEADER_LEN:
        raise PacketError("truncated", f"{len(data)} bytes")
    ver_type, vrid, priority, count, rsvd_int, ck = struct.unpack("!BBBBHH", data[:HEADER_LEN])
    if ver_type >> 4 != VERSION:
        raise PacketError("bad_version", str(ver_type >> 4))
    if ver_type & 0x0F != TYPE_ADVERTISEMENT:
        raise PacketError("bad_type", str(ver_type & 0x0F))
    size = 4 if src.version == 4 else 16
    if count == 0 or len(data) != HEADER_LEN + count * size:
        raise PacketError("bad_length", f"{len(data)} bytes for {count} addresses")
    if vrid == 0:
        raise PacketError("bad_vrid", "0")
    interval = rsvd_int & MAX_ADVER_INT_CS
    if interval == 0:
        raise PacketError("bad_interval", "0")
    zeroed = data[:6] + b"\0\0" + data[HEADER_LEN:]
    forms = (True,) if src.version == 6 else (True, False)
    if all(checksum(zeroed, src, dst, form) != ck for form in forms):
        raise PacketError("bad_checksum", f"{ck:#06x}")
    body = data[HEADER_LEN:]
    addresses = tuple(ip_address(body[i:i + size]) for i in range(0, len(body), size))
    return Advert(vrid, priority, interval, addresses)
