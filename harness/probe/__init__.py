"""Probe traffic: a responder that answers with its server's name, and a client that measures.

    python -m harness.probe serve --name server1 --port 7000
    python -m harness.probe client --target 10.0.0.100 --port 7000 --proto udp --rate 100 \\
        --duration 10 --out probe.json
    python -m harness.probe check --port 7000 10.0.0.1 10.0.0.2
    python -m harness.probe session --target 10.0.0.100 --count 50     (one TCP connection)
    python -m harness.probe sweep --target 10.0.0.100 --count 500      (many UDP source ports)
    python -m harness.probe flood --target 10.0.0.100 --workers 32     (new connections per second)

Every send and reply is stamped with time.monotonic() (CLOCK_MONOTONIC, one clock for all
network namespaces), so the harness can line the timeline up with the moment it injected a
fault. The wire format is in `wire`, the responder in `responder`, the client in `client`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

#: The port responders listen on in every lab.
PORT = 7000
MIN_RATE, MAX_RATE = 10.0, 1000.0


def command(*args: str) -> list[str]:
    """The argv that runs this package's command line (serve, client, check, ...) on a lab host."""
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
