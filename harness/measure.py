"""Failover arithmetic on a probe timeline: pure functions, one clock (CLOCK_MONOTONIC).

Definitions (the method in shared/DESIGN.md):
- outage: the longest span without a successful request that covers the fault, measured between
  the send times of the last request that succeeded before the fault and the first that succeeded
  after it. Its resolution is one probe interval (10 ms at 100 requests/s).
- time to first good reply: from the fault to the reply of that first successful request.
- lost: requests that got no reply within the probe timeout.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.probe import Request


@dataclass(frozen=True)
class Outcome:
    """What one run looked like from the client, in seconds relative to nothing (raw clock)."""

    fault_at: float
    outage: float | None          # None: the service never came back during the probe
    first_good_after: float | None
    lost: int
    lost_after_fault: int
    requests: int
    server_before: str | None
    server_after: str | None
    outage_start: float | None
    outage_end: float | None

    @property
    def recovered(self) -> bool:
        return self.outage is not None


def analyse(requests: Sequence[Request], fault_at: float) -> Outcome:
    """Measure the outage that a fault at `fault_at` caused, as the probe client saw it."""
    ok = sorted((r for r in requests if r.ok), key=lambda r: r.sent)
    before = [r for r in ok if r.sent <= fault_at]
    after = [r for r in ok if r.sent > fault_at]
    first_sent = min((r.sent for r in requests), default=fault_at)
    last_ok_before = before[-1] if before else None
    first_ok_after = after[0] if after else None
    start = last_ok_before.sent if last_ok_before else first_sent
    outage = first_ok_after.sent - start if first_ok_after else None
    return Outcome(
        fault_at=fault_at,
        outage=outage,
        first_good_after=(first_ok_after.replied - fault_at) if first_ok_after else None,
        lost=sum(1 for r in requests if not r.ok),
        lost_after_fault=sum(1 for r in requests if not r.ok and r.sent >= fault_at),
        requests=len(requests),
        server_before=last_ok_before.server if last_ok_before else None,
        server_after=first_ok_after.server if first_ok_after else None,
        outage_start=start,
        outage_end=first_ok_after.sent if first_ok_after else None,
    )


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that exist; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or not baseline:
        return None
    return value / baseline
