"""The database writer: unique ids inserted through the DB VIP at a fixed rate, each write logged
with what the client saw, for harness.writecheck to judge.

    python -m harness.dbwriter --host 10.0.1.100 --passfile F --rate 100 --seconds 10 --out writes.jsonl
    python -m harness.dbwriter --via-web --host 10.0.0.100 --rate 100 --seconds 10 --out writes.jsonl
    python -m harness.dbwriter --host 10.0.1.100 --passfile F --closed-loop 8 --seconds 10 --out writes.jsonl

At the rate given, SIGTERM ends the writing early: the writes in flight finish and the log is written.

Each write is one connection and one autocommitted INSERT (as a web request would do it), in its
own task, so a write stuck in a failover does not hold up the next. The INSERT returns who
committed it (halab.node, set on each server) and on which timeline; a standby refuses it
(read-only), which is a definite failure. The password comes from a libpq password file, never the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.writecheck import Write

INSERT = ("INSERT INTO writes (id) VALUES (%s) RETURNING current_setting('halab.node'), "
          "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
MAX_IN_FLIGHT = 200
WEB_PORT = 8080   # harness.webapp's


def outcome_of(exc: BaseException, connected: bool) -> str:
    """`failed` when nothing can have been committed, else `timeout` (indeterminate).

    Before the connection was made, every error is a failure. After it, an error the server
    reported with severity ERROR is a failure: the autocommitted statement was rolled back (once
    a commit is in the WAL, PostgreSQL can only PANIC). Anything else may have come after the
    commit: a FATAL (the session ended, e.g. an administrator's shutdown during the wait for a
    standby), a lost connection, no answer in time."""
    if not connected:
        return "failed"
    diag = getattr(exc, "diag", None)
    if getattr(diag, "severity_nonlocalized", None) == "ERROR":
        return "failed"
    return "timeout"


def _cancel_quietly(cancel: Any) -> None:
    with contextlib.suppress(Exception):
        cancel.cancel()


@functools.cache
def _connection_class() -> type:
    """psycopg's async connection, except that a statement given up at its timeout does not hold
    the write: the cancel request (which frees the server's backend, stuck for instance waiting
    for a synchronous standby) goes from a daemon thread, and the connection is closed at once.
    psycopg itself, with libpq before 17 (Debian 12 has 15), waits for that request's blocking
    connect(), which a server unreachable for new connections (crashed, fenced) holds for the
    kernel's SYN retries, minutes, and then 5 s more for the statement to end."""
    import psycopg  # here, not at the top: the unit tests import this module without libpq

    class PromptlyCancelling(psycopg.AsyncConnection):
        async def _try_cancel(self, *, timeout: float = 5.0) -> None:  # psycopg 3.3's hook on cancellation
            threading.Thread(target=_cancel_quietly, args=(self.pgconn.get_cancel(),), daemon=True).start()
            self.pgconn.finish()

    return PromptlyCancelling


async def write_one(conninfo: str, id_: int, timeout: float) -> Write:
    import psycopg

    invoked = time.monotonic()
    connected = False
    try:
        async with asyncio.timeout(timeout):
            conn = await _connection_class().connect(conninfo, autocommit=True)
            connected = True
            async with conn:
                row = await (await conn.execute(INSERT, (id_,))).fetchone()
        assert row is not None
        return Write(id_, invoked, time.monotonic(), "ok", str(row[0]), int(row[1]))
    except (TimeoutError, psycopg.Error, OSError) as exc:
        return Write(id_, invoked, time.monotonic(), outcome_of(exc, connected))


async def write_via_web(host: str, port: int, id_: int, timeout: float) -> Write:
    """One write through the web tier (harness.webapp): POST /write/<id> on a new connection."""
    invoked = time.monotonic()
    sent = False
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"POST /write/{id_} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                sent = True
                await writer.drain()
                answer = b""
                while (chunk := await reader.read(4096)) and len(answer) < 65536:
                    answer += chunk
            finally:
                writer.close()
    except (TimeoutError, OSError):
        return Write(id_, invoked, time.monotonic(), "timeout" if sent else "failed")
    return _web_outcome(id_, invoked, answer)


def _web_outcome(id_: int, invoked: float, answer: bytes) -> Write:
    """200: acknowledged (by whom, on which timeline); 503 {"outcome": "failed"}: nothing can have
    been committed; anything else (504, a cut-off answer): indeterminate."""
    done = time.monotonic()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b""
    try:
        reply = json.loads(body)
    except ValueError:
        reply = {}
    if status == b"200" and isinstance(reply, dict) and "db" in reply:
        return Write(id_, invoked, done, "ok", str(reply["db"]), int(reply["timeline"]))
    if status == b"503" and isinstance(reply, dict) and reply.get("outcome") == "failed":
        return Write(id_, invoked, done, "failed")
    return Write(id_, invoked, done, "timeout")


