"""The quorum tie-breaker: ICMP echo from the agent's own loop, no process per check.

A two-node cluster cannot vote, so a third party breaks the tie: the node that can still reach
the tie-breaker (the gateway) may take over; the one that cannot keeps still. What counts is an
answer to an echo sent after the peer fell silent — an older answer says nothing about the
network the node is in now (it may itself be the one that was cut off, or fenced).
"""

from __future__ import annotations

import math
import os
import socket
import struct
from ipaddress import IPv4Address

from ha.inet import internet_checksum

ECHO_REQUEST, ECHO_REPLY = 8, 0


class TieBreaker:
    def __init__(self, address: IPv4Address, every: float) -> None:
        self.address, self.every = str(address), every
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock.setblocking(False)
        self.ident = os.getpid() & 0xFFFF
        self.seq = 0
        self.sent: dict[int, float] = {}
        self.answered_sent_at = -math.inf  # when the newest answered echo was sent
        self.next_send = 0.0

    def fileno(self) -> int:
        return self.sock.fileno()

    def tick(self, now: float) -> None:
        if now < self.next_send:
            return
        self.next_send = now + self.every
        self.seq = (self.seq + 1) & 0xFFFF
        header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, self.ident, self.seq)
        body = b"halab-quorum"
        packet = struct.pack("!BBHHH", ECHO_REQUEST, 0, internet_checksum(header + body), self.ident, self.seq) + body
        self.sent[self.seq] = now
        for old in [s for s, t in self.sent.items() if now - t > 5]:
            del self.sent[old]
        try:
            self.sock.sendto(packet, (self.address, 0))
        except OSError:
            pass  # no route: no answer, no quorum

    def receive(self) -> None:
        while True:
            try:
                data, (src, _port) = self.sock.recvfrom(1500)
            except BlockingIOError:
                return
            ihl = (data[0] & 0x0F) * 4
            if src != self.address or len(data) < ihl + 8:
                continue
            kind, _code, _csum, ident, seq = struct.unpack_from("!BBHHH", data, ihl)
            if kind == ECHO_REPLY and ident == self.ident and seq in self.sent:
                self.answered_sent_at = max(self.answered_sent_at, self.sent.pop(seq))

    def reachable(self, now: float, within: float) -> bool:
        """The tie-breaker answered an echo sent in the last `within` seconds."""
        return self.answered_sent_at >= now - within

    def answered_since(self, t: float) -> bool:
        """It answered an echo sent after `t`."""
        return self.answered_sent_at > t
