"""Probe traffic: a responder that answers with its server's name, and a client that measures.

    python -m harness.probe serve --name server1 --port 7000
    python -m harness.probe client --target 10.0.0.100 --port 7000 --proto udp --rate 100 \
        --duration 10 --out probe.json
    python -m harness.probe check --port 7000 10.0.0.1 10.0.0.2
    python -m harness.probe session --target 10.0.0.100 --count 50     (one TCP connection)
    python -m harness.probe sweep --target 10.0.0.100 --count 500      (many UDP source ports)
    python -m harness.probe flood --target 10.0.0.100 --workers 32     (new connections per second)

Every send and reply is stamped with time.monotonic() (CLOCK_MONOTONIC, one clock for all
network namespaces), so the harness can line the timeline up with the moment it injected a fault.
Wire format, one line per request and reply (UDP datagram or TCP line):
    request  b"HALAB <nonce> <seq>\\n"        reply  b"HALAB <nonce> <seq> <server name>\\n"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MAGIC = b"HALAB"
#: The port responders listen on in every lab.
PORT = 7000
MIN_RATE, MAX_RATE = 10.0, 1000.0
#: Linux's IP_PKTINFO; Python names it only on some builds.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def command(*args: str) -> list[str]:
    """The argv that runs this module (serve, client, check) on a lab host."""
    return [sys.executable, "-u", "-m", "harness.probe", *args]


@dataclass
class Request:
    """One probe request: when it left, when (and from whom) the answer came, or why not."""

    seq: int
    sent: float
    replied: float | None = None
    server: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.replied is not None


# --- responder ------------------------------------------------------------------------------


def serve(name: str, port: int, binds: tuple[str, ...] = ("0.0.0.0", "::"), stop_after: float | None = None) -> None:
    """Answer UDP and TCP probes on `port`, IPv4 and IPv6, until SIGTERM (or `stop_after` seconds).

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
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    deadline = None if stop_after is None else time.monotonic() + stop_after
    suffix = b" " + name.encode() + b"\n"
    print(f"serving {name} on udp+tcp port {port}", flush=True)
    while running[0] and (deadline is None or time.monotonic() < deadline):
        for key, _ in sel.select(timeout=0.5):
            if key.data == "udp":
                _answer_udp(key.fileobj, suffix)
            elif key.data == "listen":
                _accept(key.fileobj, sel, buffers)
            else:
                _answer_tcp(key.fileobj, sel, buffers, suffix)
    for s in [*buffers, *listeners]:
        s.close()


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


def _answer_udp(udp: socket.socket, suffix: bytes) -> None:
    v6 = udp.family == socket.AF_INET6
    while True:
        try:
            data, anc, _flags, addr = udp.recvmsg(512, socket.CMSG_SPACE(20))
        except BlockingIOError:
            return
        if not data.startswith(MAGIC):
            continue
        # Reply from the address the request went to: struct in_pktinfo / in6_pktinfo.
        if v6:
            local = next((p[:16] for lvl, k, p in anc if lvl == socket.IPPROTO_IPV6 and k == socket.IPV6_PKTINFO),
                         bytes(16))
            cmsg = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, local + struct.pack("@I", 0))
        else:
            local = next((p[8:12] for lvl, k, p in anc if lvl == socket.IPPROTO_IP and k == IP_PKTINFO), bytes(4))
            cmsg = (socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=I4s4s", 0, local, bytes(4)))
        try:
            udp.sendmsg([data.rstrip(b"\n") + suffix], [cmsg], 0, addr)
        except OSError:
            pass  # unreachable client: it will count the loss itself


def _accept(tcp: socket.socket, sel: selectors.BaseSelector, buffers: dict) -> None:
    while True:
        try:
            conn, _ = tcp.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        buffers[conn] = b""
        sel.register(conn, selectors.EVENT_READ, "conn")


def _answer_tcp(conn: socket.socket, sel: selectors.BaseSelector, buffers: dict, suffix: bytes) -> None:
    """Answer every complete request line; a connection stays open until the client closes it."""
    try:
        chunk = conn.recv(4096)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        chunk = b""
    *lines, rest = (buffers[conn] + chunk).split(b"\n")
    buffers[conn] = rest
    try:
        for line in lines:
            if line.startswith(MAGIC):
                conn.send(line + suffix)
    except OSError:
        chunk = b""
    if not chunk or len(rest) >= 512:
        sel.unregister(conn)
        del buffers[conn]
        conn.close()


# --- client ---------------------------------------------------------------------------------


class _UdpReplies(asyncio.DatagramProtocol):
    def __init__(self, nonce: bytes, pending: dict[int, asyncio.Future]) -> None:
        self.nonce, self.pending = nonce, pending

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        now = time.monotonic()
        parts = data.split()
        if len(parts) == 4 and parts[0] == MAGIC and parts[1] == self.nonce:
            fut = self.pending.get(int(parts[2]))
            if fut is not None and not fut.done():
                fut.set_result((now, parts[3].decode(errors="replace")))


async def _udp_request(req: Request, transport: asyncio.DatagramTransport, target: tuple[str, int],
                       nonce: bytes, pending: dict[int, asyncio.Future], timeout: float) -> None:
    fut = asyncio.get_running_loop().create_future()
    pending[req.seq] = fut
    req.sent = time.monotonic()
    try:
        transport.sendto(MAGIC + b" %s %d\n" % (nonce, req.seq), target)
        req.replied, req.server = await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        req.error = "timeout"
    except OSError as exc:
        req.error = exc.strerror or type(exc).__name__
    finally:
        pending.pop(req.seq, None)


async def _tcp_request(req: Request, target: tuple[str, int], nonce: bytes, timeout: float) -> None:
    req.sent = time.monotonic()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*target)
            writer.write(MAGIC + b" %s %d\n" % (nonce, req.seq))
            line = await reader.readline()
        parts = line.split()
        if len(parts) == 4 and parts[1] == nonce and int(parts[2]) == req.seq:
            req.replied, req.server = time.monotonic(), parts[3].decode(errors="replace")
        else:
            req.error = "bad reply"
    except TimeoutError:
        req.error = "timeout"
    except OSError as exc:
        req.error = exc.strerror or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


