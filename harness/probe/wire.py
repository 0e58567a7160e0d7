"""The probe's wire format, one line per request and reply (a UDP datagram or a TCP line):

    request  b"HALAB <nonce> <seq>\\n"        reply  b"HALAB <nonce> <seq> <server name>\\n"

The nonce tells one client's requests from another's; anything else on the port is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"HALAB"


@dataclass(frozen=True)
class Reply:
    nonce: bytes
    seq: int
    server: str


def request(nonce: bytes, seq: int) -> bytes:
    return MAGIC + b" %s %d\n" % (nonce, seq)


def is_request(line: bytes) -> bool:
    return line.startswith(MAGIC)


def answer(request_line: bytes, server: str) -> bytes:
    """The reply to a request line: the line itself with the server's name appended."""
    return request_line.rstrip(b"\n") + b" " + server.encode() + b"\n"


def parse_reply(data: bytes) -> Reply | None:
    """A reply, or None for anything that is not one."""
    parts = data.split()
    if len(parts) != 4 or parts[0] != MAGIC or not parts[2].isdigit():
        return None
    return Reply(parts[1], int(parts[2]), parts[3].decode(errors="replace"))
