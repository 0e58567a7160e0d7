"""The web tier: a small HTTP application that writes through the DB VIP, so that a client's
request crosses every tier (client -> web VIP -> web server -> DB VIP -> primary).

    python -m harness.webapp --listen 10.0.0.1 --name web1 --db-host 10.0.1.100 --passfile F

    POST /write/<id>   insert the id; 200 {"web", "db", "timeline"} when the commit was acknowledged,
                       503 {"outcome": "failed"} when nothing can have been committed,
                       504 {"outcome": "timeout"} when it may have been (indeterminate)
    GET /health        200, without touching the database

Each write is one database connection and one autocommitted INSERT (harness.dbwriter's), so a
failover leaves no stale connection behind. The server reads at most one small request head per
connection, drops clients idle for IDLE_TIMEOUT_S, and answers 503 at once beyond MAX_IN_FLIGHT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path

from harness.dbwriter import WEB_PORT, conninfo_for, write_one

MAX_HEAD = 4096
IDLE_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 256
WRITE = re.compile(rb"POST /write/(\d{1,18}) HTTP/1\.[01]\r\n")
STATUS = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable", 504: "Gateway Timeout"}


class WebApp:
    def __init__(self, name: str, conninfo: str, db_timeout: float) -> None:
        self.name, self.conninfo, self.db_timeout = name, conninfo, db_timeout
        self.in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                return
            code, body = await self.answer(head)
            payload = json.dumps(body).encode()
            writer.write(f"HTTP/1.0 {code} {STATUS[code]}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
            await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, head: bytes) -> tuple[int, dict]:
        if head.startswith(b"GET /health "):
            return 200, {"web": self.name}
        match = WRITE.match(head)
        if match is None:
            return (404, {"error": "POST /write/<id> or GET /health"}) if head[:1].isalpha() else (400, {})
        if self.in_flight >= MAX_IN_FLIGHT:
            return 503, {"outcome": "failed", "web": self.name, "error": "busy"}
        self.in_flight += 1
        try:
            w = await write_one(self.conninfo, int(match[1]), self.db_timeout)
        finally:
            self.in_flight -= 1
        if w.outcome == "ok":
            return 200, {"web": self.name, "db": w.node, "timeline": w.timeline}
        return (503 if w.outcome == "failed" else 504), {"outcome": w.outcome, "web": self.name}


async def serve(app: WebApp, listen: str, port: int) -> None:
    server = await asyncio.start_server(app.handle, listen, port, limit=MAX_HEAD)
    print(f"serving on {listen}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.webapp", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1", help="the address to serve on (default: loopback)")
    parser.add_argument("--port", type=int, default=WEB_PORT)
    parser.add_argument("--name", required=True, help="this web server's name, in every answer")
    parser.add_argument("--db-host", required=True, help="the DB VIP")
    parser.add_argument("--db-port", type=int, default=5432)
    parser.add_argument("--passfile", type=Path, required=True, help="libpq password file for the app role")
    parser.add_argument("--db-timeout", type=float, default=1.0, help="per write, connection included (s)")
    args = parser.parse_args(argv)
    if not args.passfile.is_file():
        parser.error(f"--passfile {args.passfile}: no such file (a libpq password file for the app role)")
    if not 0 < args.db_timeout <= 60:
        parser.error("--db-timeout: more than 0 and at most 60 s")
    app = WebApp(args.name, conninfo_for(args.db_host, args.db_port, args.passfile, args.db_timeout, "halab-web"),
                 args.db_timeout)
    try:
        asyncio.run(serve(app, args.listen, args.port))
    except OSError as exc:
        print(f"halab webapp: cannot serve on {args.listen}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