async def probe(target: str, port: int, proto: str, rate: float, duration: float,
                timeout: float) -> list[Request]:
    """Send `rate` requests per second for `duration` seconds; wait `timeout` for each reply."""
    loop = asyncio.get_running_loop()
    nonce = os.urandom(4).hex().encode()
    pending: dict[int, asyncio.Future] = {}
    transport = None
    if proto == "udp":
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpReplies(nonce, pending), family=family)
    count = int(rate * duration)
    requests = [Request(seq=i, sent=0.0) for i in range(count)]
    tasks = []
    start = time.monotonic() + 0.01
    for req in requests:
        delay = start + req.seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if proto == "udp":
            coro = _udp_request(req, transport, (target, port), nonce, pending, timeout)
        else:
            coro = _tcp_request(req, (target, port), nonce, timeout)
        tasks.append(asyncio.ensure_future(coro))
    await asyncio.gather(*tasks)
    if transport is not None:
        transport.close()
    return requests


def session(target: str, port: int, count: int, gap: float, timeout: float = 1.0,
            source_port: int = 0) -> list[str | None]:
    """One TCP connection, `count` requests `gap` seconds apart: who answered each (None: nobody).

    With a `source_port`, the connection leaves from it and ends with a reset, as a refused or
    aborted one does: the port is free again at once (no TIME_WAIT), ready to be reused.
    """
    nonce = os.urandom(4).hex().encode()
    answers: list[str | None] = []
    try:
        conn = socket.create_connection((target, port), timeout=timeout,
                                        source_address=("0.0.0.0", source_port) if source_port else None)
    except OSError:
        return [None] * count
    with conn, conn.makefile("rb") as lines:
        for seq in range(count):
            try:
                conn.sendall(MAGIC + b" %s %d\n" % (nonce, seq))
                parts = lines.readline().split()
                answers.append(parts[3].decode() if len(parts) == 4 and parts[1] == nonce else None)
            except OSError:
                answers.append(None)
            time.sleep(gap)
        if source_port:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return answers


def sweep(target: str, port: int, first_port: int, count: int, timeout: float = 2.0) -> dict[int, str | None]:
    """One UDP request from each source port first_port .. first_port+count-1: who answered each."""
    sel = selectors.DefaultSelector()
    answers: dict[int, str | None] = {}
    socks = []
    try:
        for source in range(first_port, first_port + count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(sock)
            sock.bind(("0.0.0.0", source))
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, source)
            answers[source] = None
            sock.sendto(MAGIC + b" sweep %d\n" % source, (target, port))
            time.sleep(0.001)  # a burst of hundreds would overrun small socket buffers
        deadline = time.monotonic() + timeout
        while None in answers.values() and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                parts = key.fileobj.recv(512).split()
                if len(parts) == 4:
                    answers[key.data] = parts[3].decode(errors="replace")
    finally:
        for sock in socks:
            sock.close()
    return answers


def flood(target: str, port: int, workers: int, duration: float, timeout: float = 1.0) -> dict:
    """New TCP connections as fast as `workers` loops can open them for `duration` seconds.

    Each loop connects, sends one request, reads the reply and closes, then starts again: the
    rate of completed exchanges is the connection rate the path sustains.
    """
    duration = min(duration, 30.0)
    nonce = os.urandom(4).hex().encode()

    async def worker(stop: float, counts: list[int]) -> None:
        seq = 0
        while time.monotonic() < stop:
            req = Request(seq=seq, sent=0.0)
            await _tcp_request(req, (target, port), nonce, timeout)
            counts[0 if req.ok else 1] += 1
            seq += 1

    async def run() -> list[int]:
        counts = [0, 0]
        stop = time.monotonic() + duration
        await asyncio.gather(*(worker(stop, counts) for _ in range(workers)))
        return counts

    ok, failed = asyncio.run(run())
    return {"ok": ok, "failed": failed, "seconds": duration, "per_second": ok / duration}


