"""The heartbeat message on the wire: who sends it, which life of the node, which beat, its state,
and the proof that it is fresh.

    magic "HBT2" | state (1) | flags (1) | node id length (1) | pad (1)
    incarnation (8) | sequence (8) | nonce (8) | echo (8) | node id (utf-8)
    | HMAC-SHA256 over all of it, first 16 bytes

The incarnation is the sender's start time in nanoseconds, so a restarted node is a new life
(its sequence numbers start again). Every beat carries a fresh random nonce, and echoes the
latest nonce the sender heard from its peer: a beat that echoes none of the receiver's recent
nonces proves nothing about now, however well it is signed (freshness.py). The HMAC with the
cluster's shared secret keeps strangers from speaking for a member.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"HBT2"
HEADER = struct.Struct("!4sBBBxQQQQ")
MAC_LEN = 16
MAX_NODE_ID = 64


class State(IntEnum):
    STANDBY = 1
    ACTIVE = 2
    STOPPING = 3  # releasing its resources: the peer must not take them yet
    FAULT = 4     # cannot run the resources here (a monitor failed), wants the peer to take them


class PacketError(ValueError):
    """A message the agent drops; the text says why (counted in status)."""


@dataclass(frozen=True)
class Heartbeat:
    node: str
    incarnation: int
    seq: int
    state: State
    nonce: int = 0  # random, new in every beat
    echo: int = 0  # the latest nonce the sender heard from its peer (0: none yet)
    flags: int = 0


def encode(beat: Heartbeat, secret: bytes) -> bytes:
    node = beat.node.encode()
    if not 0 < len(node) <= MAX_NODE_ID:
        raise ValueError(f"node id {beat.node!r}: 1 to {MAX_NODE_ID} bytes")
    body = HEADER.pack(MAGIC, beat.state, beat.flags, len(node), beat.incarnation, beat.seq, beat.nonce,
                       beat.echo) + node
    return body + hmac.new(secret, body, hashlib.sha256).digest()[:MAC_LEN]


def decode(data: bytes, secret: bytes) -> Heartbeat:
    if len(data) < HEADER.size + 1 + MAC_LEN:
        raise PacketError("short")
    magic, state, flags, n, incarnation, seq, nonce, echo = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PacketError("not a heartbeat")
    if len(data) != HEADER.size + n + MAC_LEN:
        raise PacketError("bad length")
    body, mac = data[:-MAC_LEN], data[-MAC_LEN:]
    if not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()[:MAC_LEN]):
        raise PacketError("bad signature")
    try:
        return Heartbeat(data[HEADER.size:HEADER.size + n].decode(), incarnation, seq, State(state), nonce, echo,
                         flags)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PacketError(f"bad field ({exc})") from None
