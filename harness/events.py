"""The daemons' state changes as the harness sees them: read from their event logs (one schema,
ha.eventlog), placed on the monotonic clock and on the lab host they happened on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ha import eventlog
from harness.clocks import SAME, ClockOffset


@dataclass(frozen=True)
class Event:
    """One change of state: `subject` went from `old` to `state` on `host`, at `at`, because `reason`."""

    at: float
    host: str
    source: str
    subject: str
    old: str | None
    state: str
    reason: str


def read(path: Path, host: str | Callable[[dict], str], clock: ClockOffset = SAME) -> list[Event]:
    """The events of one log; `host` names where they happened, or finds it from each record.
    `clock`: the log's machine's monotonic clock against this one's (harness.clocks)."""
    return [Event(clock.here(r["monotonic"]), host(r) if callable(host) else host, r["source"], r["subject"], r["from"],
                  r["to"], r["reason"]) for r in eventlog.read(path)]
