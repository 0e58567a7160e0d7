"""The probe client: requests at a fixed rate, sessions, sweeps, floods, held connections and one-off checks."""

from __future__ import annotations

import asyncio
import os
import resource
import selectors
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable

from harness.probe import MIN_RATE, Request, wire


class _UdpReplies(asyncio.DatagramProtocol):
    def __init__(self, nonce: bytes, pending: dict[int, asyncio.Future]) -> None:
        self.nonce, self.pending = nonce, pending

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        now = time.monotonic()
        reply = wire.parse_reply(data)
        if reply is not None and reply.nonce == self.nonce:
            fut = self.pending.get(reply.seq)
            if fut is not None and not fut.done():
                fut.set_result((now, reply.server))


async def _udp_request(req: Request, transport: asyncio.DatagramTransport, target: tuple[str, int],
                       nonce: bytes, pending: dict[int, asyncio.Future], timeout: float) -> None:
    fut = asyncio.get_running_loop().create_future()
    pending[req.seq] = fut
    req.sent = time.monotonic()
    try:
        transport.sendto(wire.request(nonce, req.seq), target)
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
            writer.write(wire.request(nonce, req.seq))
            reply = wire.parse_reply(await reader.readline())
        if reply is not None and reply.nonce == nonce and reply.seq == req.seq:
            req.replied, req.server = time.monotonic(), reply.server
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
                timeout: float, on_done: Callable[[Request], None] | None = None) -> list[Request]:
    """Send `rate` requests per second for `duration` seconds; wait `timeout` for each reply.
    `on_done` hears of each request as it completes (answered or not): a live view."""
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
        task = asyncio.ensure_future(coro)
        if on_done is not None:
            task.add_done_callback(lambda _t, r=req: on_done(r))
        tasks.append(task)
    # Let the last request go out first: setting up the gather over thousands of tasks takes tens
    # of milliseconds, a gap before the last request that would read as an outage.
    await asyncio.sleep(0)
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
                conn.sendall(wire.request(nonce, seq))
                reply = wire.parse_reply(lines.readline())
                answers.append(reply.server if reply is not None and reply.nonce == nonce else None)
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
            sock.sendto(wire.request(b"sweep", source), (target, port))
            time.sleep(0.001)  # a burst of hundreds would overrun small socket buffers
        deadline = time.monotonic() + timeout
        while None in answers.values() and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                reply = wire.parse_reply(key.fileobj.recv(512))
                if reply is not None:
                    answers[key.data] = reply.server
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


MAX_HELD = 20_000


def hold(target: str, port: int, count: int, seconds: float, timeout: float = 2.0, at_once: int = 64,
         say: Callable[[str], None] | None = None) -> dict:
    """`count` TCP connections held open for `seconds`, each asked who it is when it opens and
    again at the end: what a balancer must keep while its pool changes under them.

    `say` hears "open N" once all are open, so a benchmark can change the pool while they are
    held, and "asking again" when the hold is over. Returned: who answered first, who answered
    last, and per connection kept (the same backend), moved (another: a broken connection, for
    a real service; over TCP another backend resets it, so it shows as lost), lost (nobody
    answered the second time) and never (it did not open, or nobody answered the first time).
    """
    count = max(1, min(count, MAX_HELD))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        if hard < count + 64:
            raise ValueError(f"{count} connections need {count + 64} open files; this process may have {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count + 64, hard))
    nonce = os.urandom(4).hex().encode()

    async def ask(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], seq: int) -> str | None:
        reader, writer = conn
        try:
            writer.write(wire.request(nonce, seq))
            reply = wire.parse_reply(await asyncio.wait_for(reader.readline(), timeout))
        except (TimeoutError, OSError):
            return None
        return reply.server if reply is not None and (reply.nonce, reply.seq) == (nonce, seq) else None

    took: list[float] = []  # how long each answer of the second round took

    async def run() -> tuple[list, list]:
        gate = asyncio.Semaphore(at_once)

        async def open_one(seq: int) -> tuple | None:
            async with gate:
                try:
                    conn = await asyncio.wait_for(asyncio.open_connection(target, port), timeout)
                except (TimeoutError, OSError):
                    return None
                return conn, await ask(conn, seq)

        async def ask_again(seq: int, held: tuple | None) -> str | None:
            # `at_once` at a time, as they opened: 10 000 requests at once from one host lost
            # packets on the way, and their answers came seconds late, after TCP's backoff.
            if held is None:
                return None
            async with gate:
                start = time.monotonic()
                who = await ask(held[0], count + seq)
            if who is not None:
                took.append(time.monotonic() - start)
            return who

        conns = await asyncio.gather(*(open_one(i) for i in range(count)))
        if say is not None:
            say(f"open {sum(c is not None for c in conns)}")
        await asyncio.sleep(min(seconds, 600.0))
        if say is not None:
            say("asking again")
        last = await asyncio.gather(*(ask_again(i, c) for i, c in enumerate(conns)))
        for held in conns:
            if held is not None:  # a reset, not a close: no TIME_WAIT left behind for thousands of ports
                writer = held[0][1]
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                           struct.pack("ii", 1, 0))
                writer.transport.abort()
        return [c[1] if c is not None else None for c in conns], last

    first, last = asyncio.run(run())
    lost = [f for f, la in zip(first, last, strict=True) if f is not None and la is None]
    return {"count": count, "first": dict(Counter(f for f in first if f is not None)),
            "last": dict(Counter(la for la in last if la is not None)),
            "kept": sum(1 for f, la in zip(first, last, strict=True) if f is not None and f == la),
            "moved": sum(1 for f, la in zip(first, last, strict=True) if None not in (f, la) and f != la),
            "lost": len(lost), "lost_by_backend": dict(Counter(lost)),
            "never": sum(1 for f in first if f is None),
            "slowest_answer_s": max(took, default=None)}


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
