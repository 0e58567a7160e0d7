"""The database writer: unique ids inserted through the DB VIP at a fixed rate, each write logged
with what the client saw, for harness.writecheck to judge.

    python -m harness.dbwriter --host 10.0.0.200 --passfile F --rate 100 --seconds 10 --out writes.jsonl

Each write is one connection and one autocommitted INSERT (as a web request would do it), in its
own task, so a write stuck in a failover does not hold up the next. The INSERT returns who
committed it (cluster_name) and on which timeline; a standby refuses it (read-only), which is a
definite failure. The password comes from a libpq password file, never the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from harness.writecheck import Write

INSERT = ("INSERT INTO writes (id) VALUES (%s) RETURNING current_setting('cluster_name'), "
          "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
#: SQLSTATE classes that mean the server refused the statement: nothing was committed.
REFUSED_CLASSES = ("08", "23", "25", "28", "3D", "42", "53", "57")
MAX_IN_FLIGHT = 200


def outcome_of(exc: BaseException, connected: bool) -> str:
    """`failed` when nothing can have been committed, else `timeout` (indeterminate).

    Before the connection was made, every error is a failure. After it, a statement the server
    refused with an SQLSTATE (read-only, a constraint, shutting down before it ran) is a failure;
    a lost connection or no answer in time may have happened after the commit: indeterminate."""
    if not connected:
        return "failed"
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in REFUSED_CLASSES and sqlstate != "57P01":
        return "failed"  # 57P01 admin_shutdown can arrive after the commit: not certain
    return "timeout"


async def write_one(conninfo: str, id_: int, timeout: float) -> Write:
    import psycopg  # here, not at the top: the unit tests import this module without libpq

    invoked = time.monotonic()
    connected = False
    try:
        async with asyncio.timeout(timeout):
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            connected = True
            async with conn:
                row = await (await conn.execute(INSERT, (id_,))).fetchone()
        assert row is not None
        return Write(id_, invoked, time.monotonic(), "ok", str(row[0]), int(row[1]))
    except (TimeoutError, psycopg.Error, OSError) as exc:
        return Write(id_, invoked, time.monotonic(), outcome_of(exc, connected))


async def run(conninfo: str, rate: float, seconds: float, timeout: float, first_id: int) -> list[Write]:
    """Start a write every 1/rate s for `seconds`; wait for the last ones (each bounded by `timeout`)."""
    tasks: list[asyncio.Task[Write]] = []
    start = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        if sum(not t.done() for t in tasks[-MAX_IN_FLIGHT:]) >= MAX_IN_FLIGHT:
            continue  # never more in flight than this: a dead VIP must not pile up connections
        tasks.append(asyncio.create_task(write_one(conninfo, first_id + i, timeout)))
    return list(await asyncio.gather(*tasks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.dbwriter", description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="the DB VIP (or a server's address)")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--passfile", type=Path, required=True, help="libpq password file for the app role")
    parser.add_argument("--rate", type=float, default=100.0, help="writes per second (1 to 2000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to write (at most 3600)")
    parser.add_argument("--timeout", type=float, default=1.0, help="per write, connection included")
    parser.add_argument("--first-id", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one write each")
    args = parser.parse_args(argv)
    if not (1 <= args.rate <= 2000 and 0 < args.seconds <= 3600 and 0 < args.timeout <= 60):
        parser.error("--rate 1 to 2000, --seconds up to 3600, --timeout up to 60")
    if not args.passfile.is_file():
        parser.error(f"--passfile {args.passfile}: no such file (a libpq password file for the app role)")
    conninfo = (f"host={args.host} port={args.port} user=app dbname=app passfile={args.passfile} "
                f"connect_timeout={max(1, round(args.timeout))} application_name=halab-dbwriter")
    writes = asyncio.run(run(conninfo, args.rate, args.seconds, args.timeout, args.first_id))
    with args.out.open("w") as f:
        for w in writes:
            f.write(json.dumps(asdict(w)) + "\n")
    acked = sum(w.outcome == "ok" for w in writes)
    print(f"{len(writes)} writes, {acked} acknowledged", file=sys.stderr)
    return 0


def read(path: Path) -> list[Write]:
    return [Write(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    sys.exit(main())