def check(targets: list[str], port: int, proto: str, attempts: int = 3, timeout: float = 1.0) -> dict:
    """Which server answers at each target address (None: nothing answered)."""

    async def one(target: str) -> str | None:
        for _ in range(attempts):
            reqs = await probe(target, port, proto, rate=MIN_RATE, duration=1 / MIN_RATE, timeout=timeout)
            if reqs[0].ok:
                return reqs[0].server
        return None

    async def every() -> list[str | None]:
        return await asyncio.gather(*(one(t) for t in targets))

    return dict(zip(targets, asyncio.run(every()), strict=True))


# --- command line ---------------------------------------------------------------------------


def _rate(text: str) -> float:
    value = float(text)
    if not MIN_RATE <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"{value:g}/s is outside {MIN_RATE:g} to {MAX_RATE:g} requests/s")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be greater than 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="answer probes with this server's name")
    s.add_argument("--name", required=True)
    s.add_argument("--port", type=int, default=PORT)
    s.add_argument("--bind", action="append", help="address to listen on (repeatable; default 0.0.0.0 and ::)")
    c = sub.add_parser("client", help="send probes at a fixed rate and record the timeline")
    c.add_argument("--target", required=True)
    c.add_argument("--port", type=int, default=PORT)
    c.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    c.add_argument("--rate", type=_rate, default=100.0, help="requests per second (10 to 1000)")
    c.add_argument("--duration", type=_positive, default=10.0, help="seconds of sending")
    c.add_argument("--timeout", type=_positive, default=1.0, help="seconds to wait for each reply")
    c.add_argument("--out", type=Path, required=True, help="where to write the JSON timeline")
    k = sub.add_parser("check", help="print which server answers at each address (JSON)")
    k.add_argument("--port", type=int, default=PORT)
    k.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    k.add_argument("--require", action="store_true", help="exit 1 unless every target answered (a monitor)")
    k.add_argument("--attempts", type=int, default=3, choices=range(1, 11), metavar="1..10")
    k.add_argument("targets", nargs="+")
    n = sub.add_parser("session", help="many requests over one TCP connection; who answered each (JSON)")
    n.add_argument("--target", required=True)
    n.add_argument("--port", type=int, default=PORT)
    n.add_argument("--count", type=int, default=10)
    n.add_argument("--gap", type=float, default=0.1, help="seconds between requests")
    n.add_argument("--source-port", type=int, default=0, choices=range(1024, 65536), metavar="1024..65535",
                   help="leave from this port and end with a reset (default: any port, a normal close)")
    w = sub.add_parser("sweep", help="one UDP request from each of many source ports (JSON)")
    w.add_argument("--target", required=True)
    w.add_argument("--port", type=int, default=PORT)
    w.add_argument("--first-port", type=int, default=20000)
    w.add_argument("--count", type=int, default=100)
    f = sub.add_parser("flood", help="as many new TCP connections as WORKERS loops open in DURATION (JSON)")
    f.add_argument("--target", required=True)
    f.add_argument("--port", type=int, default=PORT)
    f.add_argument("--workers", type=int, default=32, choices=range(1, 257), metavar="1..256")
    f.add_argument("--duration", type=_positive, default=3.0, help="seconds (bounded: at most 30)")
    args = parser.parse_args(argv)
    if args.command == "flood":
        print(json.dumps(flood(args.target, args.port, args.workers, args.duration)))
    elif args.command == "session":
        print(json.dumps(session(args.target, args.port, args.count, args.gap, source_port=args.source_port)))
    elif args.command == "sweep":
        print(json.dumps(sweep(args.target, args.port, args.first_port, args.count)))
    elif args.command == "serve":
        serve(args.name, args.port, tuple(args.bind or ("0.0.0.0", "::")))
    elif args.command == "client":
        print(f"sending {args.rate:g}/s over {args.proto} to {args.target}:{args.port}", flush=True)
        reqs = asyncio.run(probe(args.target, args.port, args.proto, args.rate, args.duration, args.timeout))
        args.out.write_text(json.dumps({"target": args.target, "port": args.port, "proto": args.proto,
                                        "rate": args.rate, "requests": [asdict(r) for r in reqs]}))
    else:
        answers = check(args.targets, args.port, args.proto, attempts=args.attempts)
        print(json.dumps(answers))
        if args.require and None in answers.values():
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
