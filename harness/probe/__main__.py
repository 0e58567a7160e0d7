"""The probe's command line (see harness.probe)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

import harness.probe
from harness.probe import MAX_RATE, MIN_RATE, PORT, client
from harness.probe.capacity import Capacity
from harness.probe.responder import serve


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
    parser = argparse.ArgumentParser(prog="python -m harness.probe", description=harness.probe.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="answer probes with this server's name")
    s.add_argument("--name", required=True)
    s.add_argument("--port", type=int, default=PORT)
    s.add_argument("--bind", action="append", help="address to listen on (repeatable; default 0.0.0.0 and ::)")
    s.add_argument("--workers", type=int, choices=range(1, 1001), metavar="1..1000",
                   help="a finite capacity: this many requests at a time (with --service-ms)")
    s.add_argument("--service-ms", type=_positive, help="with --workers: milliseconds each request takes")
    c = sub.add_parser("client", help="send probes at a fixed rate and record the timeline")
    c.add_argument("--target", required=True)
    c.add_argument("--port", type=int, default=PORT)
    c.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    c.add_argument("--rate", type=_rate, default=100.0, help="requests per second (10 to 1000)")
    c.add_argument("--duration", type=_positive, default=10.0, help="seconds of sending")
    c.add_argument("--timeout", type=_positive, default=1.0, help="seconds to wait for each reply")
    c.add_argument("--out", type=Path, required=True, help="where to write the JSON timeline")
    c.add_argument("--live", action="store_true", help="also print a line per request as it completes: "
                                                        "SENT SERVER (- when unanswered)")
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
    n.add_argument("--timeout", type=_positive, default=1.0, help="seconds to wait for each answer")
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
    h = sub.add_parser("hold", help="many TCP connections held open; who answered each, first and last (JSON)")
    h.add_argument("--target", required=True)
    h.add_argument("--port", type=int, default=PORT)
    h.add_argument("--count", type=int, default=100, choices=range(1, client.MAX_HELD + 1),
                   metavar=f"1..{client.MAX_HELD}")
    h.add_argument("--seconds", type=_positive, default=5.0, help="how long to hold them (bounded: at most 600)")
    h.add_argument("--timeout", type=_positive, default=2.0, help="seconds to wait for each connection and answer")
    h.add_argument("--at-once", type=int, default=64, choices=range(1, 1025), metavar="1..1024",
                   help="connections opened, or asked, at a time")
    args = parser.parse_args(argv)
    if args.command == "hold":
        try:
            held = client.hold(args.target, args.port, args.count, args.seconds, args.timeout, args.at_once,
                               say=lambda line: print(line, flush=True))
        except ValueError as exc:  # more connections than this process may open files
            parser.error(f"--count {args.count}: {exc}")
        print(json.dumps(held))
    elif args.command == "flood":
        print(json.dumps(client.flood(args.target, args.port, args.workers, args.duration)))
    elif args.command == "session":
        print(json.dumps(client.session(args.target, args.port, args.count, args.gap, args.timeout,
                                        source_port=args.source_port)))
    elif args.command == "sweep":
        print(json.dumps(client.sweep(args.target, args.port, args.first_port, args.count)))
    elif args.command == "serve":
        if (args.workers is None) != (args.service_ms is None):
            parser.error("--workers and --service-ms go together")
        capacity = Capacity(args.workers, args.service_ms / 1000) if args.workers else None
        serve(args.name, args.port, tuple(args.bind or ("0.0.0.0", "::")), capacity=capacity)
    elif args.command == "client":
        print(f"sending {args.rate:g}/s over {args.proto} to {args.target}:{args.port}", flush=True)
        live = (lambda r: print(f"{r.sent:.6f} {r.server or '-'}", flush=True)) if args.live else None
        reqs = asyncio.run(client.probe(args.target, args.port, args.proto, args.rate, args.duration, args.timeout,
                                        live))
        args.out.write_text(json.dumps({"target": args.target, "port": args.port, "proto": args.proto,
                                        "rate": args.rate, "requests": [asdict(r) for r in reqs]}))
    else:
        answers = client.check(args.targets, args.port, args.proto, attempts=args.attempts)
        print(json.dumps(answers))
        if args.require and None in answers.values():
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
