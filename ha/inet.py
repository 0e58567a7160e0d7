"""The Internet checksum (RFC 1071), shared by VRRP adverts and the tie-breaker's ICMP echoes."""

from __future__ import annotations

import struct


def internet_checksum(data: bytes) -> int:
    """One's complement of the one's complement sum of `data` as 16-bit words (odd length: zero pad)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
