"""The files the writer makes: each says its name, version and length, and ends with a trailer, so
a reader can tell a complete file from one caught half-written (tar unpacks in place).

    halab-sync <name> v<version> <payload bytes>\\n<payload>\\nend v<version>\\n
"""

from __future__ import annotations

import re

#: Payload sizes, cycled through by file number: small pages to a large asset (mean about 180 KiB).
SIZES = (4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20)
_HEADER = re.compile(rb"halab-sync (\S{1,64}) v(\d{1,9}) (\d{1,9})\n")


def size_of(number: int) -> int:
    return SIZES[number % len(SIZES)]


def render(name: str, version: int, size: int) -> bytes:
    """A whole file: header, `size` bytes of payload (which differ by version), trailer."""
    unit = f"{name} v{version} ".encode()
    payload = (unit * (size // len(unit) + 1))[:size]
    return b"halab-sync %s v%d %d\n%s\nend v%d\n" % (name.encode(), version, size, payload, version)


def verify(data: bytes) -> tuple[str, int] | None:
    """(name, version) of a complete file; None for a part of one (or anything else)."""
    head = _HEADER.match(data)
    if head is None:
        return None
    version, size = int(head[2]), int(head[3])
    trailer = b"\nend v%d\n" % version
    if len(data) != head.end() + size + len(trailer) or not data.endswith(trailer):
        return None
    return head[1].decode(), version
