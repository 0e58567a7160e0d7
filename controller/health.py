"""Active health checks, sent by the controller as packet-outs from the VIP.

Why from the controller and not from an agent on a host: the controller is the one component
that already reaches every backend (through the switch, as the VIP), so checks need no extra
host, no address of their own and no channel back; a backend answers the VIP exactly as it
answers clients, so a check tests the path clients use. The cost is a tiny TCP client here:

- tcp:  SYN -> SYN-ACK is healthy (then RST), RST or silence is not (a half-open check);
- http: SYN -> SYN-ACK -> "GET path" -> a 2xx or 3xx status line is healthy (then RST);
- udp:  a datagram -> any datagram back is healthy, ICMP unreachable or silence is not.

Replies come back to ports 61440-65535, above Linux's ephemeral range, so they never collide
with client connections to the VIP. The fall/rise arithmetic is pool.HealthState.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from os_ken.lib.packet import ethernet, icmp, ipv4, packet, tcp, udp

from controller.ids import CHECK_PORT_BASE
from controller.lb_flows import ETH_IP, PROTO_NUMBER


@dataclass(frozen=True)
class Endpoints:
    """Who talks to whom in a check: the VIP (MAC and address) and one backend."""

    vip_mac: str
    vip: IPv4Address
    backend_mac: str
    backend: IPv4Address
    backend_port: int


_ports = itertools.cycle(range(CHECK_PORT_BASE, 0x10000))


@dataclass
class Check:
    """One check in flight. `start` gives the first frame; `on_reply` the verdict and a frame to send."""

    kind: str
    ends: Endpoints
    deadline: float
    path: str = "/"
    send: bytes = b""
    sport: int = field(default_factory=lambda: next(_ports))
    seq: int = field(default_factory=lambda: random.getrandbits(32))
    request_sent: bool = False
    after_reset: bool = False  # sent at once because the backend reset a client's connection

    def verdict(self, ok: bool) -> str:
        """The reason a result gives in the event log."""
        return ("check passed" if ok else "check failed") + (
            " (checked at once: it reset a client's connection)" if self.after_reset else "")

    def start(self) -> bytes:
        if self.kind == "udp":
            return self._frame(udp.udp(src_port=self.sport, dst_port=self.ends.backend_port), self.send)
        return self._tcp(tcp.TCP_SYN, self.seq, 0)

    def on_reply(self, pkt: packet.Packet) -> tuple[bool | None, bytes | None]:
        """(True/False when decided, None while waiting; a frame to send back or None)."""
        if pkt.get_protocol(icmp.icmp) is not None:
            return False, None  # port or host unreachable
        if self.kind == "udp":
            return (True, None) if pkt.get_protocol(udp.udp) is not None else (None, None)
        seg = pkt.get_protocol(tcp.tcp)
        if seg is None:
            return None, None
        if seg.has_flags(tcp.TCP_RST):
            return False, None
        if not self.request_sent and seg.has_flags(tcp.TCP_SYN, tcp.TCP_ACK):
            if self.kind == "tcp":
                return True, self._tcp(tcp.TCP_RST, self.seq + 1, 0)
            self.request_sent = True
            return None, self._tcp(tcp.TCP_ACK | tcp.TCP_PSH, self.seq + 1, seg.seq + 1, self.request)
        body = pkt.protocols[-1] if isinstance(pkt.protocols[-1], bytes) else b""
        if self.request_sent and body:
            parts = body.split(b" ", 2)
            ok = len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1][:1] in (b"2", b"3")
            return ok, self._tcp(tcp.TCP_RST, self.seq + 1 + len(self.request), 0)
        return None, None

    @property
    def request(self) -> bytes:
        return f"GET {self.path} HTTP/1.0\r\nHost: {self.ends.backend}\r\n\r\n".encode()

    def _tcp(self, flags: int, seq: int, ack: int, payload: bytes = b"") -> bytes:
        seg = tcp.tcp(src_port=self.sport, dst_port=self.ends.backend_port, seq=seq, ack=ack, bits=flags,
                      window_size=65535)
        return self._frame(seg, payload)

    def _frame(self, l4, payload: bytes) -> bytes:
        e = self.ends
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(dst=e.backend_mac, src=e.vip_mac, ethertype=ETH_IP))
        proto = PROTO_NUMBER["udp" if isinstance(l4, udp.udp) else "tcp"]
        pkt.add_protocol(ipv4.ipv4(src=str(e.vip), dst=str(e.backend), proto=proto, ttl=64))
        pkt.add_protocol(l4)
        if payload:
            pkt.add_protocol(payload)
        pkt.serialize()
        return bytes(pkt.data)