async def run(write: Callable[[int], Awaitable[Write]], rate: float, seconds: float, first_id: int) -> list[Write]:
    """Start a write every 1/rate s for `seconds`, or until SIGTERM (whoever started it has seen
    what it waited for); wait for the last ones (each bounded by its timeout)."""
    tasks: list[asyncio.Task[Write]] = []
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    start = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        if stop.is_set():
            break
        if sum(not t.done() for t in tasks[-MAX_IN_FLIGHT:]) >= MAX_IN_FLIGHT:
            continue  # never more in flight than this: a dead VIP must not pile up connections
        tasks.append(asyncio.create_task(write(first_id + i)))
    return list(await asyncio.gather(*tasks))


async def closed_loop(conninfo: str, workers: int, seconds: float, timeout: float, first_id: int) -> list[Write]:
    """Throughput: `workers` connections, each inserting as fast as its commits come back, for
    `seconds`. What a commit costs (the wait for a standby, in a synchronous mode) shows here,
    not hidden behind a new connection per write."""
    import psycopg

    ids = iter(range(first_id, first_id + 10**9))
    end = time.monotonic() + seconds

    async def worker() -> list[Write]:
        done: list[Write] = []
        try:
            conn = await _connection_class().connect(conninfo, autocommit=True)
        except psycopg.Error:
            return [Write(next(ids), time.monotonic(), time.monotonic(), "failed")]
        async with conn:
            while time.monotonic() < end:
                id_, invoked = next(ids), time.monotonic()
                try:
                    async with asyncio.timeout(timeout):
                        row = await (await conn.execute(INSERT, (id_,))).fetchone()
                except (TimeoutError, psycopg.Error) as exc:
                    done.append(Write(id_, invoked, time.monotonic(), outcome_of(exc, connected=True)))
                    break   # the connection is in doubt: this worker stops
                assert row is not None
                done.append(Write(id_, invoked, time.monotonic(), "ok", str(row[0]), int(row[1])))
        return done

    return [w for ws in await asyncio.gather(*(worker() for _ in range(workers))) for w in ws]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.dbwriter", description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="the DB VIP (or a server's address), or with --via-web "
                                                       "the web VIP")
    parser.add_argument("--port", type=int, help="default: 5432, or 8080 with --via-web")
    parser.add_argument("--via-web", action="store_true", help="write through the web tier (harness.webapp)")
    parser.add_argument("--passfile", type=Path, help="libpq password file for the app role (not with --via-web)")
    parser.add_argument("--rate", type=float, default=100.0, help="writes per second (1 to 2000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to write (at most 3600)")
    parser.add_argument("--timeout", type=float, default=1.0, help="per write, connection included")
    parser.add_argument("--closed-loop", type=int, metavar="WORKERS", help="instead of --rate: this many "
                        "connections (1 to 64), each writing as fast as its commits return (throughput)")
    parser.add_argument("--first-id", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one write each")
    args = parser.parse_args(argv)
    if not (1 <= args.rate <= 2000 and 0 < args.seconds <= 3600 and 0 < args.timeout <= 60):
        parser.error("--rate 1 to 2000, --seconds up to 3600, --timeout up to 60")
    if args.closed_loop is not None and (args.via_web or not 1 <= args.closed_loop <= 64):
        parser.error("--closed-loop takes 1 to 64 workers, straight to the database (not with --via-web)")
    if args.via_web:
        port = args.port or WEB_PORT
        write: Callable[[int], Awaitable[Write]] = lambda i: write_via_web(args.host, port, i, args.timeout)  # noqa: E731
    else:
        if args.passfile is None or not args.passfile.is_file():
            parser.error(f"--passfile {args.passfile}: no such file (a libpq password file for the app role)")
        conninfo = conninfo_for(args.host, args.port or 5432, args.passfile, args.timeout, "halab-dbwriter")
        write = lambda i: write_one(conninfo, i, args.timeout)  # noqa: E731
    if args.closed_loop is not None:
        writes = asyncio.run(closed_loop(conninfo, args.closed_loop, args.seconds, args.timeout, args.first_id))
    else:
        writes = asyncio.run(run(write, args.rate, args.seconds, args.first_id))
    with args.out.open("w") as f:
        for w in writes:
            f.write(json.dumps(asdict(w)) + "\n")
    acked = sum(w.outcome == "ok" for w in writes)
    print(f"{len(writes)} writes, {acked} acknowledged", file=sys.stderr)
    return 0


def conninfo_for(host: str, port: int, passfile: Path, timeout: float, application: str) -> str:
    """libpq's connection string for the app role; the password stays in its file."""
    return (f"host={host} port={port} user=app dbname=app passfile={passfile} "
            f"connect_timeout={max(1, round(timeout))} application_name={application}")


def read(path: Path) -> list[Write]:
    return [Write(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    sys.exit(main())
