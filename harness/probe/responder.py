"""The probe responder: answers UDP and TCP probes with its server's name, IPv4 and IPv6."""

from __future__ import annotations

import selectors
import signal
import socket
import struct
import time
from collections.abc import Callable
from functools import partial

from harness.probe import wire
from harness.probe.capacity import Capacity

Respond = Callable[[Callable[[], None]], None]

#: Linux's IP_PKTINFO; Python names it only on some builds.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def serve(name: str, port: int, binds: tuple[str, ...] = ("0.0.0.0", "::"), stop_after: float | None = None,
          capacity: Capacity | None = None) -> None:
    """Answer UDP and TCP probes on `port`, IPv4 and IPv6, until SIGTERM (or `stop_after` seconds);
    at once, or through `capacity` (a fixed service time per request, a bounded number at a time).

    UDP replies leave from the address the request was sent to (IP_PKTINFO / IPV6_PKTINFO), so
    a client that talks to the VIP hears the VIP answer, not the server's own address.
    """
    sel = selectors.DefaultSelector()
    listeners = []
    for bind in binds:
        try:
            listeners += _listen(bind, port, sel)
        except OSError as exc:
            if ":" not in bind:
                raise
            print(f"no IPv6 here ({exc.strerror}); serving IPv4 only", flush=True)
    buffers: dict[socket.socket, bytes] = {}
    deadline = None if stop_after is None else time.monotonic() + stop_after

    def respond(answer: Callable[[], None]) -> None:
        if capacity is None:
            answer()
        else:
            capacity.submit(time.monotonic(), answer)

    limit = f", {capacity.workers} at a time, {capacity.service * 1000:g} ms each" if capacity else ""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        print(f"serving {name} on udp+tcp port {port}{limit}", flush=True)
        while deadline is None or time.monotonic() < deadline:
            due = capacity.next_due() if capacity else None
            for key, _ in sel.select(timeout=0.5 if due is None else min(0.5, max(0.0, due - time.monotonic()))):
                if key.data == "udp":
                    _answer_udp(key.fileobj, name, respond)
                elif key.data == "listen":
                    _accept(key.fileobj, sel, buffers)
                else:
                    _answer_tcp(key.fileobj, sel, buffers, name, respond)
            if capacity is not None:
                capacity.run_due(time.monotonic())
    except _TerminatedError:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    for s in [*buffers, *listeners]:
        s.close()


class _TerminatedError(Exception):
    """SIGTERM: raised from the handler, so that a select() in progress ends at once."""


def _stop(_signum: int, _frame: object) -> None:
    raise _TerminatedError


def _listen(bind: str, port: int, sel: selectors.BaseSelector) -> list[socket.socket]:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    for s in (udp, tcp):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((bind, port))
        s.setblocking(False)
    if family == socket.AF_INET6:
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        udp.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    tcp.listen(512)
    sel.register(udp, selectors.EVENT_READ, "udp")
    sel.register(tcp, selectors.EVENT_READ, "listen")
    return [udp, tcp]


def _answer_udp(udp: socket.socket, name: str, respond: Respond) -> None:
    v6 = udp.family == socket.AF_INET6
    while True:
        try:
            data, anc, _flags, addr = udp.recvmsg(512, socket.CMSG_SPACE(20))
        except BlockingIOError:
            return
        if not wire.is_request(data):
            continue
        # Reply from the address the request went to: struct in_pktinfo / in6_pktinfo.
        if v6:
            local = next((p[:16] for lvl, k, p in anc if lvl == socket.IPPROTO_IPV6 and k == socket.IPV6_PKTINFO),
                         bytes(16))
            cmsg = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, local + struct.pack("@I", 0))
        else:
            local = next((p[8:12] for lvl, k, p in anc if lvl == socket.IPPROTO_IP and k == IP_PKTINFO), bytes(4))
            cmsg = (socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=I4s4s", 0, local, bytes(4)))
        respond(partial(_send_udp, udp, wire.answer(data, name), cmsg, addr))


def _send_udp(udp: socket.socket, reply: bytes, cmsg: tuple, addr: tuple) -> None:
    try:
        udp.sendmsg([reply], [cmsg], 0, addr)
    except OSError:
        pass  # unreachable client: it will count the loss itself


def _send_tcp(conn: socket.socket, reply: bytes) -> None:
    try:
        conn.send(reply)
    except OSError:
        pass  # the client left (or timed out and closed): it counts the loss itself


def _accept(tcp: socket.socket, sel: selectors.BaseSelector, buffers: dict) -> None:
    while True:
        try:
            conn, _ = tcp.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        buffers[conn] = b""
        sel.register(conn, selectors.EVENT_READ, "conn")


def _answer_tcp(conn: socket.socket, sel: selectors.BaseSelector, buffers: dict, name: str,
                respond: Respond) -> None:
    """Answer every complete request line; a connection stays open until the client closes it."""
    try:
        chunk = conn.recv(4096)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        chunk = b""
    *lines, rest = (buffers[conn] + chunk).split(b"\n")
    buffers[conn] = rest
    for line in lines:
        if wire.is_request(line):
            respond(partial(_send_tcp, conn, wire.answer(line, name)))
    if not chunk or len(rest) >= 512:
        sel.unregister(conn)
        del buffers[conn]
        conn.close()
